"""UI page render time with a million spans in the store.

Fills a DuckDB store (in-process: normalize, price, write, as ingest does) with agent traces
spread over the last 7 days: a root span, 2-6 chat calls over four models with usage, some
streamed (TTFT), 3% failing by type, a tool and a retrieval span; five tenants, 200 users,
5,000 sessions, four features with prompt templates and versions. Then starts a real
`tokentrace serve` on it and requests every page several times, reading the server's own
`Server-Timing` header (time inside the handler: queries plus template). Prints a table.

    .venv/bin/python bench/ui_pages.py [--spans 1000000] [--db /tmp/tt-ui-bench] [--rounds 7]

The store is kept in --db and reused when it already holds the spans asked for.
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tokentrace.ingest.columns import tables
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.prepare import price_rows
from tokentrace.ingest.raw import RawSpan
from tokentrace.pricing import PriceBook
from tokentrace.store.duckdb import DuckDBStore

MODELS = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-3-5-haiku-20241022"),
]
FEATURES = ["refund-chat", "search", "summarize", "classify"]
ERRORS = ["rate_limit", "timeout", "server_error", "context_length"]
DAYS = 7


def _trace(rng: random.Random, at_ns: int, ids: list[int]) -> list[RawSpan]:
    ids[0] += 1
    trace_id = f"{rng.getrandbits(64):016x}{ids[0]:016x}"
    root_id = f"{rng.getrandbits(63) | 1:016x}"
    feature = rng.choice(FEATURES)
    tags = {
        "tenant.id": f"tenant-{rng.randrange(5)}",
        "user.id": f"user-{rng.randrange(200)}",
        "session.id": f"s-{rng.randrange(5000)}",
        "tokentrace.feature": feature,
        "tokentrace.prompt.template": feature,
        "tokentrace.prompt.version": rng.choice(["v1", "v2"]),
    }
    resource = {"service.name": "support-bot", "deployment.environment.name": "prod"}
    spans = []
    t = at_ns
    for _ in range(rng.randint(2, 6)):
        provider, model = rng.choice(MODELS)
        duration = rng.randint(200, 4000) * 1_000_000
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "gen_ai.response.model": model,
        }
        status, error = 0, ""
        if rng.random() < 0.03:
            status, error = 2, rng.choice(ERRORS)
            attributes["error.type"] = error
        else:
            inp = rng.randint(200, 12000)
            attributes |= {
                "gen_ai.usage.input_tokens": inp,
                "gen_ai.usage.output_tokens": rng.randint(10, 800),
                "gen_ai.usage.cache_read.input_tokens": inp // 3,
            }
            if rng.random() < 0.4:
                attributes |= {"gen_ai.request.stream": True, "tokentrace.ttft_ms": rng.randint(100, 900)}
        spans.append(
            RawSpan(
                trace_id,
                f"{rng.getrandbits(63) | 1:016x}",
                root_id,
                f"chat {model}",
                3,
                t,
                t + duration,
                status,
                error,
                attributes,
                resource,
            )
        )
        t += duration
    for name, operation in (("execute_tool lookup_order", "execute_tool"), ("retrieval kb", "retrieval")):
        spans.append(
            RawSpan(
                trace_id,
                f"{rng.getrandbits(63) | 1:016x}",
                root_id,
                name,
                1,
                t,
                t + 30_000_000,
                0,
                "",
                {"gen_ai.operation.name": operation},
                resource,
            )
        )
        t += 30_000_000
    root = RawSpan(
        trace_id,
        root_id,
        "",
        "invoke_agent support",
        1,
        at_ns,
        t,
        0,
        "",
        {"gen_ai.operation.name": "invoke_agent", **tags},
        resource,
    )
    return [root, *spans]


def fill(path: Path, spans: int, seed: int = 7) -> int:
    """Write `spans` (about) into a fresh store at `path`; returns how many."""
    rng = random.Random(seed)
    book = PriceBook()
    store = DuckDBStore(path)
    now = time.time_ns()
    span_ns = DAYS * 86400 * 10**9
    written, ids, batch = 0, [0], []
    started = time.perf_counter()
    while written < spans:
        at = now - int(span_ns * (1 - (written + len(batch)) / spans)) + rng.randrange(10**9)
        batch += _trace(rng, at, ids)
        if len(batch) >= 10_000 or written + len(batch) >= spans:
            prepared = normalize(batch, "default")
            price_rows(book, prepared.rows)
            store.write_batch(tables(prepared.rows), None)
            written += len(batch)
            batch = []
            print(f"\r  {written:,} spans ({time.perf_counter() - started:.0f} s)", end="", file=sys.stderr)
    print(file=sys.stderr)
    store.close()
    return written


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_ms(response: httpx.Response) -> float:
    timing = response.headers["server-timing"]  # app;dur=12.3
    return float(timing.split("dur=")[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=Path("/tmp/tt-ui-bench"), help="data dir, kept")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    path = args.db / "tokentrace.duckdb"
    held = 0
    if path.exists():
        store = DuckDBStore(path)
        held = store.totals("default")["spans"]
        store.close()
    if held < args.spans:
        for leftover in args.db.glob("*"):
            if leftover.is_file():
                leftover.unlink()
        print(f"filling {path} with {args.spans:,} spans...", file=sys.stderr)
        held = fill(path, args.spans)

    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            *("-m", "tokentrace.cli", "serve", "--data-dir", str(args.db)),
            "--port",
            str(port),
            "--grpc-port",
            "0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            for _ in range(100):
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            newest = client.get("/api/v1/traces", params={"limit": 1}).json()["traces"][0]
            session = newest["session_id"]
            pages = [
                "/",
                "/?since=7d",
                "/overview/movers?since=1h",
                "/overview/movers?since=24h",
                "/cost",
                "/cost?since=7d&by=request_model",
                "/traces",
                "/traces?since=7d&min_cost=0.05&status=error",
                f"/traces/{newest['trace_id']}",
                "/sessions",
                f"/sessions/{session}",
                "/latency",
                "/latency?since=7d",
                "/alerts",
            ]
            print(
                f"\n{held:,} spans in the store ({DAYS} days); server time per page, {args.rounds} rounds\n"
            )
            print("| page | median ms | max ms | status |\n|---|---|---|---|")
            for page in pages:
                client.get(page)  # warm the page's code path once
                times, status = [], 0
                for _ in range(args.rounds):
                    response = client.get(page)
                    status = response.status_code
                    times.append(_server_ms(response))
                print(f"| `{page}` | {statistics.median(times):.1f} | {max(times):.1f} | {status} |")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
