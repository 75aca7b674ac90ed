"""Run the `tokentrace` CLI in a subprocess, against a running server when given one."""

from __future__ import annotations

import subprocess
import sys


def cli(*args: str, server=None, check: bool = True) -> subprocess.CompletedProcess:
    full = [sys.executable, "-m", "tokentrace.cli", *args]
    if server is not None:
        full += ["--server", server.url]
    result = subprocess.run(full, capture_output=True, text=True, env={"COLUMNS": "200", "PATH": ""})
    if check and result.returncode != 0:
        raise AssertionError(result.stderr)
    return result
