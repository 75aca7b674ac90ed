"""The evaluation queue on ClickHouse (table evaluations, a ReplacingMergeTree: each change a
newer revision of the row). One node at a time runs the evaluation job (the one holding its
lease, jobs/lease.py), so no two nodes settle the same row."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from tokentrace.store.clickhouse.dialect import time64
from tokentrace.store.evaluation_fields import FIELDS, KEY
from tokentrace.store.python_rows import python_rows

_SCHEMA = pa.schema(
    [
        *((name, pa.string()) for name in KEY),
        ("state", pa.string()),
        ("attempts", pa.int32()),
        ("due_at", pa.timestamp("us", tz="UTC")),
        ("error", pa.string()),
        ("updated_at", pa.timestamp("us", tz="UTC")),
        ("cost_usd", pa.float64()),
        ("revision", pa.uint64()),
    ]
)


class ClickHouseEvaluations:
    """EvaluationQueue over the evaluations table."""

    def _put_evaluations(self, rows: list[dict[str, Any]]) -> None:
        revision = time.time_ns()
        columns = {name: [r.get(name) for r in rows] for name in FIELDS}
        columns["revision"] = [revision] * len(rows)
        self._ch.insert("evaluations", pa.table(columns, schema=_SCHEMA))

    def queue_evaluations(self, items: list[dict[str, Any]], now: datetime) -> int:
        if not items:
            return 0
        known = {
            tuple(r[k] for k in KEY)
            for r in self._ch.query(
                f"SELECT {', '.join(KEY)} FROM evaluations FINAL "
                "WHERE has({traces:Array(String)}, trace_id)",
                {"traces": sorted({i["trace_id"] for i in items})},
            ).to_pylist()
        }
        fresh = {}
        for item in items:
            key = tuple(item[k] for k in KEY)
            if key not in known:
                fresh[key] = {
                    **item,
                    "state": "due",
                    "attempts": 0,
                    "error": None,
                    "updated_at": now,
                    "cost_usd": None,
                }
        if fresh:
            self._put_evaluations(list(fresh.values()))
        return len(fresh)

    def due_evaluations(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        return self._evaluations(
            "state = 'due' AND due_at <= {now:DateTime64(6, 'UTC')}",
            "due_at, trace_id, span_id",
            {"now": time64(now), "n": int(limit)},
        )

    def put_evaluator(self, project_id: str, name: str, spec: str) -> None:
        self._put_evaluator(project_id, name, spec, deleted=False)

    def delete_evaluator(self, project_id: str, name: str) -> bool:
        found = any(r[1] == name for r in self.evaluator_specs(project_id))
        if found:
            self._put_evaluator(project_id, name, "", deleted=True)
        return found

    def _put_evaluator(self, project_id: str, name: str, spec: str, deleted: bool) -> None:
        self._ch.command(
            "INSERT INTO evaluator_specs VALUES ({p:String}, {n:String}, {s:String}, {d:Bool}, {u:UInt64})",
            {"p": project_id, "n": name, "s": spec, "d": deleted, "u": time.time_ns()},
        )

    def evaluator_specs(self, project_id: str | None = None) -> list[tuple[str, str, str]]:
        where = "AND project_id = {p:String}" if project_id is not None else ""
        rows = self._ch.query(
            f"SELECT project_id, name, spec FROM evaluator_specs FINAL WHERE NOT deleted {where} "
            "ORDER BY 1, 2",
            {"p": project_id} if project_id is not None else None,
        ).to_pylist()
        return [(r["project_id"], r["name"], r["spec"]) for r in rows]

    def evaluation_list(self, project_id: str, state: str | None, limit: int) -> list[dict[str, Any]]:
        where = "project_id = {p:String}" + (" AND state = {s:String}" if state is not None else "")
        params = {"p": project_id, "n": int(limit), **({"s": state} if state is not None else {})}
        return self._evaluations(where, "updated_at DESC, trace_id", params)

    def _evaluations(self, where: str, order: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        rows = python_rows(
            self._ch.query(
                f"SELECT {', '.join(FIELDS)} FROM evaluations FINAL WHERE {where} "
                f"ORDER BY {order} LIMIT {{n:UInt32}}",
                params,
            )
        )
        for row in rows:
            for name in ("due_at", "updated_at"):
                row[name] = row[name].astimezone(UTC)
        return rows

    def settle_evaluations(self, items: list[dict[str, Any]]) -> None:
        if items:
            self._put_evaluations(items)

    def evaluation_spend(self, since: datetime) -> dict[tuple[str, str], float]:
        found = self._ch.query(
            "SELECT project_id, evaluator, sum(cost_usd) AS usd FROM evaluations FINAL "
            "WHERE updated_at >= {since:DateTime64(6, 'UTC')} AND cost_usd IS NOT NULL "
            "GROUP BY project_id, evaluator",
            {"since": time64(since)},
        ).to_pylist()
        return {(row["project_id"], row["evaluator"]): float(row["usd"]) for row in found}

    def evaluation_states(self, project_id: str) -> dict[str, dict[str, int]]:
        found = self._ch.query(
            "SELECT evaluator, state, count() AS n FROM evaluations FINAL "
            "WHERE project_id = {p:String} GROUP BY evaluator, state",
            {"p": project_id},
        ).to_pylist()
        states: dict[str, dict[str, int]] = {}
        for row in found:
            states.setdefault(row["evaluator"], {})[row["state"]] = row["n"]
        return states
