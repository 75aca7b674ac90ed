"""A RawSpan with working defaults for any attributes, and the one row normalize makes of it."""

from __future__ import annotations

import time

from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.raw import RawSpan


def raw(attrs: dict | None = None, resource: dict | None = None, **fields) -> RawSpan:
    now = time.time_ns()
    base = dict(
        trace_id="0af7651916cd43dd8448eb211c80319c",
        span_id="b7ad6b7169203331",
        parent_span_id="",
        name="chat",
        kind=3,
        start_unix_nano=now,
        end_unix_nano=now + 2_000_000,
        status_code=0,
        status_message="",
        attributes=dict(attrs or {}),
        resource=resource or {"service.name": "svc"},
    )
    base.update(fields)
    return RawSpan(**base)


def one(span: RawSpan) -> dict:
    batch = normalize([span], "p1")
    assert not batch.errors, batch.errors
    return batch.rows[0]
