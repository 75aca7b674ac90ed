"""Stores: the only code that writes SQL. `protocol` says what a store does, one small protocol
per concern; `duckdb/` (embedded, the default) and `clickhouse/` (a server, for scale) do it,
each split by the same concerns; `sql` is the filter and group compiler both dialects share."""

from tokentrace.store.filters import SpanFilter
from tokentrace.store.protocol import Store

__all__ = ["SpanFilter", "Store"]
