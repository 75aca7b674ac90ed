"""A span inherits each attribution tag from its nearest ancestor that has it, in any arrival
order, in both stores."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from tokentrace.ingest.columns import tables
from tokentrace.ingest.logs import from_logs
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.raw import RawLogRecord, RawSpan
from tokentrace.query import aggregates
from tokentrace.store.duckdb import DuckDBStore
from tokentrace.store.filters import SpanFilter

TRACE = "5b8efff798038103d269b633813fc60c"
NOW = time.time_ns()

#   root (tenant=acme, user=u1, session=s1)
#   └── agent (tenant=globex: an override)
#       └── llm (no tags) ── tool (no tags, feature=lookup)
#   └── retrieval (no tags)
SPANS = {
    "root": ("00000000000000a1", "", {"tenant.id": "acme", "user.id": "u1", "session.id": "s1"}),
    "agent": ("00000000000000b2", "00000000000000a1", {"tenant.id": "globex"}),
    "llm": (
        "00000000000000c3",
        "00000000000000b2",
        {
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.provider.name": "openai",
            "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.output_tokens": 10,
        },
    ),
    "tool": ("00000000000000d4", "00000000000000c3", {"tokentrace.feature": "lookup"}),
    "retrieval": ("00000000000000e5", "00000000000000a1", {}),
}


def _raw(name: str) -> RawSpan:
    span_id, parent, attrs = SPANS[name]
    return RawSpan(TRACE, span_id, parent, name, 1, NOW, NOW + 1000, 0, "", dict(attrs), {})


def _tags(store) -> dict[str, tuple]:
    table = store.trace_spans("default", TRACE).select(
        ["name", "tenant_id", "user_id", "session_id", "feature"]
    )
    return {
        r["name"]: (r["tenant_id"], r["user_id"], r["session_id"], r["feature"]) for r in table.to_pylist()
    }


EXPECTED = {
    "root": ("acme", "u1", "s1", None),
    "agent": ("globex", "u1", "s1", None),
    "llm": ("globex", "u1", "s1", None),
    "tool": ("globex", "u1", "s1", "lookup"),
    "retrieval": ("acme", "u1", "s1", None),
}


@pytest.mark.parametrize(
    "order",
    [
        ("root", "agent", "llm", "tool", "retrieval"),
        ("tool", "llm", "agent", "retrieval", "root"),  # children first, root last
        ("llm", "root", "tool", "retrieval", "agent"),  # the overriding middle span last
    ],
)
def test_nearest_ancestor_wins_in_any_arrival_order(open_store, order):
    store = open_store()
    for name in order:  # one batch per span: the worst case for arrival order
        store.write_batch(tables(normalize([_raw(name)], "default").rows), None)
    assert _tags(store) == EXPECTED
    # rollups see the inherited tags: the LLM's cost counts for globex, not acme
    by_tenant = {r["tenant_id"]: r for r in aggregates.rollup(store, SpanFilter("default"), ("tenant_id",))}
    assert by_tenant["globex"]["requests"] == 1 and by_tenant["acme"]["requests"] == 0


def test_one_batch_with_everything_and_every_order_agree(open_store):
    results = set()
    for order in itertools.islice(itertools.permutations(SPANS), 0, 120, 17):
        store = open_store()
        half = len(order) // 2
        for part in (order[:half], order[half:]):
            rows = normalize([_raw(n) for n in part], "default").rows
            store.write_batch(tables(rows), None)
        results.add(tuple(sorted(_tags(store).items())))
    assert results == {tuple(sorted(EXPECTED.items()))}


def test_spans_stored_before_the_waiting_list_still_inherit_from_a_late_parent(tmp_path):
    """DuckDB migration 0009 finds the stored spans whose chain breaks at a span not stored yet."""
    path = tmp_path / "t.duckdb"
    store = DuckDBStore(path)
    for name in ("tool", "llm"):  # their chain breaks at the agent, not stored yet
        store.write_batch(tables(normalize([_raw(name)], "default").rows), None)
    store.close()
    with duckdb.connect(str(path)) as conn:  # as before migration 9: no waiting list
        conn.execute("DROP TABLE inherit_waiting")
        conn.execute("DELETE FROM schema_migrations WHERE version = 9")
    upgraded = DuckDBStore(path)
    for name in ("root", "retrieval", "agent"):
        upgraded.write_batch(tables(normalize([_raw(name)], "default").rows), None)
    assert _tags(upgraded) == EXPECTED
    upgraded.close()


def test_a_long_chain_arriving_from_the_bottom_up_inherits_to_its_leaf(open_store):
    """Each span waits for its parent, then for what its parent waits for, until the root."""
    store = open_store()
    ids = [f"{n:016x}" for n in range(1, 8)]
    chain = [
        RawSpan(TRACE, span_id, ids[n - 1] if n else "", f"s{n}", 1, NOW, NOW + 1000, 0, "", {}, {})
        for n, span_id in enumerate(ids)
    ]
    chain[0].attributes.update({"tenant.id": "acme", "user.id": "u1"})
    chain[3].attributes["tokentrace.feature"] = "middle"
    for span in reversed(chain):
        store.write_batch(tables(normalize([span], "default").rows), None)
    got = {name: (tenant, user, feature) for name, (tenant, user, _, feature) in _tags(store).items()}
    assert got == {f"s{n}": ("acme", "u1", "middle" if n >= 3 else None) for n in range(7)}


def test_a_parent_cycle_in_bad_data_terminates(open_store):
    store = open_store()
    a = RawSpan(TRACE, "00000000000000f1", "00000000000000f2", "a", 1, NOW, NOW + 1, 0, "", {}, {})
    b = RawSpan(TRACE, "00000000000000f2", "00000000000000f1", "b", 1, NOW, NOW + 1, 0, "", {}, {})
    store.write_batch(tables(normalize([a, b], "default").rows), None)
    assert store.totals("default")["spans"] == 2


# Tags that arrive only on a span's OTLP log records (an event beside the span) are the span's:
# lent to it whichever arrives first, inherited by its descendants, counted in the rollups.
def _record(span: str, attrs: dict) -> RawLogRecord:
    event = "gen_ai.client.inference.operation.details"
    return RawLogRecord(TRACE, SPANS[span][0], NOW, NOW, event, None, attrs, {})


def _log_batch(*records: RawLogRecord):
    batch = from_logs(list(records), "default")
    assert not batch.errors
    return tables(content=batch.content)


def _without(name: str, *prefixes: str) -> RawSpan:
    span_id, parent, attrs = SPANS[name]
    attrs = {k: v for k, v in attrs.items() if not k.startswith(prefixes)}
    return RawSpan(TRACE, span_id, parent, name, 1, NOW, NOW + 1000, 0, "", attrs, {})


@pytest.mark.parametrize("records_first", [True, False])
def test_tags_on_log_records_are_lent_to_their_span_in_either_order(open_store, records_first):
    store = open_store()
    spans = tables(
        normalize([_without("root", "user."), _without("agent", "tenant."), _raw("llm")], "default").rows
    )
    records = _log_batch(
        # the root has a tenant of its own, which a record never overrides; it lacks a user
        _record("root", {"tenant.id": "globex", "user.id": "u1"}),
        _record("llm", {"tokentrace.feature": "support"}),
    )
    if records_first:
        store.write_batch(records, None)
        store.write_batch(spans, None)
    else:
        store.write_batch(spans, None)
        store.advance_rollups(datetime.now(UTC) + timedelta(hours=2))  # the bucket is rolled up
        store.write_batch(records, None)
    assert _tags(store) == {
        "root": ("acme", "u1", "s1", None),
        "agent": ("acme", "u1", "s1", None),
        "llm": ("acme", "u1", "s1", "support"),
    }
    store.advance_rollups(datetime.now(UTC) + timedelta(hours=2))
    by_feature = {r["feature"]: r for r in aggregates.rollup(store, SpanFilter("default"), ("feature",))}
    assert by_feature["support"]["requests"] == 1 and by_feature["support"]["input_tokens"] == 100
    by_user = {r["user_id"]: r for r in aggregates.rollup(store, SpanFilter("default"), ("user_id",))}
    assert by_user["u1"]["requests"] == 1 and by_user.get(None, {"requests": 0})["requests"] == 0


def test_a_record_after_its_span_fills_only_what_the_span_still_lacks(open_store):
    # A stored span does not say which of its tags it inherited: a record arriving after it
    # fills what it lacks and leaves an inherited value be (had the record come first, its tag
    # would have been the span's own, nearer than the ancestor's).
    store = open_store()
    store.write_batch(
        tables(normalize([_raw("root"), _without("agent", "tenant."), _raw("llm")], "default").rows), None
    )
    store.write_batch(
        _log_batch(_record("agent", {"tenant.id": "initech", "tokentrace.feature": "plan"})), None
    )
    assert _tags(store)["agent"] == ("acme", "u1", "s1", "plan")
    assert _tags(store)["llm"] == ("acme", "u1", "s1", "plan")


def test_a_log_record_without_tags_lends_nothing(open_store):
    store = open_store()
    store.write_batch(_log_batch(_record("llm", {"gen_ai.input.messages": "[]"})), None)
    store.write_batch(tables(normalize([_raw("llm")], "default").rows), None)
    assert _tags(store) == {"llm": (None, None, None, None)}
