"""Cold start and idle memory of `tokentrace serve`: seconds from launch to a healthy
`/healthz` on an empty data dir and the server's RSS --idle seconds later, one server at a time;
then its RSS once settled, --settle seconds after its start: by then the writer has advanced the
rollups (every 10 s) and the background jobs have made their first passes, so the figure is the
one an idle server keeps, not the one before its first background work (those servers run side
by side while they settle). The ingest workers start on the first export, so they are in
neither. Medians of --runs fresh servers.

    .venv/bin/python bench/cold_start.py [--runs 3] [--settle 100] [--no-grpc]

`--no-grpc` starts it with `--grpc-port 0` (OTLP over HTTP only): gRPC's libraries are then not
loaded at all.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
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
class Server:
    pid: int
    began: float  # perf_counter at launch
    up_s: float  # to a healthy /healthz


@contextlib.contextmanager
def launched(grpc_served: bool) -> Iterator[Server]:
    """A fresh server on an empty data dir, healthy; stopped and its data dir removed on exit."""
    http, grpc = _free_port(), _free_port() if grpc_served else 0
    with tempfile.TemporaryDirectory() as data:
        command = [str(TOKENTRACE), "serve", "--port", str(http), "--grpc-port", str(grpc)]
        began = time.perf_counter()
        process = subprocess.Popen(
            [*command, "--data-dir", data], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=0.2)
                    break
                except OSError:
                    if process.poll() is not None:
                        raise SystemExit("the server exited before it was healthy") from None
                    time.sleep(0.01)
            yield Server(process.pid, began, time.perf_counter() - began)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _row(label: str, values: list[float], unit: str, digits: int) -> str:
    return (
        f"| {label} | {statistics.median(values):.{digits}f} {unit} | "
        f"{min(values):.{digits}f} to {max(values):.{digits}f} {unit} |"
    )


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
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    ups, idle = [], []
    for _ in range(args.runs):  # one at a time: nothing else starts beside the one timed
        with launched(not args.no_grpc) as server:
            time.sleep(args.idle)
            ups.append(server.up_s)
            idle.append(_rss_mb(server.pid))
    settled = []
    with contextlib.ExitStack() as running:
        servers = [running.enter_context(launched(not args.no_grpc)) for _ in range(args.runs)]
        for server in servers:  # each read --settle seconds after its own start
            time.sleep(max(0.0, server.began + args.settle - time.perf_counter()))
            settled.append(_rss_mb(server.pid))
    print("| metric | median | range |")
    print("|---|---:|---:|")
    print(_row("cold start to /healthz", ups, "s", 2))
    labels = ("RSS", "of it anonymous", "of it file-backed (shared code)")
    for when, readings in ((f"{args.idle:.0f} s idle", idle), (f"settled ({args.settle:.0f} s)", settled)):
        for part, label in enumerate(labels):
            print(_row(f"{label}, {when}", [r[part] for r in readings], "MB", 0))


if __name__ == "__main__":
    main()
