"""Other libraries' instrumentations, run for real: where their venvs are and how to run them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.builders.processes import simulated_provider

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "fixtures"
VENVS = ROOT / ".family-venvs"

# family → the venv it runs in (made by `make family-venvs` from requirements/VENV.txt)
FAMILIES = {
    "otel": "otel",
    "otel-latest": "otel",
    "openinference": "openinference",
    "openlit": "openlit",
    "traceloop": "traceloop",
    "langfuse": "langfuse",
    "logfire": "logfire",
}

__all__ = ["FAMILIES", "FIXTURES", "family_python", "run_app", "simulated_provider"]


def family_python(family: str) -> Path:
    return VENVS / FAMILIES[family] / "bin" / "python"


def run_app(family: str, provider_url: str, otlp_url: str, key: str = "") -> str:
    """Run families/app.py in the family's venv; its facts as one JSON line.

    The API key goes where each family's users put it: the standard OTLP headers variable
    (Langfuse: as its secret key, sent with Basic auth).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACELOOP_", "LANGFUSE_"))}
    if key:
        env["OTEL_EXPORTER_OTLP_HEADERS"] = f"Authorization=Bearer%20{key}"
        env["TOKENTRACE_KEY"] = key
    done = subprocess.run(
        [str(family_python(family)), str(HERE / "app.py"), family, provider_url, otlp_url],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]
