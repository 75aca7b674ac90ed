"""Every agent framework for real, in its own venv, against the simulated provider and a running
server: the same checks as tests/ingest/test_agents.py's recorded runs (a module of its own, so
that the suite's workers run it beside the rest)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.builders.processes import ServerProcess, simulated_provider
from tests.ingest.agents import FRAMEWORKS, framework_python, run_agent
from tests.ingest.agents.checks import check_framework, project_key


def _run_live(server: ServerProcess, name: str) -> str | None:
    """One framework's run against a provider of its own (a fresh ledger) and a project of its
    own; what failed, or None."""
    key = project_key(server, f"live-{name}")
    try:
        with simulated_provider() as provider:
            facts = json.loads(run_agent(name, provider, server.url, key))
        wanted = sum(1 for a in facts["ledger"] if a["status"] == 200)
        check_framework(server, name, facts, _wait_for_calls(server, key, wanted), key)
    except subprocess.CalledProcessError as exc:
        return f"{name}: the app failed\n{exc.stderr[-3000:]}"
    except AssertionError as exc:
        return str(exc)
    return None


def test_live_agent_runs_count_once_and_price_right(server):
    """Every framework for real, three at a time against one server: the same checks as the
    recorded runs. Frameworks without a venv (`make agent-venvs`) are skipped, named."""
    names = sorted(n for n in FRAMEWORKS if framework_python(n).exists())
    if not names:
        pytest.skip("no agent venvs: make agent-venvs")
    with ThreadPoolExecutor(3) as pool:
        failures = [f for f in pool.map(lambda n: _run_live(server, n), names) if f]
    assert not failures, "\n\n".join(failures)
    missing = sorted(set(FRAMEWORKS) - set(names))
    assert not missing or not os.environ.get("CI"), f"no venv in CI for {missing}"


def _wait_for_calls(server: ServerProcess, key: str, wanted: int, timeout: float = 30) -> set[str]:
    """The project's trace ids once it holds `wanted` counted calls and nothing is pending."""
    deadline = time.monotonic() + timeout
    while True:
        rows = server.get("/api/v1/rollups", key)["rows"]
        stats = server.get("/api/v1/stats", key)
        if (sum(r["requests"] for r in rows) >= wanted and stats["pending_spans"] == 0) or (
            time.monotonic() > deadline
        ):
            break
        time.sleep(0.3)
    page = server.get("/api/v1/traces", key, since="1h", limit=1000)
    return {row["trace_id"] for row in page["traces"]}
