"""The evaluation queue on DuckDB (table evaluations)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from tokentrace.store.duckdb.connection import naive
from tokentrace.store.evaluation_fields import FIELDS, KEY

_COLUMNS = ", ".join(FIELDS)
#: The row's key as one number (the table's primary key; see migration 0017).
_KEY = "md5_number(project_id || ':' || evaluator || ':' || version || ':' || trace_id || span_id)"


def _row(values: tuple[Any, ...]) -> dict[str, Any]:
    row = dict(zip(FIELDS, values, strict=True))
    for name in ("due_at", "updated_at"):
        row[name] = row[name].replace(tzinfo=UTC)
    return row


class DuckDBEvaluations:
    """EvaluationQueue over the evaluations table."""

    def queue_evaluations(self, items: list[dict[str, Any]], now: datetime) -> int:
        if not items:
            return 0
        queued = pa.table(
            {
                **{k: [i[k] for i in items] for k in KEY},
                "due_at": pa.array([naive(i["due_at"]) for i in items], pa.timestamp("us")),
            }
        )
        with self._transaction() as cur:
            cur.register("queued", queued)
            try:
                added = cur.execute(
                    f"INSERT INTO evaluations (eval_key, {_COLUMNS}) SELECT {_KEY}, {', '.join(KEY)}, "
                    "'due', 0, due_at, NULL, ?::TIMESTAMP, NULL FROM queued "
                    "ON CONFLICT DO NOTHING RETURNING 1",
                    [naive(now)],
                ).fetchall()
            finally:
                cur.unregister("queued")
        return len(added)

    def due_evaluations(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        with self._conn.cursor() as cur:
            found = cur.execute(
                f"SELECT {_COLUMNS} FROM evaluations WHERE state = 'due' AND due_at <= ? "
                "ORDER BY due_at, trace_id, span_id LIMIT ?",
                [naive(now), int(limit)],
            ).fetchall()
        return [_row(r) for r in found]

    def settle_evaluations(self, items: list[dict[str, Any]]) -> None:
        if not items:
            return
        rows = [
            (
                i["state"],
                i["attempts"],
                naive(i["due_at"]),
                i.get("error"),
                naive(i["updated_at"]),
                i.get("cost_usd"),
                *(i[k] for k in KEY),
            )
            for i in items
        ]
        with self._transaction() as cur:
            cur.executemany(
                "UPDATE evaluations SET state = ?, attempts = ?, due_at = ?, error = ?, updated_at = ?, "
                "cost_usd = ? "
                "WHERE eval_key = md5_number(? || ':' || ? || ':' || ? || ':' || ? || ?)",
                rows,
            )

    def evaluation_states(self, project_id: str) -> dict[str, dict[str, int]]:
        with self._conn.cursor() as cur:
            found = cur.execute(
                "SELECT evaluator, state, count(*) FROM evaluations WHERE project_id = ? GROUP BY ALL",
                [project_id],
            ).fetchall()
        states: dict[str, dict[str, int]] = {}
        for evaluator, state, count in found:
            states.setdefault(evaluator, {})[state] = count
        return states

    def evaluation_spend(self, since: datetime) -> dict[tuple[str, str], float]:
        with self._conn.cursor() as cur:
            found = cur.execute(
                "SELECT project_id, evaluator, sum(cost_usd) FROM evaluations "
                "WHERE updated_at >= ? AND cost_usd IS NOT NULL GROUP BY ALL",
                [naive(since)],
            ).fetchall()
        return {(project, evaluator): float(usd) for project, evaluator, usd in found}

    def put_evaluator(self, project_id: str, name: str, spec: str) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        with self._lock:
            self._writer.execute(
                "INSERT OR REPLACE INTO evaluator_specs VALUES (?, ?, ?, ?)", [project_id, name, spec, now]
            )

    def delete_evaluator(self, project_id: str, name: str) -> bool:
        with self._lock:
            deleted = self._writer.execute(
                "DELETE FROM evaluator_specs WHERE project_id = ? AND name = ? RETURNING name",
                [project_id, name],
            ).fetchall()
        return bool(deleted)

    def evaluator_specs(self, project_id: str | None = None) -> list[tuple[str, str, str]]:
        where, params = ("WHERE project_id = ?", [project_id]) if project_id is not None else ("", [])
        with self._conn.cursor() as cur:
            return cur.execute(
                f"SELECT project_id, name, spec FROM evaluator_specs {where} ORDER BY 1, 2", params
            ).fetchall()

    def evaluation_list(self, project_id: str, state: str | None, limit: int) -> list[dict[str, Any]]:
        where, params = "project_id = ?", [project_id]
        if state is not None:
            where += " AND state = ?"
            params.append(state)
        with self._conn.cursor() as cur:
            found = cur.execute(
                f"SELECT {_COLUMNS} FROM evaluations WHERE {where} "
                "ORDER BY updated_at DESC, trace_id LIMIT ?",
                [*params, int(limit)],
            ).fetchall()
        return [_row(r) for r in found]
