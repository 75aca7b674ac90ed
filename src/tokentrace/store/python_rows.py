"""Arrow rows as Python values, the same with or without pandas installed.

pyarrow turns a nanosecond timestamp into a pandas Timestamp when pandas can be imported, and
raises for one that is not a whole microsecond when it cannot: pandas is no dependency of the
server, so code that reads rows into Python goes through here.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa


def _retyped(schema: pa.Schema, to: pa.DataType | None) -> pa.Schema:
    fields = []
    for field in schema:
        if pa.types.is_timestamp(field.type) and field.type.unit == "ns":
            field = field.with_type(to or pa.timestamp("us", tz=field.type.tz))
        fields.append(field)
    return pa.schema(fields)


def python_rows(table: pa.Table) -> list[dict[str, Any]]:
    """Rows as dicts; nanosecond timestamps as datetimes (truncated to the microsecond)."""
    return table.cast(_retyped(table.schema, None), safe=False).to_pylist()


def exact_rows(table: pa.Table) -> tuple[list[dict[str, Any]], pa.Schema]:
    """Rows as dicts with nanosecond timestamps as integers, and the schema that `restore` takes
    them back with: for rows that are edited and written again, to the nanosecond."""
    return table.cast(_retyped(table.schema, pa.int64())).to_pylist(), table.schema


def restore(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """The table of rows from `exact_rows`, timestamps as they were."""
    return pa.Table.from_pylist(rows, schema=_retyped(schema, pa.int64())).cast(schema)
