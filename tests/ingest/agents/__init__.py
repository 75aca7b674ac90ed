"""Agent frameworks, run for real: each in its own venv, one agent with one tool, its runs
checked against the simulated provider's ledger of what it answered.

    make agent-venvs                                   one venv per framework (.family-venvs/agent-*)
    .venv/bin/python -m tests.ingest.agents.record NAME [NAME ...]   re-record fixtures/NAME/

An app (apps/run_NAME.py) runs in its framework's venv, never imports tokentrace, and prints
one JSON line: its scenarios (which answers of the provider's ledger each run used, the agent
and tool names) and the ledger itself. Its header names the venv (requirements/VENV.txt) and
any environment it needs:

    # venv: VENV
    # env: NAME=value NAME=value
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
FIXTURES = HERE / "fixtures"
VENVS = ROOT / ".family-venvs"


def _header(app: Path) -> tuple[str, dict[str, str]]:
    venv, env = "", {}
    for line in app.read_text().splitlines()[:12]:
        if line.startswith("# venv:"):
            venv = line.split(":", 1)[1].strip()
        elif line.startswith("# env:"):
            env.update(item.split("=", 1) for item in line.split(":", 1)[1].split())
    if not venv:
        raise ValueError(f"{app.name} names no venv (# venv: NAME)")
    return venv, env


# framework run → (the venv it runs in, made from requirements/VENV.txt; extra environment)
FRAMEWORKS: dict[str, tuple[str, dict[str, str]]] = {
    app.stem.removeprefix("run_").replace("_", "-"): _header(app) for app in sorted(APPS.glob("run_*.py"))
}


def framework_python(name: str) -> Path:
    return VENVS / f"agent-{FRAMEWORKS[name][0]}" / "bin" / "python"


def run_agent(name: str, provider_url: str, otlp_url: str, key: str = "") -> str:
    """Run apps/run_NAME.py in its framework's venv against the provider, exporting to `otlp_url`;
    its facts as one JSON line."""
    extra = FRAMEWORKS[name][1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACELOOP_", "LANGFUSE_"))}
    env.update(extra)
    if key:
        env["OTEL_EXPORTER_OTLP_HEADERS"] = f"Authorization=Bearer%20{key}"
        env["TOKENTRACE_KEY"] = key
    done = subprocess.run(
        [str(framework_python(name)), str(APPS / f"run_{name.replace('-', '_')}.py"), provider_url, otlp_url],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]
