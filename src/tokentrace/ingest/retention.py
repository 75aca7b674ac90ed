"""`serve --retention 30d`: spans, content, scores and their rollups older than that are
deleted, every `interval` (an hour) on its own thread, and once at start.

The cutoff is whole hours (store.base.retention_cutoff), so what a query can read of spans
and of rollups ends at the same instant. Tail sampling's `keep_for` is the finer tool: it
expires a kept trace's detail and keeps its numbers; retention deletes the numbers too.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from tokentrace.periodic import Periodic
from tokentrace.store.base import Store, retention_cutoff

log = logging.getLogger(__name__)


class Retention:
    """Deletes what is older than `keep`, now and every `interval`."""

    def __init__(self, store: Store, keep: timedelta, interval: timedelta = timedelta(hours=1)) -> None:
        self.store = store
        self.keep = keep
        self.schedule = Periodic("retention", interval, self.run_once, at_start=True)

    def run_once(self, now: datetime | None = None) -> dict[str, int]:
        """Delete what is past retention; rows deleted per table."""
        cutoff = retention_cutoff(now or datetime.now(UTC), self.keep)
        deleted = self.store.delete_before(cutoff)
        if any(deleted.values()):
            log.info("retention: deleted what is older than %s: %s", cutoff.isoformat(), deleted)
        return deleted

    def start(self) -> None:
        self.schedule.start()

    def stop(self) -> None:
        self.schedule.stop()
