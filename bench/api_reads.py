"""Dashboard reads through the API (issue 27, goal 3: every one ≤ 100 ms at 10M spans / 30 days).

    .venv/bin/python bench/scale.py --spans 10000000 --batch 50000 --repeat 1 --no-storage --keep /tmp/s10
    .venv/bin/python bench/api_reads.py --data-dir /tmp/s10 [--repeat 21]
    PYTHONPATH=OTHER/src .venv/bin/python bench/api_reads.py --data-dir /tmp/s10   # another checkout

Starts `tokentrace serve` on a copy of --data-dir (the server compacts and rolls up in it: the
kept store stays as it was), then times each read over the stored spans' whole range: the median
of --repeat calls after two warm-ups, on one keep-alive connection, the body read. The client is
httpx, in this process: its own parsing of a 5 MB answer is in the figure, as a browser's would be.
Triage is timed too (3 calls): in-process figures are bench/scale.py's.
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx

STORE = "tokentrace.duckdb"  # the file `serve --data-dir` opens


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _range(path: Path) -> tuple[str, str]:
    """From the day the stored spans start to the hour after the last, as the API's instants
    (whole days and hours, as earlier figures were read: a range that starts inside a minute
    reads that minute's spans; and triage's last hour is the data's)."""
    with duckdb.connect(str(path), read_only=True) as conn:
        bounds = "SELECT epoch_ns(min(start_time)), epoch_ns(max(start_time)) FROM spans"
        first, last = conn.execute(bounds).fetchone()
    if first is None:
        raise SystemExit(f"{path} holds no spans")

    def instant(seconds: int) -> str:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    day, hour = 86_400, 3_600
    return instant(first // 10**9 // day * day), instant((last // 10**9 // hour + 1) * hour)


def day_before(instant: str) -> str:
    shape = "%Y-%m-%dT%H:%M:%SZ"
    return (datetime.strptime(instant, shape) - timedelta(days=1)).strftime(shape)


def reads(since: str, until: str) -> list[tuple[str, str]]:
    """Each dashboard question and its API call."""
    q = f"since={since}&until={until}"
    totals = f"/api/v1/rollups?distinct=false&{q}"
    return [
        ("cost by tenant", f"{totals}&group_by=tenant_id"),
        ("cost by model per hour", f"{totals}&group_by=request_model&bucket=1h"),
        ("cost by feature and prompt version per day", f"{totals}&group_by=feature,prompt_version&bucket=1d"),
        ("cost by user", f"{totals}&group_by=user_id"),
        ("p50/p95/p99 latency by model", f"/api/v1/latency?group_by=request_model&{q}"),
        ("the same per hour", f"/api/v1/latency?group_by=request_model&bucket=1h&{q}"),
        ("the newest traces (a page of 50)", f"/api/v1/traces?limit=50&{q}"),
        ("the same over the last day", f"/api/v1/traces?limit=50&since={day_before(until)}&until={until}"),
        ("the newest traces with an error", f"/api/v1/traces?limit=50&errors=true&{q}"),
        ("the newest traces costing $0.10 or more", f"/api/v1/traces?limit=50&min_cost=0.1&{q}"),
        (
            "triage, the last hour against the day before",
            f"/api/v1/triage?since=1h&baseline=24h&until={until}",
        ),
        (
            "triage, the last day against the week before",
            f"/api/v1/triage?since=24h&baseline=7d&until={until}",
        ),
    ]


def _shown(url: str) -> str:
    """The call without its range (the table's title says it)."""
    return re.sub(r"&?(since|until)=\d{4}-\d\d-\d\dT[\d:]+Z", "", url).replace("?&", "?")


def _timed(client: httpx.Client, url: str, repeat: int) -> tuple[float, int]:
    for _ in range(2):
        client.get(url).raise_for_status()
    took = []
    size = 0
    for _ in range(repeat):
        began = time.perf_counter()
        answer = client.get(url)
        size = len(answer.content)
        took.append(time.perf_counter() - began)
        answer.raise_for_status()
    return statistics.median(took) * 1000, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help=f"a folder holding {STORE}")
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()
    kept = args.data_dir / STORE
    since, until = _range(kept)
    with tempfile.TemporaryDirectory(prefix="tt-api-reads-") as tmp:
        shutil.copy(kept, Path(tmp) / STORE)
        port = _free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tokentrace.cli",
                "serve",
                "--data-dir",
                tmp,
                "--port",
                str(port),
                "--grpc-port",
                "0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
                for _ in range(600):
                    try:
                        if client.get("/healthz").status_code == 200:
                            break
                    except httpx.TransportError:
                        time.sleep(0.1)
                spans = client.get("/api/v1/stats").json()["spans"]
                print(f"\n| read, {since} to {until} ({spans:,} spans) | median | answer | API call |")
                print("|---|---:|---:|---|")
                newest = client.get(f"/api/v1/traces?limit=1&since={since}&until={until}").json()
                one = f"/api/v1/traces/{newest['traces'][0]['trace_id']}"
                for label, url in [*reads(since, until), ("one trace", one)]:
                    repeat = 3 if "triage" in label else args.repeat
                    ms, size = _timed(client, url, repeat)
                    print(f"| {label} | {ms:,.0f} ms | {size / 1e6:.2f} MB | `{_shown(url)}` |")
        finally:
            server.terminate()
            server.wait(timeout=60)


if __name__ == "__main__":
    main()
