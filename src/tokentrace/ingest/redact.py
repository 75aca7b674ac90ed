"""Secrets and PII out of what ingest keeps, before anything is written (the spool included).

The default rules (tokentrace.redaction: emails, API keys, bearer tokens, card numbers) run
over the free-text columns of an export's tables: span names, status messages, attributes and
resources, message content and events, score comments and labels. Column by column, RE2 finds
the values a rule might match; only those are redacted in Python. In JSON columns only string
values are redacted (a nanosecond timestamp is a number, never a card), and the JSON stays
valid. Tag columns (user_id, tenant_id …) are identifiers the application chose and are kept.
"""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from tokentrace.canonical import Tables
from tokentrace.redaction import CANDIDATE, redact_defaults

_TEXT = {"spans": ("name", "status_message"), "scores": ("comment", "string_value")}
_JSON = {
    "spans": ("attributes", "resource"),
    "content": ("system_instructions", "input_messages", "output_messages", "events"),
}


def _strings(value: Any) -> Any:
    if isinstance(value, str):
        return redact_defaults(value)
    if isinstance(value, list):
        return [_strings(v) for v in value]
    if isinstance(value, dict):
        return {k: _strings(v) for k, v in value.items()}
    return value


def _json(text: str) -> str:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return redact_defaults(text)
    return orjson.dumps(_strings(value)).decode()


def _column(column: pa.ChunkedArray, redact: Any) -> pa.ChunkedArray | pa.Array:
    hits = pc.fill_null(pc.match_substring_regex(column, CANDIDATE), False)
    if not pc.any(hits).as_py():
        return column
    found = pc.filter(column, hits).to_pylist()
    replacements = pa.array([redact(v) for v in found], pa.string())
    return pc.replace_with_mask(column.combine_chunks(), hits.combine_chunks(), replacements)


def _table(table: pa.Table, text: tuple[str, ...], json: tuple[str, ...]) -> pa.Table:
    if not table.num_rows:
        return table
    for names, redact in ((text, redact_defaults), (json, _json)):
        for name in names:
            i = table.schema.get_field_index(name)
            table = table.set_column(i, table.schema.field(i), _column(table.column(i), redact))
    return table


def redact(tables: Tables) -> Tables:
    """The tables with the default rules applied to every free-text column."""
    return Tables(
        _table(tables.spans, _TEXT["spans"], _JSON["spans"]),
        _table(tables.content, (), _JSON["content"]),
        _table(tables.scores, _TEXT["scores"], ()),
    )
