"""Stores: the only code that writes SQL. DuckDB (embedded default); ClickHouse follows."""

from tokentrace.store.base import SpanFilter, Store

__all__ = ["SpanFilter", "Store"]
