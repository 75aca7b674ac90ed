"""pyarrow without its pandas integration, in the server and its ingest worker processes.

pyarrow imports pandas, when it is installed, the first time it builds an array from Python values
(to ask whether a value is a pandas Series). The server and its workers never hand pyarrow pandas
objects, yet each paid that import at its first export or write: ~1 s of CPU with bytecode
cached, ~3 s without (PYTHONDONTWRITEBYTECODE), and ~40 MB of memory per process.

pandas is no dependency of the server, and the tests run their servers where it cannot be
imported: rows read into Python go through store/python_rows.py (nanosecond timestamps are where
pyarrow's answers differ with and without pandas).
"""

from __future__ import annotations

import importlib.abc
import sys


class _RefusePandas(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("tokentrace keeps pyarrow from importing pandas in this process")


def keep_pyarrow_from_pandas() -> None:
    """Have pyarrow settle, once, that this process has no pandas (unless pandas is loaded already).

    pyarrow tries the import once per process and remembers the answer; it is refused only for
    that one try. Code that imports pandas itself still can, and `Table.to_pandas()` still works
    (pyarrow tries again when pandas is required)."""
    if "pandas" in sys.modules:
        return
    import pyarrow as pa

    refuse = _RefusePandas()
    sys.meta_path.insert(0, refuse)
    try:
        pa.array([0])  # pyarrow's one try at pandas, refused
    finally:
        sys.meta_path.remove(refuse)
