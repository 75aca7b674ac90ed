"""The gateway and the SDK load light: none of their modules pulls in the server's side (ingest,
the stores, pyarrow, DuckDB). `make lint` checks the imports as written (import-linter); this
checks what a fresh interpreter really loads, lazy imports and package __init__s included."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import tokentrace.proxy
import tokentrace.sdk

HEAVY = ("pyarrow", "duckdb", *(f"tokentrace.{p}" for p in ("ingest", "store", "jobs", "query", "server")))


def _modules(package) -> list[str]:
    return [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]


@pytest.mark.parametrize("module", _modules(tokentrace.proxy) + _modules(tokentrace.sdk))
def test_loading_a_gateway_or_sdk_module_loads_nothing_of_the_server_side(module: str) -> None:
    probe = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    heavy = sorted({name for name in loaded.split() if name.split(".")[0] in HEAVY or name.startswith(HEAVY)})
    assert heavy == [], f"{module} loads {heavy}"


def test_the_probe_sees_a_heavy_module_when_one_is_loaded() -> None:
    # The check above would pass vacuously if the probe saw nothing: the store's package loads pyarrow.
    probe = "import sys, tokentrace.store; print('\\n'.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert "pyarrow" in loaded.split()
