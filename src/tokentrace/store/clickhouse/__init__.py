"""The scale-out store: ClickHouse, through a transport (transport.py: chDB
in-process, or a server over HTTP).

Every Store method, tested on chDB against DuckDB's answers or in the both-store tests
(tests/store/, tests/query/), and the server over it end to end
(tests/e2e/test_clickhouse_server.py). Tail sampling: sampling.py.

ClickHouse has no transactions and no cheap UPDATE: a write is idempotent instead (identities
already stored are skipped, so replaying a spool is safe), and a span's later revision is a new
row with a higher `revision` that ReplacingMergeTree keeps alone; every read says FINAL.
"""

from tokentrace.store.clickhouse.store import ClickHouseStore

__all__ = ["ClickHouseStore"]
