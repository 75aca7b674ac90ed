"""Stores: the only code that writes SQL. DuckDB (embedded default); ClickHouse follows."""

from tokentrace.store.base import SpanFilter, Store

__all__ = ["SpanFilter", "Store", "open_store"]


def open_store(url: str) -> Store:
    """Open a store from a URL: a directory path or `duckdb:///path/to/file.duckdb`."""
    from pathlib import Path

    from tokentrace.store.duckdb import DuckDBStore

    if url.startswith("duckdb://"):
        return DuckDBStore(Path(url.removeprefix("duckdb://")))
    raise ValueError(f"unsupported store URL {url!r}")
