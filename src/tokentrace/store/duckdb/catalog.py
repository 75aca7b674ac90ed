"""DuckDB's projects and API keys, and the deletes by date (retention) or by project."""

from __future__ import annotations

from datetime import UTC, datetime

from tokentrace.store.catalog import DATED, UNDATED, Project
from tokentrace.store.duckdb.connection import naive

#: DuckDB's own dated tables, beside DATED: the spans waiting for an ancestor (writes.py) and the
#: hours each trace and each session has spans in (the trace and session reads).
_DATED_HERE = (("inherit_waiting", "start_time"), ("trace_hours", "hour"), ("session_hours", "hour"))


class DuckDBCatalog:
    """Catalog, and retention's delete_before."""

    def delete_before(self, cutoff: datetime) -> dict[str, int]:
        # One transaction: a read sees the spans and their rollups end at the same instant.
        with self._vacuuming(), self._transaction() as cur:
            return {
                table: cur.execute(f"DELETE FROM {table} WHERE {column} < ?", [naive(cutoff)]).fetchone()[0]
                for table, column in (*DATED, *_DATED_HERE)
            }

    def delete_project(self, project_id: str) -> dict[str, int]:
        with self._vacuuming(), self._transaction() as cur:
            return {
                table: cur.execute(f"DELETE FROM {table} WHERE project_id = ?", [project_id]).fetchone()[0]
                for table in (*(t for t, _ in (*DATED, *_DATED_HERE)), *UNDATED)
            }

    def create_project(self, project_id: str, key_hash: str) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        with self._transaction() as cur:
            cur.execute("INSERT INTO projects VALUES (?, ?)", [project_id, now])
            cur.execute("INSERT INTO api_keys VALUES (?, ?, ?)", [key_hash, project_id, now])

    def add_key(self, project_id: str, key_hash: str) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        with self._lock:
            self._writer.execute("INSERT INTO api_keys VALUES (?, ?, ?)", [key_hash, project_id, now])

    def project_for_key(self, key_hash: str) -> str | None:
        with self._conn.cursor() as cur:
            row = cur.execute("SELECT project_id FROM api_keys WHERE key_hash = ?", [key_hash]).fetchone()
        return row[0] if row else None

    def projects(self) -> list[Project]:
        with self._conn.cursor() as cur:
            rows = cur.execute("SELECT project_id, created_at FROM projects ORDER BY 1").fetchall()
        return [Project(project_id, created.replace(tzinfo=UTC)) for project_id, created in rows]
