"""The attribution tags a span's log records carried: the rows of a batch's content that hold any,
for both engines to keep and lend to their spans (ingest/logs.py reads them off the records)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from tokentrace.canonical import TAG_FIELDS

#: Where a span is, and the tags: the columns of a record_tags row.
RECORD_TAG_COLUMNS = ("project_id", "trace_id", "span_id", "start_time", *TAG_FIELDS)


def record_tags(content: pa.Table) -> pa.Table:
    """The content rows that carry a tag, as record_tags rows (none, in the usual batch)."""
    tagged = None
    for tag in TAG_FIELDS:
        valid = pc.is_valid(content[tag])
        tagged = valid if tagged is None else pc.or_(tagged, valid)
    return content.filter(tagged).select(list(RECORD_TAG_COLUMNS))
