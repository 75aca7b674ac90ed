"""Canonical rows → Arrow tables, one column at a time."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from tokentrace.canonical import CONTENT_SCHEMA, SCORE_SCHEMA, SPAN_SCHEMA, Tables
from tokentrace.ingest.jsontext import dumps


def span_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows whose attributes/resource are still dicts → a table of SPAN_SCHEMA."""
    resource_json: dict[int, str] = {}  # a resource is shared by every span of its batch
    columns = []
    for field in SPAN_SCHEMA:
        name = field.name
        if name == "attributes":
            values = [dumps(r["attributes"]) for r in rows]
        elif name == "resource":
            values = []
            for r in rows:
                res = r["resource"]
                key = id(res)
                if key not in resource_json:
                    resource_json[key] = dumps(res)
                values.append(resource_json[key])
        else:
            values = [r[name] for r in rows]
        columns.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(columns, schema=SPAN_SCHEMA)


def _table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    # .get: a content row from a span carries no record tags (only log records have them)
    return pa.Table.from_arrays(
        [pa.array([r.get(f.name) for r in rows], type=f.type) for f in schema], schema=schema
    )


def content_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Content rows → a table of CONTENT_SCHEMA (a row without tags has none)."""
    return _table(rows, CONTENT_SCHEMA)


def score_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Score rows → a table of SCORE_SCHEMA."""
    return _table(rows, SCORE_SCHEMA)


def tables(
    spans: list[dict[str, Any]] | None = None,
    content: list[dict[str, Any]] | None = None,
    scores: list[dict[str, Any]] | None = None,
) -> Tables:
    """Canonical rows of each kind → the Tables of one write."""
    return Tables(span_table(spans or []), content_table(content or []), score_table(scores or []))
