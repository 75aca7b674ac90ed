"""A job's lease: the jobs that must run on one node at a time (evaluating, alerting, sampling
sweeps) run on the node that holds theirs, so several `tokentrace serve` nodes over one
ClickHouse can all run background jobs and none judges a call, or sends a notification, twice.
A node that stops holding it (stopped, killed, cut off) keeps it until it expires: then another
takes it at its next run. The node restarted under the same name takes it back at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tokentrace.store.protocol import Store


@dataclass(frozen=True)
class Lease:
    store: Store
    name: str
    holder: str  # the node (serve's --node, by default its host and spool directory)
    ttl: timedelta

    def held(self) -> bool:
        """Take or renew the lease; whether this node holds it (and may run the job now)."""
        return self.store.hold_lease(self.name, self.holder, datetime.now(UTC), self.ttl)


def lease_for(
    store: Store, name: str, holder: str, interval: timedelta, longest_run: timedelta = timedelta(seconds=30)
) -> Lease:
    """The lease of a job run every `interval`: held across three missed runs and at least its
    longest run, so a slow run does not hand the job over while it works; a dead node's job
    moves within that time."""
    return Lease(store, name, holder, max(3 * interval, longest_run))
