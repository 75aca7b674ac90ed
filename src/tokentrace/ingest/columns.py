"""Canonical rows → Arrow tables, one column at a time."""

from __future__ import annotations

from operator import itemgetter
from typing import Any

import pyarrow as pa

from tokentrace.canonical import CONTENT_SCHEMA, SCORE_SCHEMA, SPAN_SCHEMA, Tables
from tokentrace.ingest.jsontext import dumps

_SPAN_FIELDS = itemgetter(*SPAN_SCHEMA.names)
_ATTRIBUTES = SPAN_SCHEMA.get_field_index("attributes")
_RESOURCE = SPAN_SCHEMA.get_field_index("resource")


def span_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows whose attributes/resource are still dicts → a table of SPAN_SCHEMA."""
    # rows → columns, in C
    columns = list(zip(*map(_SPAN_FIELDS, rows), strict=True)) if rows else [()] * len(SPAN_SCHEMA)
    columns[_ATTRIBUTES] = list(map(dumps, columns[_ATTRIBUTES]))
    resource_json: dict[int, str] = {}  # a resource is shared by every span of its batch
    resources = []
    for resource in columns[_RESOURCE]:
        text = resource_json.get(id(resource))
        if text is None:
            text = resource_json[id(resource)] = dumps(resource)
        resources.append(text)
    columns[_RESOURCE] = resources
    return pa.Table.from_arrays(
        [pa.array(values, type=field.type) for values, field in zip(columns, SPAN_SCHEMA, strict=True)],
        schema=SPAN_SCHEMA,
    )


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
