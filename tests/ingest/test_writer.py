"""The batch writer rolls minutes up as they fall `rollup_lag_s` behind the clock, idle or busy."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from tokentrace.ingest.columns import tables
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.raw import RawSpan
from tokentrace.ingest.writer import BatchWriter
from tokentrace.store.duckdb import DuckDBStore
from tokentrace.store.filters import SpanFilter


def test_the_writer_advances_the_rollups_and_they_count_what_was_written(tmp_path):
    store = DuckDBStore(tmp_path / "t.duckdb")
    writer = BatchWriter(store, lambda position: None, max_delay_s=0.05, rollup_lag_s=60, rollup_every_s=0.2)
    try:
        start = datetime.now(UTC) - timedelta(minutes=10)
        raws = [
            RawSpan(
                f"{n:032x}",
                f"{n:016x}",
                "",
                "chat m",
                3,
                int((start + timedelta(seconds=n)).timestamp() * 1e9),
                int((start + timedelta(seconds=n)).timestamp() * 1e9) + 10**8,
                0,
                "",
                {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"},
                {},
            )
            for n in range(1, 121)
        ]
        writer.put(tables(normalize(raws, "default").rows), None)
        assert writer.flush()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            mark = store.rolled_up_until()
            if mark is not None and mark >= start + timedelta(minutes=2):
                break
            time.sleep(0.1)
        # the whole minute at or before `rollup_lag_s` ago
        now = datetime.now(UTC)
        assert mark is not None and now - timedelta(seconds=121) <= mark <= now - timedelta(seconds=60)
        row = store.rollup_aggregate(SpanFilter("default", until=mark), (), None).to_pylist()[0]
        assert row["requests"] == 120
    finally:
        writer.close()
        store.close()


def test_each_write_is_handed_to_the_after_write_hooks_and_a_failing_hook_loses_nothing(tmp_path):
    store = DuckDBStore(tmp_path / "t.duckdb")
    committed: list = []
    writer = BatchWriter(store, committed.append, max_delay_s=0.05)
    seen: list[int] = []

    def broken(spans) -> None:
        raise RuntimeError("a hook's bug")

    writer.on_written += [broken, lambda spans: seen.append(spans.num_rows)]
    try:
        now = int(datetime.now(UTC).timestamp() * 1e9)
        raws = [
            RawSpan(f"{n:032x}", f"{n:016x}", "", "chat m", 3, now, now + 10**8, 0, "",
                    {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}, {})
            for n in range(1, 6)
        ]  # fmt: skip
        writer.put(tables(normalize(raws, "default").rows), None)
        assert writer.flush()
        assert seen == [5]  # the hook after the broken one still ran
        assert store.spans(SpanFilter("default"), ("span_id",)).num_rows == 5
        assert writer.last_error is None
    finally:
        writer.close()
        store.close()
