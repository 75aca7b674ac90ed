"""ClickHouse's projects and API keys, and the deletes by date (retention) or by project."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tokentrace.store.catalog import DATED, UNDATED, Project
from tokentrace.store.clickhouse import rollups
from tokentrace.store.clickhouse.dialect import time64
from tokentrace.store.python_rows import python_rows


class ClickHouseCatalog:
    """Catalog, and retention's delete_before."""

    def _delete(self, table: str, where: str, params: dict[str, Any]) -> int:
        """Count, then lightweight-DELETE, the rows of `table` that `where` selects."""
        table = "content_parts" if table == "content" else table
        found = python_rows(self._ch.query(f"SELECT count() AS n FROM {table} WHERE {where}", params))[0]["n"]
        if found:
            self._ch.command(f"DELETE FROM {table} WHERE {where}", params)
        return int(found)

    def delete_before(self, cutoff: datetime) -> dict[str, int]:
        # Spans first: a read between two DELETEs may see rollups reach back further than the
        # spans (totals from rollups stay whole meanwhile), never spans without their rollups.
        params = {"c": time64(cutoff)}
        return {t: self._delete(t, f"{column} < {{c:DateTime64(9)}}", params) for t, column in DATED}

    def compact(self) -> None:
        # Parts merge by themselves; the rollups' superseded versions are ours to delete (a
        # sampling sweep does too, when a policy runs one).
        rollups.compact(self._ch, before=rollups.server_clock(self._ch))

    def delete_project(self, project_id: str) -> dict[str, int]:
        tables = (*(t for t, _ in DATED), *UNDATED)
        return {table: self._delete(table, "project_id = {p:String}", {"p": project_id}) for table in tables}

    def create_project(self, project_id: str, key_hash: str) -> None:
        self._ch.command("INSERT INTO projects VALUES ({p:String}, now64(6))", {"p": project_id})
        self.add_key(project_id, key_hash)

    def add_key(self, project_id: str, key_hash: str) -> None:
        self._ch.command(
            "INSERT INTO api_keys VALUES ({k:String}, {p:String}, now64(6))", {"k": key_hash, "p": project_id}
        )

    def project_for_key(self, key_hash: str) -> str | None:
        rows = python_rows(
            self._ch.query(
                "SELECT project_id FROM api_keys FINAL WHERE key_hash = {k:String}", {"k": key_hash}
            )
        )
        return rows[0]["project_id"] if rows else None

    def projects(self) -> list[Project]:
        rows = python_rows(
            self._ch.query("SELECT project_id, created_at FROM projects FINAL ORDER BY project_id")
        )
        return [Project(r["project_id"], r["created_at"].astimezone(UTC)) for r in rows]
