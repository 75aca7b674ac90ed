"""Job leases on ClickHouse (table leases, a ReplacingMergeTree: the newest revision of a name's
row is its lease). ClickHouse has no transaction to take one in: a node that finds the lease
free writes itself in, waits SETTLE for any other node's write of the same moment to land, and
holds the lease only if its own row is still the newest. Two nodes that try at once agree on
the winner (both read the same newest row); a write delayed past SETTLE could give both one run,
after which the loser sees the other's newer row and stops."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pyarrow as pa

SETTLE = 0.5  # seconds: longer than an insert takes to be read back
_SCHEMA = pa.schema(
    [
        ("name", pa.string()),
        ("holder", pa.string()),
        ("expires_at", pa.timestamp("us", tz="UTC")),
        ("revision", pa.uint64()),
    ]
)


class ClickHouseLeases:
    """Leases over the leases table."""

    def _lease(self, name: str) -> tuple[str, datetime] | None:
        found = self._ch.query(
            "SELECT holder, expires_at FROM leases FINAL WHERE name = {n:String}", {"n": name}
        ).to_pylist()
        return (found[0]["holder"], found[0]["expires_at"]) if found else None

    def _write_lease(self, name: str, holder: str, until: datetime) -> None:
        row = {"name": [name], "holder": [holder], "expires_at": [until], "revision": [time.time_ns()]}
        self._ch.insert("leases", pa.table(row, schema=_SCHEMA))

    def hold_lease(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        current = self._lease(name)
        if current is not None and current[0] != holder and current[1] > now:
            return False  # another node's, unexpired
        self._write_lease(name, holder, now + ttl)
        if current is not None and current[0] == holder and current[1] > now:
            return True  # renewed: no other node takes a lease before it expires
        time.sleep(SETTLE)
        newest = self._lease(name)
        return newest is not None and newest[0] == holder
