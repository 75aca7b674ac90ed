"""Record what an agent framework exports, as fixtures for tests/ingest/test_agents.py.

    .venv/bin/python -m tests.ingest.agents.record NAME [NAME ...]

Each run gets a fresh simulated provider (its ledger starts empty) and an OTLP sink; the
request bodies go to tests/ingest/agents/fixtures/NAME/ with facts.json (the app's scenarios
and the provider's ledger).
"""

from __future__ import annotations

import subprocess
import sys

from tests.ingest.agents import FIXTURES, FRAMEWORKS, framework_python, run_agent
from tests.ingest.families.record import capture


def main(names: list[str]) -> None:
    for name in names:
        if name not in FRAMEWORKS:
            sys.exit(f"{name}: not in tests/ingest/agents FRAMEWORKS")
        if not framework_python(name).exists():
            sys.exit(f"{name}: no venv; run `make agent-venvs` first")
        out = capture(lambda provider, otlp, n=name: run_agent(n, provider, otlp), FIXTURES / name)
        print(f"{name}: {out}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except subprocess.CalledProcessError as exc:
        sys.exit(f"the app failed:\n{exc.stderr}")
