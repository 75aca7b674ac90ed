"""Scale: ingest with rollups, dashboard queries from rollups vs raw spans over --days, and
storage bytes per span with and without tail sampling, on either store: DuckDB (a file), or
ClickHouse (`--store clickhouse`: the ClickHouse engine in-process through chDB, one core of
this machine's; a server adds network and gains cores).

Canonical span tables are generated column-wise (agent traces of a root, three chat calls and
a tool call, tagged with tenant, user, feature and prompt version; 2% of traces with an error;
0.5% of spans arriving 5-60 minutes late) spread evenly over --days (30), and written through
the store's write_batch in time order, the rollups advanced behind each batch as the writer does.
Each query is timed on a warm store, median of --repeat runs.

    .venv/bin/python bench/scale.py [--store duckdb|clickhouse] [--spans 2000000] [--days 30]
        [--batch 50000] [--repeat 5] [--root-tagged 0.3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tokentrace.canonical import GRAINS, SPAN_SCHEMA, Tables
from tokentrace.ingest.columns import content_table, score_table
from tokentrace.query import aggregates, rollups
from tokentrace.query.triage import triage
from tokentrace.store.clickhouse import ClickHouseStore
from tokentrace.store.clickhouse.transport import connect
from tokentrace.store.duckdb import DuckDBStore
from tokentrace.store.filters import SpanFilter
from tokentrace.store.protocol import Store
from tokentrace.store.sampling import SamplingPolicy

SPANS_PER_TRACE = 5
MODELS = np.array(["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "claude-3-5-haiku"])
PROVIDERS = np.array(["openai", "openai", "anthropic", "anthropic"])
PRICE_PER_TOKEN = np.array([5e-6, 0.3e-6, 6e-6, 1.6e-6])
TENANTS = np.array([f"tenant-{i}" for i in range(20)])
FEATURES = np.array(["refund-chat", "search", "summarize", "triage"])
VERSIONS = np.array(["v1", "v2", "v3"])
USERS = 5000


def _hex(n: int, nbytes: int) -> np.ndarray:
    """n random ids of nbytes, as hex text."""
    return np.frombuffer(os.urandom(n * nbytes).hex().encode(), dtype=f"S{2 * nbytes}").astype(str)


def generate(traces: int, start: datetime, days: int, seed: int, root_tagged: float = 0.0) -> pa.Table:
    """`traces` agent traces spread over `days` from `start`, as one table sorted by arrival.
    A `root_tagged` share of the traces carry their tags on the root alone (a request span
    tagged by hand), so their other spans inherit them."""
    rng = np.random.default_rng(seed)
    n = traces * SPANS_PER_TRACE
    t0 = int(start.timestamp() * 1e9) + np.sort(rng.integers(0, days * 86400 * 10**9, traces))
    trace_ids = np.repeat(_hex(traces, 16), SPANS_PER_TRACE)
    span_ids = _hex(n, 8)
    position = np.tile(np.arange(SPANS_PER_TRACE), traces)
    roots = span_ids[::SPANS_PER_TRACE]
    parent = np.where(position == 0, "", np.repeat(roots, SPANS_PER_TRACE))
    is_chat = (position >= 1) & (position <= 3)
    model = rng.integers(0, len(MODELS), n)
    duration_ms = np.where(is_chat, rng.lognormal(6.6, 0.7, n), np.where(position == 0, 3000.0, 20.0))
    start_ns = np.repeat(t0, SPANS_PER_TRACE) + position * 300_000_000
    failed = np.repeat(rng.random(traces) < 0.02, SPANS_PER_TRACE) & (position == 3)
    input_tokens = np.where(is_chat & ~failed, rng.integers(200, 8000, n), 0)
    output_tokens = np.where(is_chat & ~failed, rng.integers(10, 800, n), 0)
    cost = (input_tokens + 3 * output_tokens) * PRICE_PER_TOKEN[model]
    operation = np.select([position == 0, is_chat], ["invoke_agent", "chat"], "execute_tool")
    user = np.repeat(rng.integers(0, USERS, traces), SPANS_PER_TRACE)
    day = (start_ns - start_ns[0]) // (86400 * 10**9)
    streaming = is_chat & (rng.random(n) < 0.4)
    chat_or_null = lambda values: pa.array(np.where(is_chat, values, None), pa.string())  # noqa: E731
    columns = {
        "project_id": pa.array(np.full(n, "default")),
        "trace_id": pa.array(trace_ids),
        "span_id": pa.array(span_ids),
        "parent_span_id": pa.array(parent),
        "name": pa.array(np.char.add(np.where(is_chat, "chat ", "step "), MODELS[model])),
        "kind": pa.array(np.where(is_chat, "client", "internal")),
        "operation": pa.array(operation),
        "start_time": pa.array(start_ns, pa.timestamp("ns", tz="UTC")),
        "end_time": pa.array(start_ns + (duration_ms * 1e6).astype(np.int64), pa.timestamp("ns", tz="UTC")),
        "duration_ms": pa.array(duration_ms),
        "status": pa.array(np.where(failed, "error", "ok")),
        "error_type": pa.array(np.where(failed, "rate_limit", None), pa.string()),
        "service_name": pa.array(np.full(n, "support-bot")),
        "environment": pa.array(np.full(n, "production")),
        "provider": chat_or_null(PROVIDERS[model]),
        "request_model": chat_or_null(MODELS[model]),
        "response_model": chat_or_null(MODELS[model]),
        "input_tokens": pa.array(np.where(is_chat, input_tokens, None), pa.int64()),
        "output_tokens": pa.array(np.where(is_chat, output_tokens, None), pa.int64()),
        "total_tokens": pa.array(np.where(is_chat, input_tokens + output_tokens, None), pa.int64()),
        "cache_read_tokens": pa.array(np.where(is_chat, input_tokens // 4, None), pa.int64()),
        "cost_usd": pa.array(np.where(is_chat, cost, None), pa.float64()),
        "cost_known": pa.array(np.where(is_chat, True, None), pa.bool_()),
        "streaming": pa.array(streaming),
        "ttft_ms": pa.array(np.where(streaming, duration_ms * 0.2, None), pa.float64()),
        "user_id": pa.array(np.char.add("user-", user.astype(str))),
        "session_id": pa.array(np.char.add("s-", (user * 100 + day).astype(str))),
        "tenant_id": pa.array(TENANTS[user % len(TENANTS)]),
        "feature": pa.array(FEATURES[user % len(FEATURES)]),
        "prompt_template": pa.array(FEATURES[user % len(FEATURES)]),
        # a new prompt version every third of the range
        "prompt_version": pa.array(VERSIONS[np.minimum(3 * day // days, len(VERSIONS) - 1)]),
        "retry_attempt": pa.array(np.zeros(n, dtype=np.int64)),
        "attributes": pa.array(np.full(n, '{"gen_ai.request.temperature":0.2}')),
        "resource": pa.array(np.full(n, '{"service.name":"support-bot"}')),
    }
    only_root = np.repeat(rng.random(traces) < root_tagged, SPANS_PER_TRACE) & (position > 0)
    for name in ("user_id", "session_id", "tenant_id", "feature", "prompt_template", "prompt_version"):
        columns[name] = pc.if_else(pa.array(only_root), None, columns[name])
    arrays = [columns.get(f.name, pa.nulls(n, f.type)) for f in SPAN_SCHEMA]
    table = pa.Table.from_arrays(arrays, schema=SPAN_SCHEMA)
    # 0.5% of spans arrive 5-60 minutes after their neighbours (a slow exporter, a long step).
    late = rng.random(n) < 0.005
    arrival = start_ns + np.where(late, rng.integers(5 * 60, 3600, n) * 10**9, 0)
    return table.take(np.argsort(arrival, kind="stable"))


def _timed(fn, repeat: int) -> tuple[float, object]:
    runs, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - began)
    return statistics.median(runs) * 1000, result


def _open(kind: str, tmp: Path) -> Store:
    if kind == "duckdb":
        return DuckDBStore(tmp / "scale.duckdb")
    return ClickHouseStore(connect(f"chdb://{tmp / 'chdb'}?database=scale"))


def _rollup_rows(store: Store) -> dict[str, int]:
    """Rows of each rollup table (ClickHouse: every version stored)."""
    tables = [g.table for g in GRAINS]
    if isinstance(store, DuckDBStore):
        with store._conn.cursor() as cur:
            return {t: cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    return {t: store._ch.query(f"SELECT count() AS n FROM {t}")["n"][0].as_py() for t in tables}


def _sizes(store: Store, copy_to: Path) -> tuple[int, int]:
    """(bytes in use, bytes once compacted): DuckDB's file after a checkpoint and a copy of it;
    ClickHouse's active parts before and after merging every table's parts (OPTIMIZE FINAL,
    which also drops rows a lightweight DELETE marked)."""
    if isinstance(store, ClickHouseStore):
        parts = (
            "SELECT sum(bytes_on_disk) AS b FROM system.parts WHERE database = currentDatabase() AND active"
        )
        used = store._ch.query(parts)["b"][0].as_py()
        for name in store._ch.query("SHOW TABLES")["name"].to_pylist():
            store._ch.command(f"OPTIMIZE TABLE {name} FINAL")
        return used, store._ch.query(parts)["b"][0].as_py()
    store.compact()
    with store._conn.cursor() as cur:
        block_size, used = cur.execute(
            "SELECT block_size, used_blocks FROM pragma_database_size()"
        ).fetchone()
        copy_to.unlink(missing_ok=True)
        cur.execute(f"ATTACH '{copy_to}' AS compacted")
        cur.execute(f"COPY FROM DATABASE {store.path.stem} TO compacted")
        cur.execute("DETACH compacted")
    return block_size * used, copy_to.stat().st_size


def _row(label: str, raw_ms: float, rolled_ms: float) -> None:
    print(f"| {label} | {raw_ms:,.1f} ms | {rolled_ms:,.1f} ms | {raw_ms / rolled_ms:,.0f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", choices=("duckdb", "clickhouse"), default="duckdb")
    parser.add_argument("--spans", type=int, default=2_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--days", type=int, default=30, help="the range the spans are spread over")
    parser.add_argument("--no-storage", action="store_true", help="skip the storage and sampling sweep part")
    parser.add_argument(
        "--keep",
        type=Path,
        help="DuckDB: leave the built store in this folder as tokentrace.duckdb (a data dir "
        "`tokentrace serve` and bench/api_reads.py open), before the sampling sweep",
    )
    parser.add_argument(
        "--root-tagged",
        type=float,
        default=0.0,
        help="the share of traces tagged on their root alone (their other spans inherit the tags)",
    )
    args = parser.parse_args()
    days = args.days
    start = (datetime.now(UTC) - timedelta(days=days + 3)).replace(second=0, microsecond=0)
    end = start + timedelta(days=days)

    began = time.perf_counter()
    table = generate(args.spans // SPANS_PER_TRACE, start, days, seed=1, root_tagged=args.root_tagged)
    print(
        f"generated {table.num_rows:,} spans over {days} days in {time.perf_counter() - began:.1f} s",
        file=sys.stderr,
    )
    empty = (content_table([]), score_table([]))

    with tempfile.TemporaryDirectory() as tmp:
        store = _open(args.store, Path(tmp))
        write_s = advance_s = 0.0
        # write_batch's speed as the store grows: over the 500k spans written before each mark
        marks = sorted({m for m in (1_000_000, 2_000_000, 5_000_000, table.num_rows) if m <= table.num_rows})
        written: list[tuple[int, float]] = []
        for offset in range(0, table.num_rows, args.batch):
            batch = table.slice(offset, args.batch)
            began = time.perf_counter()
            store.write_batch(Tables(batch, *empty), None)
            write_s += time.perf_counter() - began
            written.append((offset + batch.num_rows, write_s))
            newest_ns = pc.max(batch["start_time"].cast(pa.int64())).as_py()
            newest = datetime.fromtimestamp(newest_ns / 1e9, UTC)
            began = time.perf_counter()
            store.advance_rollups(newest - timedelta(minutes=2))
            advance_s += time.perf_counter() - began
        store.advance_rollups(end + timedelta(minutes=5))
        # what the server does hourly: merge the row groups the writes' checkpoints left
        # part-filled (here once, over the whole run's)
        began = time.perf_counter()
        store.compact()
        compact_s = time.perf_counter() - began
        rows = _rollup_rows(store)
        minute_rows = rows.pop("rollup_minute")
        spans_total = table.num_rows
        print(f"\nStore: {args.store}")
        print(
            f"Ingest: {spans_total:,} spans in batches of {args.batch:,}: write_batch {write_s:.1f} s "
            f"({spans_total / write_s:,.0f} spans/s, late minutes recomputed inside), "
            f"advancing the rollups {advance_s:.1f} s "
            f"({advance_s / (write_s + advance_s):.1%} of ingest time), "
            f"compacting once after {compact_s:.1f} s; "
            f"{minute_rows:,} minute rows ({spans_total / minute_rows:,.1f} spans each), "
            + ", ".join(f"{n:,} {table} rows" for table, n in rows.items())
        )

        print("\n| stored spans | write_batch over the 500k spans before |")
        print("|---:|---:|")
        for mark in marks:
            upto = [(n, t) for n, t in written if n <= mark]
            since = [(n, t) for n, t in written if n <= mark - min(500_000, mark // 2)] or [(0, 0.0)]
            (n1, t1), (n0, t0) = upto[-1], since[-1]
            print(f"| {mark:,} | {(n1 - n0) / (t1 - t0):,.0f} spans/s |")

        month = SpanFilter("default", since=start, until=end)
        print(f"\n| query over {days} days ({spans_total:,} spans) | from spans | from rollups | speed-up |")
        print("|---|---:|---:|---:|")
        checks = [
            ("cost by tenant", ("tenant_id",), None),
            ("cost by model per hour", ("request_model",), 3600),
            ("cost by feature and prompt version per day", ("feature", "prompt_version"), 86400),
            ("cost by user (user-hour rollups)", ("user_id",), None),
        ]
        for label, group_by, bucket in checks:
            raw_ms, raw = _timed(
                partial(store.aggregate, month, group_by, bucket, distinct=False), args.repeat
            )
            rolled_ms, rolled = _timed(
                partial(rollups.aggregate, store, month, group_by, bucket), args.repeat
            )
            cost_raw = sum(r["cost_usd"] for r in raw.to_pylist())
            cost_rolled = sum(r["cost_usd"] for r in rolled)
            assert abs(cost_raw - cost_rolled) < 1e-6 * cost_raw, (label, cost_raw, cost_rolled)
            _row(label, raw_ms, rolled_ms)
        qs = aggregates.QUANTILES
        for label, bucket in (("p50/p95/p99 duration by model", None), ("the same per hour", 3600)):
            by = ("request_model",)
            raw_ms, _ = _timed(partial(store.quantiles, month, by, ("duration_ms",), qs, bucket), args.repeat)
            rolled_ms, _ = _timed(
                partial(rollups.quantiles, store, month, by, ("duration_ms",), qs, bucket), args.repeat
            )
            _row(label, raw_ms, rolled_ms)
        print("\n| triage (the counted LLM calls of both periods, as columns) | ms |\n|---|---:|")
        for label, window, baseline in (
            ("the last hour against the day before", timedelta(hours=1), timedelta(hours=24)),
            ("the last day against the week before", timedelta(hours=24), timedelta(days=7)),
        ):
            if window + baseline <= end - start:
                ms, _ = _timed(partial(triage, store, "default", window, baseline, end), args.repeat)
                print(f"| {label} | {ms:,.0f} |")

        if args.keep is not None and args.store == "duckdb":
            store.close()
            args.keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(tmp) / "scale.duckdb", args.keep / "tokentrace.duckdb")
            store = _open(args.store, Path(tmp))
        if args.no_storage:
            store.close()
            return
        before = _sizes(store, Path(tmp) / "copy.duckdb")  # (ClickHouse: merged from here on)
        totals_before = rollups.aggregate(store, month, ("tenant_id",), None)
        policy = SamplingPolicy(base_rate=0.1)
        began = time.perf_counter()
        verdicts = store.apply_sampling("default", policy, datetime.now(UTC))
        sweep_s = time.perf_counter() - began
        kept = verdicts.filter(verdicts["kept_because"].is_valid()).num_rows
        after = _sizes(store, Path(tmp) / "copy.duckdb")
        totals_after = rollups.aggregate(store, month, ("tenant_id",), None)
        cost_before, cost_after = (sum(r["cost_usd"] for r in t) for t in (totals_before, totals_after))
        assert abs(cost_before - cost_after) < 1e-9 * cost_before, (cost_before, cost_after)
        print(
            f"\n| storage, {spans_total:,} spans (~40 B of JSON attributes each, no content) "
            "| in use | per span | compacted | per span |"
        )
        print("|---|---:|---:|---:|---:|")
        for label, (used, compact) in (
            ("every span kept", before),
            (
                f"after a sweep: base rate 10%, errors, slowest 1% ({kept:,} of {verdicts.num_rows:,} traces "
                f"kept, sweep {sweep_s:.1f} s; totals unchanged)",
                after,
            ),
        ):
            per_used, per_compact = used / spans_total, compact / spans_total
            print(f"| {label} | {used:,} | {per_used:,.0f} | {compact:,} | {per_compact:,.0f} |")
        store.close()


if __name__ == "__main__":
    main()
