"""A bounded atheris run of fuzz_ingest.py in the suite: a crash found fails the test with the
input atheris printed. Longer runs: see that module (docs/reliability.md has the last one)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")


def test_the_ingest_path_survives_a_coverage_guided_fuzzing_run(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tests.ingest.fuzz_ingest", "-atheris_runs=3000", "-max_total_time=90"],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=180,
    )
    report = "\n".join(line for line in result.stderr.splitlines() if "leaked" not in line)
    assert result.returncode == 0, report[-4000:]
    assert "Done " in report, report[-2000:]
