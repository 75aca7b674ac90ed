"""DuckDBStore: every concern of the Store protocol over one DuckDB file."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb

from tokentrace.store.duckdb import rollups
from tokentrace.store.duckdb.alert_log import DuckDBAlertLog
from tokentrace.store.duckdb.catalog import DuckDBCatalog
from tokentrace.store.duckdb.connection import DuckDBConnection
from tokentrace.store.duckdb.deployments import DuckDBDeployments
from tokentrace.store.duckdb.evaluations import DuckDBEvaluations
from tokentrace.store.duckdb.leases import DuckDBLeases
from tokentrace.store.duckdb.reads import DuckDBReads
from tokentrace.store.duckdb.rollups import DuckDBRollups
from tokentrace.store.duckdb.sampling import DuckDBSampling
from tokentrace.store.duckdb.trace_list import DuckDBTraceList
from tokentrace.store.duckdb.writes import DuckDBWrites


class DuckDBStore(
    DuckDBConnection,
    DuckDBWrites,
    DuckDBReads,
    DuckDBTraceList,
    DuckDBRollups,
    DuckDBSampling,
    DuckDBDeployments,
    DuckDBEvaluations,
    DuckDBLeases,
    DuckDBCatalog,
    DuckDBAlertLog,
):
    """Store implementation over one DuckDB file."""

    def __init__(self, path: Path, memory_limit: str | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # No vacuum at the checkpoints writes trigger: each one merged the row groups the appends
        # since the last had left part-filled with their neighbours, rewriting the same rows
        # again and again (~60% of a 50k-span write at 10M stored spans, half that at 1M).
        # Deletes and an hourly compaction vacuum (connection.py: _vacuuming, compact).
        config = {"wal_autocheckpoint": "256MB", "preserve_insertion_order": "false", "max_vacuum_tasks": "0"}
        if memory_limit:
            config["memory_limit"] = memory_limit
        self.path = path
        self._conn = duckdb.connect(str(path), config=config)
        self._lock = threading.RLock()  # advance_rollups holds it around a transaction
        self._writer = self._conn.cursor()
        self._migrate()
        self._marks = rollups.marks(self._writer)
        # Whether any log record brought tags: until one does, a write skips lending them
        # (this process owns the file, so the flag stays true to it).
        self._has_record_tags = bool(self._writer.execute("SELECT count(*) FROM record_tags").fetchone()[0])
