"""Several ingest nodes against one ClickHouse: each a ClickHouseStore of its own over the same
database (as two `tokentrace serve` processes behind a load balancer would be; chDB runs in one
process, so the nodes here share it, and every statement of theirs interleaves with the
other's). Whatever node a span reaches, and whenever each node rolls up, every span counts once."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

from tests.builders.random_calls import random_call
from tokentrace.ingest.columns import tables
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.prepare import price_rows
from tokentrace.pricing import PriceBook
from tokentrace.query.records import records
from tokentrace.store.filters import SpanFilter

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
_BOOK = PriceBook()


def _batch(rng: random.Random, first: int, count: int, since: datetime, seconds: float):
    raws = [
        random_call(rng, n, since + timedelta(seconds=rng.uniform(0, seconds)))
        for n in range(first, first + count)
    ]
    rows = normalize(raws, "default").rows
    price_rows(_BOOK, rows)
    return tables(rows)


def _by_tenant(store, whole: SpanFilter, from_rollups: bool) -> dict:
    if from_rollups:
        table = store.rollup_aggregate(whole, ("tenant_id",), None)
    else:
        table = store.aggregate(whole, ("tenant_id",), None)
    return {
        r["tenant_id"]: (r["requests"], r["input_tokens"], r["output_tokens"], round(r["cost_usd"], 9))
        for r in records(table)
    }


def test_a_node_with_an_old_mark_rolls_up_again_what_another_node_rolled_up(nodes):
    a, b = nodes
    rng = random.Random(1)
    b.write_batch(_batch(rng, 1, 200, NOW - timedelta(hours=2), 3600), None)
    b.advance_rollups(NOW - timedelta(minutes=2))  # node a has never rolled up: its mark is none
    late = _batch(rng, 1000, 20, NOW - timedelta(hours=2), 3600)
    assert a.write_batch(late, None) == 20
    whole = SpanFilter("default", since=NOW - timedelta(hours=3), until=NOW - timedelta(minutes=2))
    assert _by_tenant(a, whole, True) == _by_tenant(a, whole, False)
    assert sum(r[0] for r in _by_tenant(b, whole, True).values()) == 220


def test_a_batch_both_nodes_store_at_once_counts_once(nodes, monkeypatch):
    a, b = nodes
    rng = random.Random(2)
    batch = _batch(rng, 1, 100, NOW - timedelta(hours=1), 1800)
    a.advance_rollups(NOW - timedelta(minutes=2))
    # A load balancer's retry reaches node b while node a is storing it: neither saw the
    # other's rows when it looked for stored identities.
    monkeypatch.setattr(b, "_unseen", lambda spans: spans)
    a.write_batch(batch, None)
    b.write_batch(batch, None)
    whole = SpanFilter("default", since=NOW - timedelta(hours=2), until=NOW - timedelta(minutes=2))
    from_spans = _by_tenant(a, whole, False)
    assert sum(r[0] for r in from_spans.values()) == 100
    assert _by_tenant(b, whole, True) == from_spans  # the rollups each node wrote agree
    trace = batch.spans["trace_id"][0].as_py()
    assert a.trace_spans("default", trace).num_rows == 1


def test_nodes_writing_and_rolling_up_at_once_count_every_span_once(nodes):
    """Two nodes, each in its own thread, store batches (some spans minutes late) and roll up
    after each, as their batch writers would; their statements interleave on the one engine."""
    errors = []

    def node_loop(store, seed: int, first: int) -> None:
        rng = random.Random(seed)
        try:
            for k in range(8):
                # calls of the last 12 minutes: the older ones land behind the marks
                at = NOW - timedelta(minutes=12)
                store.write_batch(_batch(rng, first + 100 * k, 60, at, 12 * 60), None)
                store.advance_rollups(NOW - timedelta(minutes=6 - k * 0.5))
        except Exception as exc:  # reported below, with the thread's own traceback lost otherwise
            errors.append(exc)

    threads = [threading.Thread(target=node_loop, args=(s, n, 10_000 * (n + 1))) for n, s in enumerate(nodes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    a, b = nodes
    mark = a.advance_rollups(NOW)
    whole = SpanFilter("default", since=NOW - timedelta(minutes=20), until=mark)
    from_spans = _by_tenant(b, whole, False)
    assert sum(r[0] for r in from_spans.values()) == 2 * 8 * 60
    assert _by_tenant(a, whole, True) == from_spans
    assert _by_tenant(b, whole, True) == from_spans


def test_a_span_stored_while_another_node_rolls_up_its_minute_counts(nodes):
    """Node b's roll-up has read the spans of a range but not yet written its mark when node a
    stores a late span in that range: node a rolls the span's minute up again anyway, since its
    own roll-up (as far behind the clock as b's) would have passed it."""
    a, b = nodes
    rng = random.Random(3)
    a.write_batch(_batch(rng, 1, 100, NOW - timedelta(minutes=30), 25 * 60), None)
    b.advance_rollups(NOW - timedelta(minutes=20))
    a._lag = timedelta(minutes=1)  # a rolls up a minute behind the clock, as b does below
    late = [_batch(rng, 500, 5, NOW - timedelta(minutes=15), 1)]
    command = b._ch.command

    def mark_written_after_a_write(sql, params=None):
        if sql.startswith("INSERT INTO rollup_marks") and late:  # b's first mark, once
            a.write_batch(late.pop(), None)
        return command(sql, params)

    b._ch.command = mark_written_after_a_write
    try:
        mark = b.advance_rollups(datetime.now(UTC) - timedelta(minutes=1))
    finally:
        b._ch.command = command
    whole = SpanFilter("default", since=NOW - timedelta(minutes=40), until=mark)
    from_spans = _by_tenant(a, whole, False)
    assert sum(r[0] for r in from_spans.values()) == 105
    assert _by_tenant(b, whole, True) == from_spans
