"""Cold start and idle memory of `tokentrace serve`: seconds from launch to a healthy
`/healthz` on an empty data dir, the server's RSS right after (--idle seconds), and its RSS once
settled (--settle seconds after its start): by then the writer has advanced the rollups (every
10 s) and the background jobs have made their first passes, so the figure is the one an idle
server keeps, not the one before its first background work. The ingest workers start on the
first export, so they are in neither. Median of --runs fresh servers, kept running side by side
while they settle.

    .venv/bin/python bench/cold_start.py [--runs 3] [--settle 100] [--no-grpc]

`--no-grpc` starts it with `--grpc-port 0` (OTLP over HTTP only): gRPC's libraries are then not
loaded at all.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

TOKENTRACE = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "tokentrace"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> tuple[float, float, float]:
    """(RSS, its anonymous part, its file-backed part) in MB. The file-backed part is mostly the
    shared libraries' code (DuckDB's alone is ~45 MB when the page cache holds it): shared with
    the workers and reclaimable, and larger the warmer the page cache, so it is shown apart."""
    status = Path(f"/proc/{pid}/status").read_text()
    return tuple(
        int(status.split(f"{field}:")[1].split()[0]) / 1024 for field in ("VmRSS", "RssAnon", "RssFile")
    )


@dataclass
class Started:
    server: subprocess.Popen
    data: tempfile.TemporaryDirectory
    began: float
    up_s: float
    idle: tuple[float, float, float]


def start(idle_s: float, grpc_served: bool) -> Started:
    """A fresh server on an empty data dir: its time to a healthy /healthz and RSS `idle_s` later."""
    http, grpc = _free_port(), _free_port() if grpc_served else 0
    data = tempfile.TemporaryDirectory()
    command = [
        str(TOKENTRACE),
        "serve",
        "--port",
        str(http),
        "--grpc-port",
        str(grpc),
        "--data-dir",
        data.name,
    ]
    began = time.perf_counter()
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=0.2)
            break
        except OSError:
            if server.poll() is not None:
                raise SystemExit("the server exited before it was healthy") from None
            time.sleep(0.01)
    up = time.perf_counter() - began
    time.sleep(idle_s)
    return Started(server, data, began, up, _rss_mb(server.pid))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle", type=float, default=3.0, help="seconds idle before RSS is first read")
    parser.add_argument(
        "--settle", type=float, default=100.0, help="seconds after its start the settled RSS is read at"
    )
    parser.add_argument("--no-grpc", action="store_true", help="serve OTLP over HTTP only")
    args = parser.parse_args()
    runs: list[Started] = []
    try:
        for _ in range(args.runs):
            runs.append(start(args.idle, not args.no_grpc))
        time.sleep(max(0.0, runs[-1].began + args.settle - time.perf_counter()))
        settled = [_rss_mb(run.server.pid) for run in runs]
    finally:
        for run in runs:
            run.server.terminate()
            run.server.wait(10)
            run.data.cleanup()
    print("| metric | median | range |")
    print("|---|---:|---:|")
    ups = [run.up_s for run in runs]
    print(f"| cold start to /healthz | {statistics.median(ups):.2f} s | {min(ups):.2f} to {max(ups):.2f} s |")
    labels = ("RSS", "of it anonymous", "of it file-backed (shared code)")
    for when, readings in ((f"{args.idle:.0f} s idle", [run.idle for run in runs]), ("settled", settled)):
        for part, label in enumerate(labels):
            mb = [r[part] for r in readings]
            print(f"| {label}, {when} | {statistics.median(mb):.0f} MB | {min(mb):.0f} to {max(mb):.0f} MB |")


if __name__ == "__main__":
    main()
