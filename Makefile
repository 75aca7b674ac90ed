# tokentrace — the three entry points of the repo's contract.
#   make install   .venv with the package and every extra the tests use (pinned by uv.lock)
#   make demo      install, run the server (API at http://127.0.0.1:4318) and send simulated traffic
#   make test      install, then lint and run the whole test suite

PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
WEB := src/tokentrace/web
VENDOR := $(WEB)/static/vendor

.PHONY: install demo test lint screenshots bench bench-sdk bench-proxy bench-ui family-venvs family-locks agent-venvs agent-locks fixtures debian-tools clean

install: $(VENV)/.installed $(VENDOR)/.installed

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# --compile-bytecode: uv does not compile by default, and where PYTHONDONTWRITEBYTECODE is set
# (containers, this project's machines) every process would compile its imports from source each
# time it starts (the server's cold start 1.3 → 0.7 s; each ingest worker and test server too).
$(VENV)/.installed: pyproject.toml uv.lock $(UV)
	$(UV) sync --frozen --all-extras --compile-bytecode --python $(PYTHON)
	touch $@

# The UI's JavaScript (htmx, uPlot) from the npm registry, pinned by package-lock.json, copied
# into the package's static folder so the server serves it itself: the UI works offline.
$(VENDOR)/.installed: $(WEB)/package.json $(WEB)/package-lock.json
	@command -v npm >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null; \
		else echo "npm is needed for the UI's JavaScript: install Node.js (with npm) and run make again"; exit 1; fi; }
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp $(WEB)/node_modules/htmx.org/dist/htmx.min.js $(WEB)/node_modules/uplot/dist/uPlot.iife.min.js \
		$(WEB)/node_modules/uplot/dist/uPlot.min.css $(VENDOR)/
	touch $@

demo: install
	$(BIN)/tokentrace demo --serve --data-dir .tokentrace

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

test: lint family-venvs agent-venvs debian-tools
	$(BIN)/pytest

# The README's screenshots, refreshed on purpose (a test run writes its own to a temporary folder).
screenshots: install debian-tools
	TOKENTRACE_SCREENSHOTS=docs/img $(BIN)/pytest -n 0 tests/e2e/test_ui.py

# Real tools the tests run where they install: redis-server holds the gateways' shared budget
# counters; promtool (Debian's prometheus package) checks
# /metrics, the Prometheus rules and the Grafana panels' queries; Debian's chromium runs the UI
# tests (Playwright never downloads a browser here). Without root or apt those tests are
# skipped, saying why.
debian-tools:
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				--no-install-recommends chromium >/dev/null; } \
			|| echo "chromium could not be installed: the browser tests will be skipped"; \
		else echo "chromium absent (installing it needs root and apt-get): the browser tests will be skipped"; fi; }
	@command -v redis-server >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				--no-install-recommends redis-server >/dev/null; } \
			|| echo "redis-server could not be installed: the shared-budget tests will be skipped"; \
		else echo "redis-server absent (installing it needs root and apt-get): the shared-budget tests will be skipped"; fi; }
	@command -v promtool >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				--no-install-recommends prometheus >/dev/null; } \
			|| echo "promtool could not be installed: its checks will be skipped"; \
		else echo "promtool absent (installing it needs root and apt-get): its checks will be skipped"; fi; }

# Other libraries' instrumentations, each in its own venv (their pins clash: OpenLIT needs
# openai < 3), pinned by tests/ingest/families/requirements/NAME.txt (make family-locks).
FAMILY_REQS := tests/ingest/families/requirements
FAMILY_VENVS := .family-venvs
FAMILY_NAMES := otel openinference openlit traceloop langfuse logfire

family-venvs: $(foreach f,$(FAMILY_NAMES),$(FAMILY_VENVS)/$(f)/.installed)

$(FAMILY_VENVS)/%/.installed: $(FAMILY_REQS)/%.txt $(UV)
	rm -rf $(FAMILY_VENVS)/$*
	$(UV) venv --quiet --python $(PYTHON) $(FAMILY_VENVS)/$*
	$(UV) pip install --quiet --python $(FAMILY_VENVS)/$*/bin/python -r $<
	touch $@

family-locks: $(UV)
	for f in $(FAMILY_NAMES); do \
		$(UV) pip compile --quiet --python-version 3.11 $(FAMILY_REQS)/$$f.in -o $(FAMILY_REQS)/$$f.txt || exit 1; \
	done

# Agent frameworks, one venv each (tests/ingest/agents: pydantic-ai, the OpenAI Agents SDK, LangGraph…),
# pinned by tests/ingest/agents/requirements/NAME.txt (make agent-locks).
AGENT_REQS := tests/ingest/agents/requirements
AGENT_NAMES := $(patsubst $(AGENT_REQS)/%.txt,%,$(wildcard $(AGENT_REQS)/*.txt))

agent-venvs: $(foreach a,$(AGENT_NAMES),$(FAMILY_VENVS)/agent-$(a)/.installed)

$(FAMILY_VENVS)/agent-%/.installed: $(AGENT_REQS)/%.txt $(UV)
	rm -rf $(FAMILY_VENVS)/agent-$*
	$(UV) venv --quiet --python $(PYTHON) $(FAMILY_VENVS)/agent-$*
	$(UV) pip install --quiet --python $(FAMILY_VENVS)/agent-$*/bin/python -r $<
	touch $@

agent-locks: $(UV)
	for f in $(AGENT_REQS)/*.in; do \
		$(UV) pip compile --quiet --python-version 3.11 $$f -o $${f%.in}.txt || exit 1; \
	done

# Re-record what each family exports (after a version bump in requirements/*.in).
fixtures: install family-venvs
	$(BIN)/python -m tests.ingest.families.record otel otel-latest openinference openlit traceloop langfuse logfire

# Per-stage CPU per span in-process (where it goes), then the end-to-end figure (what it adds up to).
bench: install
	$(BIN)/python bench/stages.py
	$(BIN)/python bench/ingest.py

# The SDK overhead beside other instrumentations, each in its own venv (their pins clash).
BENCH_VENVS := .bench-venvs
$(BENCH_VENVS)/%/bin/python: bench/venvs/%.txt $(UV)
	$(UV) venv --quiet --python $(PYTHON) $(BENCH_VENVS)/$*
	$(UV) pip install --quiet --python $(BENCH_VENVS)/$*/bin/python -r $<

bench-sdk: install $(BENCH_VENVS)/openai-v2/bin/python $(BENCH_VENVS)/openllmetry/bin/python $(BENCH_VENVS)/openlit/bin/python
	$(BIN)/python bench/sdk_overhead.py

# The gateway beside the LiteLLM proxy (its own venv: its pins are not ours).
bench-proxy: install $(BENCH_VENVS)/litellm/bin/python
	$(BIN)/python bench/proxy.py

clean:
	rm -rf $(VENV) $(TOOLS) $(BENCH_VENVS) $(FAMILY_VENVS) $(WEB)/node_modules $(VENDOR) .pytest_cache .ruff_cache
