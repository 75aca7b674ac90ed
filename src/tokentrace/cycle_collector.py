"""Python's cycle collector, set for tokentrace's long-running processes: the server and its
ingest workers.

Both make many containers that live for one unit of work and die by reference counting: a
worker a few thousand dicts and lists an export of 512 spans, the server a dict for each of a
dashboard's 5,000 rows. The collector walked them for cycles they do not have, and every so
often walked everything the process had imported too (session 34, docs/benchmarks.md).
"""

from __future__ import annotations

import atexit
import gc

#: An ingest worker's threshold: containers allocated beyond those freed before a collection
#: (Python's default is 700). More than an export holds at once, so the collector no longer
#: runs ~8 times inside each: 2.0-2.8 µs of a worker's ~35 a span.
WORKER_THRESHOLD = 10_000


def freeze_what_is_set_up() -> None:
    """Collect once, then move every object alive (the modules imported, the state opened) to the
    permanent generation, which no later collection walks: a full collection of the server's
    heap took ~60 ms, and a few hundred dashboard reads set one off."""
    gc.collect()
    gc.freeze()
    _unfreeze_at_exit()


def collect_seldom() -> None:
    """In an ingest worker: freeze what it was forked with (without collecting first: the fork
    server's pages stay shared) and collect after WORKER_THRESHOLD new containers. The server
    keeps Python's threshold: its ingest paths leave no cycle, a refused export's included
    (tests/ingest/test_pipeline_export.py), but what its other paths leave is not checked, and at
    10,000 it would wait fourteen times longer to be freed."""
    gc.freeze()
    gc.set_threshold(WORKER_THRESHOLD)
    _unfreeze_at_exit()


def _unfreeze_at_exit() -> None:
    """Give what was frozen back to the collection Python makes as it exits: objects left frozen
    are never freed, and DuckDB's bindings (nanobind) then print a hundred lines of "leaked"
    warnings when the process stops."""
    atexit.unregister(gc.unfreeze)  # once, however often a process (or a test) freezes
    atexit.register(gc.unfreeze)
