"""The embedded store: one DuckDB file, written by one batch writer, read through cursors; one
module per concern of the Store protocol, joined in store.py."""

from tokentrace.store.duckdb.store import DuckDBStore

__all__ = ["DuckDBStore"]
