"""Spool records: an export's priced tables (spans, content, scores) as Arrow IPC streams, and
back; records spooled by older versions decode with the fields added since as nulls."""

from __future__ import annotations

import struct

import pyarrow as pa

from tokentrace.canonical import CONTENT_SCHEMA, SCORE_SCHEMA, SPAN_SCHEMA, Tables

_LEN = struct.Struct("<I")
# Uncompressed: lz4 cost ~4 µs a span to write in the worker and ~2-6 to read in the server,
# the request path's scarcest CPU, to save spool disk that only holds what the store lacks
# (bounded by the pending limits). Records spooled compressed still read: IPC says how.
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression=None)
_RECORD_V2 = b"TTR2"


def _ipc(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=_IPC_OPTIONS) as writer:
        writer.write_table(table)
    return sink.getvalue()


def encode_record(tables: Tables) -> bytes:
    """A spool record: the priced canonical spans, content and scores, as Arrow IPC streams."""
    parts: list[bytes | pa.Buffer] = [_RECORD_V2]
    for table in (tables.spans, tables.content, tables.scores):
        data = _ipc(table)  # joined from Arrow's buffer: one copy of the record, not two
        parts += [_LEN.pack(data.size), data]
    return b"".join(parts)


def _current(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A table spooled by an older version, with the canonical fields added since as nulls."""
    if table.schema.names == list(schema.names):
        return table
    columns = [
        table.column(f.name) if f.name in table.schema.names else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def decode_record(payload: bytes) -> Tables:
    if not payload.startswith(_RECORD_V2):
        # A record spooled by a version without scores: spans, then content to the end.
        (length,) = _LEN.unpack_from(payload)
        spans = pa.ipc.open_stream(payload[4 : 4 + length]).read_all()
        content = pa.ipc.open_stream(payload[4 + length :]).read_all()
        scores = SCORE_SCHEMA.empty_table()
        return Tables(_current(spans, SPAN_SCHEMA), _current(content, CONTENT_SCHEMA), scores)
    tables = []
    at = len(_RECORD_V2)
    whole = pa.py_buffer(payload)  # a v2 record's streams are read in place, not sliced out as copies
    for _ in range(3):
        (length,) = _LEN.unpack_from(payload, at)
        stream = whole.slice(at + 4, length)
        if stream.address % 8:  # Arrow's buffers are 8-byte aligned: a stream that starts off it
            stream = pa.py_buffer(stream.to_pybytes())  # (the content's, 4 bytes past one) is copied
        tables.append(pa.ipc.open_stream(stream).read_all())
        at += 4 + length
    spans, content, scores = tables
    return Tables(_current(spans, SPAN_SCHEMA), _current(content, CONTENT_SCHEMA), scores)
