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

.PHONY: install demo test lint bench bench-sdk clean

install: $(VENV)/.installed

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: pyproject.toml uv.lock $(UV)
	$(UV) sync --frozen --all-extras --python $(PYTHON)
	touch $@

demo: install
	$(BIN)/tokentrace demo --serve --data-dir .tokentrace

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

test: lint
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/ingest.py

# The SDK overhead beside other instrumentations, each in its own venv (their pins clash).
BENCH_VENVS := .bench-venvs
$(BENCH_VENVS)/%/bin/python: bench/venvs/%.txt $(UV)
	$(UV) venv --quiet --python $(PYTHON) $(BENCH_VENVS)/$*
	$(UV) pip install --quiet --python $(BENCH_VENVS)/$*/bin/python -r $<

bench-sdk: install $(BENCH_VENVS)/openai-v2/bin/python $(BENCH_VENVS)/openllmetry/bin/python $(BENCH_VENVS)/openlit/bin/python
	$(BIN)/python bench/sdk_overhead.py

clean:
	rm -rf $(VENV) $(TOOLS) $(BENCH_VENVS) .pytest_cache .ruff_cache
