"""DuckDB's alert log: the API's rules, the evaluator's state, the notifications owed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa

from tokentrace.store.duckdb.connection import naive
from tokentrace.store.protocol import ALERT_STATE_FIELDS
from tokentrace.store.python_rows import python_rows


def _dicts(table: pa.Table) -> list[dict[str, Any]]:
    """Rows as dicts with TIMESTAMP columns as aware UTC datetimes."""
    rows = python_rows(table)
    for row in rows:
        for key, value in row.items():
            if isinstance(value, datetime) and value.tzinfo is None:
                row[key] = value.replace(tzinfo=UTC)
    return rows


class DuckDBAlertLog:
    """AlertLog over the alert_rules, alert_states and alert_events tables."""

    def put_alert_rule(self, project_id: str, name: str, spec: str) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        with self._lock:
            self._writer.execute(
                "INSERT OR REPLACE INTO alert_rules VALUES (?, ?, ?, ?)", [project_id, name, spec, now]
            )

    def delete_alert_rule(self, project_id: str, name: str) -> bool:
        with self._lock:
            deleted = self._writer.execute(
                "DELETE FROM alert_rules WHERE project_id = ? AND name = ? RETURNING name", [project_id, name]
            ).fetchall()
        return bool(deleted)

    def alert_rules(self, project_id: str | None = None) -> list[tuple[str, str, str]]:
        where, params = ("WHERE project_id = ?", [project_id]) if project_id is not None else ("", [])
        with self._conn.cursor() as cur:
            return cur.execute(
                f"SELECT project_id, name, spec FROM alert_rules {where} ORDER BY 1, 2", params
            ).fetchall()

    def alert_states(self, project_id: str) -> list[dict[str, Any]]:
        return _dicts(
            self._arrow(
                f"SELECT {', '.join(ALERT_STATE_FIELDS)} FROM alert_states WHERE project_id = ? "
                "ORDER BY rule, group_key",
                [project_id],
            )
        )

    def save_alert_evaluation(
        self,
        project_id: str,
        states: list[dict[str, Any]],
        cleared: list[tuple[str, str]],
        events: list[dict[str, Any]],
    ) -> None:
        with self._transaction() as cur:
            for state in states:
                cur.execute(
                    "INSERT OR REPLACE INTO alert_states VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [project_id, *(naive(state[k]) for k in ALERT_STATE_FIELDS)],
                )
            for rule, group_key in cleared:
                cur.execute(
                    "DELETE FROM alert_states WHERE project_id = ? AND rule = ? AND group_key = ?",
                    [project_id, rule, group_key],
                )
            for event in events:
                cur.execute(
                    "INSERT INTO alert_events VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 0, NULL)",
                    [
                        event["event_id"],
                        project_id,
                        event["rule"],
                        event["group_key"],
                        event["status"],
                        naive(event["at"]),
                        orjson.dumps(event["payload"]).decode(),
                    ],
                )

    def alert_events(
        self, project_id: str | None = None, undelivered: bool = False, limit: int = 100
    ) -> list[dict[str, Any]]:
        clauses, params = [], []
        if project_id is not None:
            clauses.append("project_id = ?")
            params.append(project_id)
        if undelivered:
            clauses.append("delivered_at IS NULL")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "created_at" if undelivered else "created_at DESC"
        rows = _dicts(
            self._arrow(
                "SELECT event_id, project_id, rule, group_key, status, created_at AS at, payload, "
                f"delivered_at, attempts, last_error FROM alert_events {where} "
                f"ORDER BY {order} LIMIT {int(limit)}",
                params,
            )
        )
        for row in rows:
            row["payload"] = orjson.loads(row["payload"])
        return rows

    def mark_alert_event(self, event_id: str, delivered: bool, error: str | None = None) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        with self._lock:
            self._writer.execute(
                "UPDATE alert_events SET attempts = attempts + 1, last_error = ?, "
                "delivered_at = CASE WHEN ? THEN ? ELSE delivered_at END WHERE event_id = ?",
                [error, delivered, now, event_id],
            )
