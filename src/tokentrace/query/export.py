"""Export canonical spans as JSON Lines or Parquet, streamed batch by batch."""

from __future__ import annotations

import io
from collections.abc import Generator

import orjson
import pyarrow as pa

from tokentrace.canonical import SPAN_SCHEMA
from tokentrace.query.records import records
from tokentrace.store.filters import SpanFilter
from tokentrace.store.protocol import Store

#: Parquet carries UTC explicitly so pandas and polars read aware timestamps.
PARQUET_SCHEMA = pa.schema(
    [
        pa.field(f.name, pa.timestamp("ns", tz="UTC")) if pa.types.is_timestamp(f.type) else f
        for f in SPAN_SCHEMA
    ]
)


def jsonl(store: Store, f: SpanFilter) -> Generator[bytes, None, None]:
    """One canonical span per line; attributes and resource as JSON objects."""
    for batch in store.export(f):
        lines = []
        for row in records(pa.Table.from_batches([batch])):
            row["attributes"] = orjson.Fragment(row["attributes"] or "{}")
            row["resource"] = orjson.Fragment(row["resource"] or "{}")
            lines.append(orjson.dumps(row))
        yield b"\n".join(lines) + b"\n"


def parquet(store: Store, f: SpanFilter) -> Generator[bytes, None, None]:
    """A Parquet file with exactly the canonical fields, written batch by batch."""
    import pyarrow.parquet as pq  # here: Parquet's libraries are ~10 MB of a server's idle memory

    buffer = io.BytesIO()
    with pq.ParquetWriter(buffer, PARQUET_SCHEMA, compression="zstd") as writer:
        for batch in store.export(f):
            writer.write_table(pa.Table.from_batches([batch]).cast(PARQUET_SCHEMA))
            if buffer.tell() > 1 << 20:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()
