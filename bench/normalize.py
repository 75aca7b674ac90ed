"""Normalize's CPU per span, in-process, on three kinds of payload: the end-to-end bench's agent
traces, every agent framework's recorded runs, and every instrumentation family's recordings.

    .venv/bin/python bench/normalize.py [--spans 60000] [--repeat 5]

Each round decodes the payloads afresh (normalize consumes the attributes it reads) and times
decode and normalize apart; the best round of `--repeat` is kept. Prints a table of µs per span.
Run it against another checkout's code with PYTHONPATH=OTHER/src to compare before and after.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # bench.ingest's trace generator

from bench.ingest import _bodies  # noqa: E402

from tokentrace.ingest.normalize import normalize  # noqa: E402
from tokentrace.ingest.otlp_proto import decode_traces  # noqa: E402


def _fixtures(folder: Path, spans: int) -> list[bytes]:
    """The recorded trace payloads under `folder`, repeated to about `spans` spans."""
    bodies = [p.read_bytes() for p in sorted(folder.glob("*/*-traces.pb"))]
    count = sum(len(decode_traces(b)) for b in bodies)
    return bodies * max(1, spans // max(count, 1))


def _measure(bodies: list[bytes], repeat: int) -> tuple[int, float, float]:
    best_decode = best_normalize = float("inf")
    spans = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        decoded = [decode_traces(b) for b in bodies]
        t1 = time.perf_counter()
        for batch in decoded:
            normalize(batch, "bench")
        t2 = time.perf_counter()
        spans = sum(len(b) for b in decoded)
        best_decode, best_normalize = min(best_decode, t1 - t0), min(best_normalize, t2 - t1)
    return spans, best_decode / spans * 1e6, best_normalize / spans * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=60_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sets = {
        "bench/ingest.py agent traces": _bodies(args.spans, 512, seed=1)[0],
        "agent frameworks' recorded runs": _fixtures(ROOT / "tests/ingest/agents/fixtures", args.spans),
        "instrumentation families' recordings": _fixtures(ROOT / "tests/ingest/fixtures", args.spans),
    }
    import tokentrace

    print(f"tokentrace from {Path(tokentrace.__file__).parent}")
    print("| payload | spans | decode µs/span | normalize µs/span |\n|---|---|---|---|")
    for name, bodies in sets.items():
        spans, decode, norm = _measure(bodies, args.repeat)
        print(f"| {name} | {spans:,} | {decode:.1f} | {norm:.1f} |")


if __name__ == "__main__":
    main()
