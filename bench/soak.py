"""Soak: overload, then repeated kill -9 under sustained ingest. Prints what was offered,
acknowledged and stored, and what the server held in memory. docs/reliability.md keeps the
latest figures.

    .venv/bin/python bench/soak.py                      # 60 s of overload, 20 kill -9 cycles
    .venv/bin/python bench/soak.py --overload-s 30 --cycles 5

Overload: `--senders` threads, each the stock OTel OTLP/HTTP exporter exporting 200-span
batches back to back (its own retries, honouring Retry-After), against a server with small
memory bounds so that it must refuse. Crash: a sender posting continuously and recording each
acked span, the server killed with SIGKILL every `--kill-every` seconds and restarted; at the
end every acked span must be stored exactly once.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.builders.flood import flood, peak_rss_mib  # noqa: E402
from tests.builders.processes import ServerProcess  # noqa: E402


def _stored_keys(server: ServerProcess) -> list[str]:
    with httpx.Client(base_url=server.url, timeout=300) as client:
        lines = client.get("/api/v1/spans/export", params={"format": "jsonl"}).content.splitlines()
    return [(s := orjson.loads(line))["trace_id"] + s["span_id"] for line in lines]


def overload(
    work: Path, senders: int, seconds: float, pending_mb: float, inflight_mb: float, store_mb: int
) -> None:
    server = ServerProcess(
        work / "overload",
        *("--max-pending-mb", str(pending_mb), "--max-inflight-mb", str(inflight_mb)),
        *("--store-memory-mb", str(store_mb)),
    ).start()
    try:
        started = time.monotonic()
        sent = flood(server.url, senders=senders, seconds=seconds, batch=200, timeout_s=120)
        elapsed = time.monotonic() - started
        server.wait_for_spans(len(sent.delivered), timeout=300)
        health = httpx.get(f"{server.url}/healthz").json()
        rss = peak_rss_mib(server.proc.pid)  # before the export below, which holds its own
        stored = _stored_keys(server)
    finally:
        server.stop()
    lost = len(sent.delivered - set(stored))
    twice = len(stored) - len(set(stored))
    print(f"\n## Overload: {senders} senders for {seconds:.0f} s, bounds {pending_mb} MiB pending, "
          f"{inflight_mb} MiB in flight, DuckDB {store_mb} MiB\n")  # fmt: skip
    print("| measure | value |\n| --- | ---: |")
    rows = [
        ("exports sent (each retried until accepted)", f"{sent.exports:,}"),
        ("spans acked", f"{len(sent.delivered):,}"),
        ("spans the exporters gave up on", f"{len(sent.failed):,}"),
        ("spans stored", f"{len(stored):,}"),
        ("acked spans lost", f"{lost:,}"),
        ("spans stored twice", f"{twice:,}"),
        ("acked spans per second", f"{len(sent.delivered) / elapsed:,.0f}"),
        ("refused 429 (bodies in flight)", f"{health['refused'].get('429', 0):,}"),
        ("refused 503 (store behind)", f"{health['refused'].get('503', 0):,}"),
        ("peak acked-but-unstored data", f"{health['pending_bytes_peak'] / 2**20:.1f} MiB"),
        ("peak request bodies in flight", f"{health['inflight_bytes_peak'] / 2**20:.1f} MiB"),
        ("server peak RSS", f"{rss:.0f} MiB"),
    ]
    for name, value in rows:
        print(f"| {name} | {value} |")


def crashes(work: Path, cycles: int, kill_every: float) -> None:
    server = ServerProcess(work / "crash").start()
    acked_file, stop_file = work / "acked.txt", work / "stop"
    sender = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.crash_sender", server.url, str(acked_file), str(stop_file)],
        cwd=ROOT,
    )
    restarts = []
    try:
        for _ in range(cycles):
            time.sleep(kill_every)
            server.kill9()
            began = time.monotonic()
            server.start(timeout=120)  # replays the spool: healthy means it opened cleanly
            restarts.append(time.monotonic() - began)
        time.sleep(kill_every)
    finally:
        stop_file.touch()
        sender.wait(60)
    acked = [line for line in acked_file.read_text().splitlines() if len(line) == 48]
    try:
        server.wait_for_spans(len(acked), timeout=300)
        stored = _stored_keys(server)
    finally:
        server.stop()
    torn = server.log().count("torn or corrupt record")
    print(f"\n## Crash: kill -9 every {kill_every:.0f} s under sustained ingest, {cycles} cycles\n")
    print("| measure | value |\n| --- | ---: |")
    rows = [
        ("kill -9 cycles survived (store opened, spool replayed)", f"{len(restarts)}"),
        ("spans acked", f"{len(acked):,}"),
        ("acked spans lost", f"{len(set(acked) - set(stored)):,}"),
        ("spans stored twice", f"{len(stored) - len(set(stored)):,}"),
        ("torn spool records skipped at start-up", f"{torn}"),
        ("restart to healthy, median", f"{sorted(restarts)[len(restarts) // 2]:.1f} s"),
        ("restart to healthy, slowest", f"{max(restarts):.1f} s"),
    ]
    for name, value in rows:
        print(f"| {name} | {value} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--overload-s", type=float, default=60)
    parser.add_argument("--pending-mb", type=float, default=16)
    parser.add_argument("--inflight-mb", type=float, default=4)
    parser.add_argument("--store-mb", type=int, default=256)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--kill-every", type=float, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tokentrace-soak-") as tmp:
        work = Path(tmp)
        if args.overload_s > 0:
            overload(work, args.senders, args.overload_s, args.pending_mb, args.inflight_mb, args.store_mb)
        if args.cycles > 0:
            crashes(work, args.cycles, args.kill_every)


if __name__ == "__main__":
    main()
