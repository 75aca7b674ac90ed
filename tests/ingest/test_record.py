"""Spool records: what is acked must decode exactly, including records of older versions."""

from __future__ import annotations

import struct

import pyarrow as pa

from tokentrace.canonical import SCORE_SCHEMA, TAG_FIELDS
from tokentrace.ingest.columns import tables
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.raw import RawSpan
from tokentrace.ingest.record import _RECORD_V2, _ipc, decode_record, encode_record
from tokentrace.ingest.score_rows import score_row

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _written() -> tuple:
    raw = RawSpan(TRACE, "00f067aa0ba902b7", "", "chat", 3, 10**18, 10**18 + 5, 0, "", {}, {})
    batch = normalize([raw], "default")
    content = [
        {
            "project_id": "default",
            "trace_id": TRACE,
            "span_id": "00f067aa0ba902b7",
            "start_time": 10**18,
            "system_instructions": None,
            "input_messages": '[{"role":"user"}]',
            "output_messages": None,
            "events": None,
        }
    ]
    scores = [score_row("default", trace_id=TRACE, name="helpful", value=True, score_id="s1")]
    return batch.rows, content, scores


def test_a_record_round_trips_spans_content_and_scores():
    rows, content, scores = _written()
    original = tables(rows, content, scores)
    decoded = decode_record(encode_record(original))
    assert decoded.spans.equals(original.spans)
    assert decoded.content.equals(original.content)
    assert decoded.scores.equals(original.scores)
    assert decoded.scores.column("name").to_pylist() == ["helpful"]


def test_a_record_spooled_before_scores_existed_still_decodes():
    rows, content, _ = _written()
    original = tables(rows, content)
    first = _ipc(original.spans)
    old = struct.pack("<I", len(first)) + first + _ipc(original.content)  # the version-1 layout
    decoded = decode_record(old)
    assert decoded.spans.equals(original.spans) and decoded.content.equals(original.content)
    assert decoded.scores.schema == SCORE_SCHEMA and decoded.scores.num_rows == 0
    assert isinstance(decoded.scores, pa.Table)


def test_content_spooled_before_record_tags_existed_decodes_with_no_tags():
    rows, content, scores = _written()
    original = tables(rows, content, scores)
    old_content = original.content.drop_columns(list(TAG_FIELDS))  # the layout before tags
    old = b"".join(
        [_RECORD_V2]
        + [struct.pack("<I", len(d)) + d for d in map(_ipc, (original.spans, old_content, original.scores))]
    )
    decoded = decode_record(old)
    assert decoded.content.equals(original.content)
    assert decoded.content.column("tenant_id").null_count == 1


def test_a_record_reads_into_aligned_buffers():
    # The content stream starts 4 bytes past an 8-byte boundary of the record: read in place, its
    # int64 timestamps would be misaligned for Arrow and for DuckDB's scan of them.
    rows, content, scores = _written()
    record = encode_record(tables(rows, content, scores))
    assert (len(_RECORD_V2) + 4 + struct.unpack_from("<I", record, 4)[0] + 4) % 8 == 4
    decoded = decode_record(record)
    for table in (decoded.spans, decoded.content, decoded.scores):
        for column in table.columns:
            for chunk in column.chunks:
                assert all(b is None or b.address % 8 == 0 for b in chunk.buffers()), column
    assert (
        decoded.content.column("start_time").to_pylist()
        == tables(rows, content, scores).content.column("start_time").to_pylist()
    )
