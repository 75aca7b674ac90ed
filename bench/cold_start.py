"""Cold start and idle memory of `tokentrace serve`: seconds from launch to a healthy
`/healthz` on an empty data dir, and the server's RSS once idle (workers start on the first
export, so they are not in it). Median of --runs fresh servers.

    .venv/bin/python bench/cold_start.py [--runs 5] [--no-grpc]

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


def one_start(idle_s: float, grpc_served: bool = True) -> tuple[float, tuple[float, float, float]]:
    """(seconds to a healthy /healthz, idle RSS in MB with its parts) of one fresh server."""
    http, grpc = _free_port(), _free_port() if grpc_served else 0
    with tempfile.TemporaryDirectory() as data:
        command = [
            str(TOKENTRACE),
            "serve",
            "--port",
            str(http),
            "--grpc-port",
            str(grpc),
            "--data-dir",
            data,
        ]
        began = time.perf_counter()
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
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
            return up, _rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle", type=float, default=3.0, help="seconds idle before RSS is read")
    parser.add_argument("--no-grpc", action="store_true", help="serve OTLP over HTTP only")
    args = parser.parse_args()
    runs = [one_start(args.idle, not args.no_grpc) for _ in range(args.runs)]
    print("| metric | median | range |")
    print("|---|---:|---:|")
    ups = [r[0] for r in runs]
    print(f"| cold start to /healthz | {statistics.median(ups):.2f} s | {min(ups):.2f} to {max(ups):.2f} s |")
    for part, label in enumerate(("idle RSS", "of it anonymous", "of it file-backed (shared code)")):
        mb = [r[1][part] for r in runs]
        print(f"| {label} | {statistics.median(mb):.0f} MB | {min(mb):.0f} to {max(mb):.0f} MB |")


if __name__ == "__main__":
    main()
