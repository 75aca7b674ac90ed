"""`serve --retention 30d`: spans, content, scores and their rollups older than that are
deleted, once at start and every `--retention-interval` (an hour), by a `Periodic` job.

The cutoff is whole hours (store.catalog.retention_cutoff), so what a query can read of spans
and of rollups ends at the same instant. Tail sampling's `keep_for` is the finer tool: it
expires a kept trace's detail and keeps its numbers; retention deletes the numbers too.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from tokentrace.store.catalog import retention_cutoff
from tokentrace.store.protocol import SpanWriter

log = logging.getLogger(__name__)


def expire(store: SpanWriter, keep: timedelta, now: datetime | None = None) -> dict[str, int]:
    """Delete what is older than `keep`; rows deleted per table."""
    cutoff = retention_cutoff(now or datetime.now(UTC), keep)
    deleted = store.delete_before(cutoff)
    if any(deleted.values()):
        log.info("retention: deleted what is older than %s: %s", cutoff.isoformat(), deleted)
    return deleted
