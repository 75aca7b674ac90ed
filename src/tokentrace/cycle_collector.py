"""Python's cycle collector, set for tokentrace's long-running processes: the server and its
ingest workers.

Both make many containers that live for one unit of work and die by reference counting: a worker
a few thousand dicts and lists an export of 512 spans, the server a dict for each of a
dashboard's 5,000 rows. At Python's default threshold (700 more containers than were freed) the
collector ran several times inside each, walking them for cycles they do not have, and every few
hundred dashboard reads walked the whole heap: the ~250k objects of the modules imported, 60 ms
and more a time (session 34: 2.0-2.8 µs of a worker's ~34 a span; 7-9 ms of a 10M-span
dashboard read, and pauses up to 133 ms).
"""

from __future__ import annotations

import gc

#: Containers allocated beyond those freed before a collection: more than one export or one
#: dashboard answer holds at once, so most collections find only what outlived its work.
THRESHOLD = 10_000


def collect_seldom() -> None:
    """Move every object alive now (the modules imported, the state opened) to the permanent
    generation, which no collection walks (nor writes to: a forked worker's pages stay shared),
    and collect after THRESHOLD new containers. Call once the process is set up."""
    gc.freeze()
    gc.set_threshold(THRESHOLD)
