"""Sustained end-to-end OTLP/HTTP ingest: acked and queryable spans per second.

Starts `tokentrace serve` on free loopback ports, pre-generates realistic agent traces
(root, 2-6 chat spans with gen_ai attributes, tool and retrieval spans, 30% with ~2 KB
prompts), then several sender processes post them concurrently. The clock stops when the
store has every span (stats: spans == sent, pending == 0). Prints a table.

    .venv/bin/python bench/ingest.py [--senders 3] [--spans 300000] [--batch 512] [--ingest-workers N]
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2

MODELS = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-3-5-haiku-20241022"),
]
PROMPT = ("You are a helpful support agent. " * 64)[:2000]


def _kv(key: str, value) -> common_pb2.KeyValue:
    v = common_pb2.AnyValue()
    if isinstance(value, str):
        v.string_value = value
    elif isinstance(value, float):
        v.double_value = value
    else:
        v.int_value = value
    return common_pb2.KeyValue(key=key, value=v)


def _trace(scope, rng: random.Random, now: int) -> int:
    trace_id = os.urandom(16)
    root_id = os.urandom(8)
    tenant, user = f"tenant-{rng.randrange(5)}", f"user-{rng.randrange(50)}"
    root = scope.spans.add(
        trace_id=trace_id,
        span_id=root_id,
        name="invoke_agent support",
        kind=1,
        start_time_unix_nano=now,
        end_time_unix_nano=now + 3_000_000_000,
    )
    root.attributes.extend(
        [
            _kv("gen_ai.operation.name", "invoke_agent"),
            _kv("tenant.id", tenant),
            _kv("user.id", user),
            _kv("session.id", f"s-{rng.randrange(500)}"),
            _kv("tokentrace.feature", "refund-chat"),
        ]
    )
    count = 1
    t = now
    for _ in range(rng.randint(2, 6)):
        provider, model = rng.choice(MODELS)
        span = scope.spans.add(
            trace_id=trace_id,
            span_id=os.urandom(8),
            parent_span_id=root_id,
            name=f"chat {model}",
            kind=3,
            start_time_unix_nano=t,
            end_time_unix_nano=t + rng.randint(200, 2000) * 1_000_000,
        )
        inp = rng.randint(200, 8000)
        attrs = [
            _kv("gen_ai.operation.name", "chat"),
            _kv("gen_ai.provider.name", provider),
            _kv("gen_ai.request.model", model),
            _kv("gen_ai.response.model", model),
            _kv("gen_ai.usage.input_tokens", inp),
            _kv("gen_ai.usage.output_tokens", rng.randint(10, 800)),
            _kv("gen_ai.usage.cache_read.input_tokens", inp // 2),
            _kv("gen_ai.request.temperature", 0.2),
            _kv("gen_ai.response.id", os.urandom(8).hex()),
        ]
        if rng.random() < 0.3:
            attrs.append(
                _kv(
                    "gen_ai.input.messages",
                    f'[{{"role":"user","parts":[{{"type":"text","content":"{PROMPT}"}}]}}]',
                )
            )
        span.attributes.extend(attrs)
        t += 250_000_000
        count += 1
    tool = scope.spans.add(
        trace_id=trace_id,
        span_id=os.urandom(8),
        parent_span_id=root_id,
        name="execute_tool lookup_order",
        kind=1,
        start_time_unix_nano=t,
        end_time_unix_nano=t + 20_000_000,
    )
    tool.attributes.extend([_kv("gen_ai.operation.name", "execute_tool"), _kv("gen_ai.tool.name", "lookup")])
    retrieval = scope.spans.add(
        trace_id=trace_id,
        span_id=os.urandom(8),
        parent_span_id=root_id,
        name="retrieval kb",
        kind=1,
        start_time_unix_nano=t,
        end_time_unix_nano=t + 40_000_000,
    )
    retrieval.attributes.extend(
        [_kv("gen_ai.operation.name", "retrieval"), _kv("gen_ai.data_source.id", "kb")]
    )
    return count + 2


def _bodies(spans: int, batch: int, seed: int) -> tuple[list[bytes], int]:
    rng = random.Random(seed)
    bodies, total = [], 0
    now = time.time_ns()
    while total < spans:
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        rs.resource.attributes.extend([_kv("service.name", "support-bot"), _kv("service.version", "1.0")])
        scope = rs.scope_spans.add()
        scope.scope.name = "bench"
        n = 0
        while n < batch:
            n += _trace(scope, rng, now)
        bodies.append(req.SerializeToString())
        total += n
    return bodies, total


def _sender(port: int, bodies: list[bytes], start, results) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    start.wait()
    retries = 0
    for body in bodies:
        while True:
            conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                break
            retries += 1  # 503: the store is behind; back off as an OTLP exporter would
            time.sleep(float(response.getheader("Retry-After", "1")))
    results.put(retries)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_s(pids: list[int]) -> float:
    """User and system CPU seconds the processes have used so far (the living ones)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    """The processes below `pid`: the ingest workers and the fork server that starts them."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=3)
    parser.add_argument("--spans", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=512, help="spans per export request")
    parser.add_argument("--port", type=int, default=None, help="use a running server (e.g. under a profiler)")
    parser.add_argument("--ingest-workers", type=int, default=None, help="the server's --ingest-workers")
    parser.add_argument(
        "--evaluators", type=Path, default=None, help="the server's --evaluators file (evaluations on)"
    )
    args = parser.parse_args()

    per_sender = args.spans // args.senders
    print(f"generating {args.spans:,} spans for {args.senders} senders...", file=sys.stderr)
    with mp.Pool(args.senders) as pool:
        generated = pool.starmap(_bodies, [(per_sender, args.batch, seed) for seed in range(args.senders)])
    total = sum(n for _, n in generated)
    content_bytes = sum(len(b) for bodies, _ in generated for b in bodies)

    server = None
    port = args.port
    if port is None:
        data_dir = Path(tempfile.mkdtemp(prefix="tt-bench-"))
        port = _free_port()
        command = [sys.executable, "-m", "tokentrace.cli", "serve", "--data-dir", str(data_dir)]
        server = subprocess.Popen(
            [*command, "--port", str(port), "--grpc-port", "0"]
            + ([] if args.ingest_workers is None else ["--ingest-workers", str(args.ingest_workers)])
            + (
                []
                if args.evaluators is None
                else [
                    "--evaluators",
                    str(args.evaluators),
                ]
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    try:
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        stats_url = f"http://127.0.0.1:{port}/api/v1/stats"
        base_spans = httpx.get(stats_url, timeout=60).json()["spans"]
        helpers = _descendants(server.pid) if server else []
        cpu_before = (_cpu_s([server.pid]) if server else 0.0, _cpu_s(helpers))
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start, results = mp.Event(), mp.Queue()
        senders = [mp.Process(target=_sender, args=(port, bodies, start, results)) for bodies, _ in generated]
        for p in senders:
            p.start()
        t0 = time.perf_counter()
        start.set()
        for p in senders:
            p.join()
        acked = time.perf_counter() - t0
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        senders_cpu = (children.ru_utime + children.ru_stime) - (
            children_before.ru_utime + children_before.ru_stime
        )
        retries = sum(results.get() for _ in senders)
        while True:
            stats = httpx.get(f"http://127.0.0.1:{port}/api/v1/stats", timeout=60).json()
            if stats["spans"] - base_spans >= total and stats["pending_spans"] == 0:
                break
            time.sleep(0.05)
        queryable = time.perf_counter() - t0
        rss = _peak_rss_mb(server.pid) if server else float("nan")
        helpers = _descendants(server.pid) if server else []
        server_cpu = (_cpu_s([server.pid]) if server else 0.0) - cpu_before[0]
        helpers_cpu = _cpu_s(helpers) - cpu_before[1]
        helpers_rss = sum(_peak_rss_mb(p) for p in helpers)
        assert stats["spans"] - base_spans == total, stats
    finally:
        if server:
            server.terminate()
            server.wait(60)

    print()
    print("| metric | value |")
    print("|---|---|")
    print(f"| spans sent (traces of 5-9 spans, 30% of chat spans with ~2 KB prompts) | {total:,} |")
    print(
        f"| OTLP payload | {content_bytes / 1e6:,.1f} MB in {sum(len(b) for b, _ in generated):,} requests |"
    )
    print(f"| concurrent senders | {args.senders} |")
    workers = "default" if args.ingest_workers is None else args.ingest_workers
    print(f"| server --ingest-workers | {workers} |")
    print(f"| all acked (fsynced) after | {acked:.2f} s ({total / acked:,.0f} spans/s) |")
    print(f"| all queryable after | {queryable:.2f} s |")
    print(f"| **end-to-end spans/s (acked and queryable)** | **{total / queryable:,.0f}** |")
    print(f"| 503 + Retry-After answers | {retries} |")
    if server:
        per_span = 1e6 / total
        print(
            f"| CPU µs/span: server process, ingest workers, senders | {server_cpu * per_span:.1f}, "
            f"{helpers_cpu * per_span:.1f}, {senders_cpu * per_span:.1f} "
            f"(bench/stages.py splits them by stage) |"
        )
    print(f"| server peak RSS | {rss:,.0f} MB |")
    print(f"| helper processes' peak RSS (workers, fork server: {len(helpers)}) | {helpers_rss:,.0f} MB |")


if __name__ == "__main__":
    main()
