"""Canonical rows → Arrow tables, one column at a time."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from tokentrace.canonical import CONTENT_SCHEMA, SPAN_SCHEMA
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


def content_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Content rows → a table of CONTENT_SCHEMA."""
    return pa.Table.from_arrays(
        [pa.array([r[f.name] for r in rows], type=f.type) for f in CONTENT_SCHEMA],
        schema=CONTENT_SCHEMA,
    )
