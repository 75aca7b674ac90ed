"""Python's cycle collector, set for tokentrace's long-running processes: the server and its
ingest workers.

Both make many containers that live for one unit of work and die by reference counting: a
worker a few thousand dicts and lists an export of 512 spans, the server a dict for each of a
dashboard's 5,000 rows. The collector walked them for cycles they do not have, and every so
often walked everything the process had imported too (sessions 34-35, docs/benchmarks.md).

Collecting seldom is safe only where a unit of work leaves no cycle behind: one that held an
export's body or a week of triage's calls would keep it until the next collection. The tests
hold both to that: tests/ingest/test_pipeline_export.py (exports, refused ones too) and
tests/server/ui/test_reference_cycles.py (pages and API reads, bad parameters too).
"""

from __future__ import annotations

import atexit
import gc

#: Containers allocated beyond those freed before a collection (Python's default is 700). More
#: than an export or a dashboard read holds at once, so the collector no longer runs inside each:
#: ~8 times an export of 512 spans (2.0-2.8 µs of a worker's ~35 a span); in the server 36 full
#: collections during bench/api_reads.py against 4 (1.66 s of collecting against 0.53).
THRESHOLD = 10_000


def freeze_what_is_set_up() -> None:
    """In the server, once it is set up: collect once, move every object alive (the modules
    imported, the state opened) to the permanent generation, which no later collection walks (a
    full collection of the server's heap took ~60 ms), and collect after THRESHOLD new containers."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(THRESHOLD)
    _unfreeze_at_exit()


def collect_seldom() -> None:
    """In an ingest worker: freeze what it was forked with (without collecting first: the fork
    server's pages stay shared) and collect after THRESHOLD new containers."""
    gc.freeze()
    gc.set_threshold(THRESHOLD)
    _unfreeze_at_exit()  # (a pool's worker ends with os._exit and never runs it; bench/stages.py does)


def _unfreeze_at_exit() -> None:
    """Give what was frozen back to the collection Python makes as it exits: objects left frozen
    are never freed, and DuckDB's bindings (nanobind) then print a hundred lines of "leaked"
    warnings when the process stops."""
    atexit.unregister(gc.unfreeze)  # once, however often a process (or a test) freezes
    atexit.register(gc.unfreeze)
