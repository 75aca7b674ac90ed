"""The DuckDB file: opened once per process, migrated, written in transactions under one lock,
read through cursors of their own.

One process owns the file (DuckDB allows no second process, even read-only), so ingest
and queries share it: writes are serialized under a lock, each read uses its own cursor.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from tokentrace.canonical import (
    FIELD_NAMES,
)
from tokentrace.store.migrations import migrations

SPAN_COLUMNS = ", ".join(FIELD_NAMES)
#: DuckDB's own default for a vacuuming checkpoint's tasks (writes' checkpoints use none)
VACUUM_TASKS = 100


def naive(value: Any) -> Any:
    """An aware datetime as DuckDB's TIMESTAMP wants it (UTC, no tzinfo); others unchanged."""
    return value.astimezone(UTC).replace(tzinfo=None) if isinstance(value, datetime) else value


class DuckDBConnection:
    """The connection, its writer cursor and write lock, and the schema's migrations."""

    def _migrate(self) -> None:
        cur = self._writer
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)"
        )
        applied = {row[0] for row in cur.execute("SELECT version FROM schema_migrations").fetchall()}
        for version, name, sql in migrations("duckdb"):
            if version in applied:
                continue
            with self._transaction() as tx:
                tx.execute(sql)
                tx.execute("INSERT INTO schema_migrations VALUES (?, ?, now()::TIMESTAMP)", [version, name])

    def schema_version(self) -> int:
        with self._conn.cursor() as cur:
            return cur.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The writer's cursor in BEGIN … COMMIT, under the write lock. On an error it is rolled
        back, and that error is the one raised (a failed write, e.g. with the disk full, may
        have ended the transaction already, and the ROLLBACK's own error would hide it)."""
        with self._lock:
            cur = self._writer
            cur.execute("BEGIN")
            try:
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    cur.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def _vacuuming(self) -> Iterator[None]:
        """Deletes (retention, sampling, a project) inside, then a checkpoint that vacuums them.
        Writes checkpoint without vacuuming (store.py: it rewrote row groups again and again, and
        more so as the table grew), and DuckDB vacuums deletes only at the checkpoint that
        persists them: an automatic one in between would leave them unreclaimed for good."""
        with self._lock:
            self._writer.execute(f"SET max_vacuum_tasks = {VACUUM_TASKS}")
            try:
                yield
                self._writer.execute("CHECKPOINT")
            finally:
                self._writer.execute("SET max_vacuum_tasks = 0")

    def compact(self) -> None:
        with self._vacuuming():
            pass

    def close(self) -> None:
        with self._lock:
            # the checkpoint on close merges the row groups writes left part-filled
            self._writer.execute(f"SET max_vacuum_tasks = {VACUUM_TASKS}")
            self._writer.close()
            self._conn.close()

    def _arrow(self, sql: str, params: list[Any]) -> pa.Table:
        with self._conn.cursor() as cur:
            return cur.sql(sql, params=params).to_arrow_table()
