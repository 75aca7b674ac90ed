"""ClickHouse's alert log: the API's rules, the evaluator's state, the notifications owed."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa

from tokentrace.store.clickhouse.rollups import SETTINGS
from tokentrace.store.protocol import ALERT_STATE_FIELDS
from tokentrace.store.python_rows import python_rows

_ALERT_TIMES = ("active_since", "fired_at", "resolved_at", "evaluated_at")


def _utc_times(row: dict[str, Any]) -> dict[str, Any]:
    """Times as DuckDB's store gives them: aware UTC."""
    for name, value in row.items():
        if isinstance(value, datetime):
            row[name] = value.astimezone(UTC)
    return row


class ClickHouseAlertLog:
    """AlertLog over the alert_rules, alert_states and alert_events tables."""

    def put_alert_rule(self, project_id: str, name: str, spec: str) -> None:
        self._put_rule(project_id, name, spec, deleted=False)

    def delete_alert_rule(self, project_id: str, name: str) -> bool:
        found = any(r[1] == name for r in self.alert_rules(project_id))
        if found:
            self._put_rule(project_id, name, "", deleted=True)
        return found

    def _put_rule(self, project_id: str, name: str, spec: str, deleted: bool) -> None:
        self._ch.command(
            "INSERT INTO alert_rules VALUES ({p:String}, {n:String}, {s:String}, {d:Bool}, {u:UInt64})",
            {"p": project_id, "n": name, "s": spec, "d": deleted, "u": time.time_ns()},
        )

    def alert_rules(self, project_id: str | None = None) -> list[tuple[str, str, str]]:
        where = "AND project_id = {p:String}" if project_id is not None else ""
        rows = self._ch.query(
            f"SELECT project_id, name, spec FROM alert_rules FINAL WHERE NOT deleted {where} ORDER BY 1, 2",
            {"p": project_id} if project_id is not None else None,
        ).to_pylist()
        return [(r["project_id"], r["name"], r["spec"]) for r in rows]

    def alert_states(self, project_id: str) -> list[dict[str, Any]]:
        rows = python_rows(
            self._ch.query(
                f"SELECT {', '.join(ALERT_STATE_FIELDS)} FROM alert_states FINAL "
                "WHERE project_id = {p:String} AND NOT cleared ORDER BY rule, group_key",
                {"p": project_id},
            )
        )
        return [_utc_times(r) for r in rows]

    def save_alert_evaluation(
        self,
        project_id: str,
        states: list[dict[str, Any]],
        cleared: list[tuple[str, str]],
        events: list[dict[str, Any]],
    ) -> None:
        """Events first, then states: without a transaction, a crash between them repeats a
        notification at the next evaluation rather than losing it."""
        now = time.time_ns()
        if events:
            self._ch.insert(
                "alert_events",
                pa.table(
                    {
                        "event_id": [e["event_id"] for e in events],
                        "project_id": [project_id] * len(events),
                        "rule": [e["rule"] for e in events],
                        "group_key": [e["group_key"] for e in events],
                        "status": [e["status"] for e in events],
                        "created_at": pa.array([e["at"] for e in events], pa.timestamp("us", tz="UTC")),
                        "payload": [orjson.dumps(e["payload"]).decode() for e in events],
                        "attempts": pa.array([0] * len(events), pa.uint32()),
                        "updated": pa.array([now] * len(events), pa.uint64()),
                    }
                ),
            )
        rows = [{**{k: state[k] for k in ALERT_STATE_FIELDS}, "cleared": False} for state in states]
        rows += [
            {
                "rule": rule,
                "group_key": key,
                "status": "cleared",
                "evaluated_at": datetime.now(UTC),
                "cleared": True,
            }
            for rule, key in cleared
        ]
        if rows:
            times = pa.timestamp("us", tz="UTC")
            table = pa.table(
                {
                    "project_id": [project_id] * len(rows),
                    "rule": [r["rule"] for r in rows],
                    "group_key": [r["group_key"] for r in rows],
                    "status": [r["status"] for r in rows],
                    "value": pa.array([r.get("value") for r in rows], pa.float64()),
                    **{k: pa.array([r.get(k) for r in rows], times) for k in _ALERT_TIMES},
                    "cleared": [r["cleared"] for r in rows],
                    "updated": pa.array([now] * len(rows), pa.uint64()),
                }
            )
            self._ch.insert("alert_states", table)

    def alert_events(
        self, project_id: str | None = None, undelivered: bool = False, limit: int = 100
    ) -> list[dict[str, Any]]:
        clauses, params = ["true"], {}
        if project_id is not None:
            clauses.append("project_id = {p:String}")
            params["p"] = project_id
        if undelivered:
            clauses.append("delivered_at IS NULL")
        order = "created_at" if undelivered else "created_at DESC"
        rows = python_rows(
            self._ch.query(
                "SELECT event_id, project_id, rule, group_key, status, created_at AS at, payload, "
                f"delivered_at, attempts, last_error FROM alert_events FINAL WHERE {' AND '.join(clauses)} "
                f"ORDER BY {order} LIMIT {int(limit)} {SETTINGS}",
                params,
            )
        )
        for row in rows:
            row["payload"] = orjson.loads(row["payload"])
            _utc_times(row)
        return rows

    def mark_alert_event(self, event_id: str, delivered: bool, error: str | None = None) -> None:
        # One evaluator delivers, so reading the row and writing its next version is safe.
        self._ch.command(
            "INSERT INTO alert_events SELECT event_id, project_id, rule, group_key, status, created_at, "
            "payload, if({d:Bool}, now64(6), delivered_at), attempts + 1, {e:Nullable(String)}, {u:UInt64} "
            "FROM alert_events FINAL WHERE event_id = {id:String}",
            {"d": delivered, "e": error, "u": time.time_ns(), "id": event_id},
        )
