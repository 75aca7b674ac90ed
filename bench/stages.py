"""Ingest's CPU per span, stage by stage, in one process: where the end-to-end figure goes.

    .venv/bin/python bench/stages.py [--spans 100000] [--repeat 3]

The payload is bench/ingest.py's (agent traces of 5-9 spans, 30% of chat spans with ~2 KB
prompts, exports of 512 spans). The stages are the ones an export goes through:

- in an ingest worker: decode (OTLP protobuf), normalize, price, columns (Arrow), redact, encode
  (the spool record: Arrow IPC);
- in the server process: record (the worker's record read back), spool (append and fsync,
  wall time: it waits on the disk), write (the store's write_batch in batches of 40,000 rows,
  as the writer takes them: duplicate detection and tag inheritance included), and rollups
  (one advance over everything written; the server runs it off the request path, two minutes
  behind).

CPU is this process's (every thread's, DuckDB's included), best of `--repeat` rounds, each
round on a fresh store, with the ingest workers' cycle-collector settings (those of the checkout
run). Run it against another checkout with PYTHONPATH=OTHER/src.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # bench.ingest's trace generator

from bench.ingest import _bodies  # noqa: E402

from tokentrace.canonical import Tables  # noqa: E402
from tokentrace.ingest.columns import tables  # noqa: E402
from tokentrace.ingest.normalize import normalize  # noqa: E402
from tokentrace.ingest.otlp_proto import decode_traces  # noqa: E402
from tokentrace.ingest.prepare import price_rows  # noqa: E402
from tokentrace.ingest.record import decode_record, encode_record  # noqa: E402
from tokentrace.ingest.redact import redact  # noqa: E402
from tokentrace.ingest.spool import Spool  # noqa: E402
from tokentrace.pricing import PriceBook  # noqa: E402
from tokentrace.store.duckdb import DuckDBStore  # noqa: E402

try:  # the ingest workers' collector settings, in a checkout that has them
    from tokentrace.cycle_collector import collect_seldom
except ImportError:  # an older checkout's workers kept Python's

    def collect_seldom() -> None:
        pass


WORKER = ("decode", "normalize", "price", "columns", "redact", "encode")
SERVER = ("record", "spool", "write", "rollups")
BATCH_ROWS = 40_000


class Clock:
    """CPU (and wall) seconds per stage, summed over calls."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = dict.fromkeys(WORKER + SERVER, 0.0)
        self.wall: dict[str, float] = dict.fromkeys(WORKER + SERVER, 0.0)

    def time(self, stage: str, work: Callable[..., Any], *args: Any) -> Any:
        cpu, wall = time.process_time(), time.perf_counter()
        out = work(*args)
        self.cpu[stage] += time.process_time() - cpu
        self.wall[stage] += time.perf_counter() - wall
        return out


def _round(bodies: list[bytes], book: PriceBook, folder: Path) -> tuple[Clock, int]:
    clock = Clock()
    records: list[bytes] = []
    spans = 0
    for body in bodies:  # the worker's half, export by export
        raw = clock.time("decode", decode_traces, body)
        batch = clock.time("normalize", normalize, raw, "bench")
        clock.time("price", price_rows, book, batch.rows)
        made = clock.time("columns", tables, batch.rows, batch.content, batch.scores)
        made = clock.time("redact", redact, made)
        records.append(clock.time("encode", encode_record, made))
        spans += made.spans.num_rows
    store = DuckDBStore(folder / "stages.duckdb")
    spool = Spool(folder / "spool", lambda item, position: None)
    try:
        pending: list[Tables] = []
        rows = 0
        for record in records:  # the server's half
            got = clock.time("record", decode_record, record)
            clock.time("spool", lambda r: spool.append(r).result(), record)
            pending.append(got)
            rows += got.rows
            if rows >= BATCH_ROWS:
                clock.time("write", store.write_batch, Tables.concat(pending), None)
                pending, rows = [], 0
        if pending:
            clock.time("write", store.write_batch, Tables.concat(pending), None)
        clock.time("rollups", store.advance_rollups, datetime.now(UTC) + timedelta(minutes=5))
    finally:
        spool.close()
        store.close()
    return clock, spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bodies, _ = _bodies(args.spans, 512, seed=1)
    collect_seldom()  # the ingest workers' collector settings
    book = PriceBook()
    best: Clock | None = None
    spans = 0
    for n in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="tt-stages-") as tmp:
            clock, spans = _round(bodies, book, Path(tmp))
        if best is None:
            best = clock
        else:
            for stage in clock.cpu:
                if clock.cpu[stage] < best.cpu[stage]:
                    best.cpu[stage], best.wall[stage] = clock.cpu[stage], clock.wall[stage]
        print(f"round {n + 1}/{args.repeat} done", file=sys.stderr)
    assert best is not None
    import tokentrace

    print(f"tokentrace from {Path(tokentrace.__file__).parent}; {spans:,} spans, best of {args.repeat}\n")
    print("| where | stage | CPU µs/span | wall µs/span |\n|---|---|---|---|")
    for where, stages in (("ingest worker", WORKER), ("server", SERVER)):
        for stage in stages:
            cpu, wall = best.cpu[stage] / spans * 1e6, best.wall[stage] / spans * 1e6
            print(f"| {where} | {stage} | {cpu:.1f} | {wall:.1f} |")
        cpu = sum(best.cpu[s] for s in stages) / spans * 1e6
        wall = sum(best.wall[s] for s in stages) / spans * 1e6
        print(f"| {where} | **total** | **{cpu:.1f}** | **{wall:.1f}** |")
    # The request path's ceiling on this machine: each core does one span's worth of every stage
    # but the rollups (off the request path).
    path = sum(best.cpu[s] for s in WORKER + SERVER if s != "rollups") / spans
    print(f"\nrequest path CPU: {path * 1e6:.1f} µs/span, at most {1 / path:,.0f} spans/s per core")


if __name__ == "__main__":
    main()
