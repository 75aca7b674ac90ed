"""Stacked instrumentations' spans of one provider call count once, in both stores, whatever
order they arrive in; the counted span gets the tags only its duplicates carry."""

from __future__ import annotations

import time

import pytest

from tokentrace.ingest.columns import tables
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.pipeline import price_rows
from tokentrace.ingest.raw import RawSpan
from tokentrace.pricing import PriceBook
from tokentrace.query.records import records
from tokentrace.store.base import SpanFilter

NOW = time.time_ns()
TRACE = "7a8efff798038103d269b633813fc60c"


def _llm(span_id: str, parent: str, trace: str = TRACE, **extra) -> RawSpan:
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 100,
        **extra,
    }
    return RawSpan(trace, span_id, parent, "chat gpt-4o", 3, NOW, NOW + 5 * 10**8, 0, "", attributes, {})


def _write(store, raws: list[RawSpan]) -> None:
    rows = normalize(raws, "default").rows
    price_rows(PriceBook(), rows)
    store.write_batch(tables(rows), None)


def _totals(store) -> dict:
    row = records(store.aggregate(SpanFilter("default"), (), None))[0]
    return {k: row[k] for k in ("requests", "spans", "input_tokens")}


# the SDK's span (with the user's tags) and, under it, a library's span of the same call
SDK = ("00000000000000a1", "", {"tokentrace.tenant_id": "acme", "tokentrace.user_id": "u1"})
LIBRARY = ("00000000000000b2", "00000000000000a1", {"gen_ai.response.id": "chatcmpl-1"})


@pytest.mark.parametrize("order", [(SDK, LIBRARY), (LIBRARY, SDK)])
def test_a_library_span_under_an_sdk_span_counts_once(open_store, order):
    store = open_store()
    for span_id, parent, extra in order:  # one batch each: the second finds the first stored
        _write(store, [_llm(span_id, parent, **extra)])
    assert _totals(store) == {"requests": 1, "spans": 1, "input_tokens": 1000}
    spans = {r["span_id"]: r for r in store.trace_spans("default", TRACE).to_pylist()}
    counted = [s for s in spans.values() if s["duplicate_of"] is None]
    assert len(counted) == 1
    # the library's span is nearer the wire (it has the response id) and counts, with the tags
    assert counted[0]["span_id"] == LIBRARY[0]
    assert (counted[0]["tenant_id"], counted[0]["user_id"]) == ("acme", "u1")


def test_one_answer_in_two_traces_counts_once(open_store):
    store = open_store()
    _write(store, [_llm("00000000000000c3", "", **{"gen_ai.response.id": "chatcmpl-2"})])
    _write(
        store,
        [
            _llm(
                "00000000000000d4",
                "",
                trace="8b8efff798038103d269b633813fc60c",
                **{"gen_ai.response.id": "chatcmpl-2"},
            )
        ],
    )
    assert _totals(store) == {"requests": 1, "spans": 1, "input_tokens": 1000}


def test_sequential_calls_each_count(open_store):
    store = open_store()
    _write(store, [_llm("00000000000000e5", "", **{"gen_ai.response.id": "a"})])
    _write(store, [_llm("00000000000000f6", "", **{"gen_ai.response.id": "b"})])
    assert _totals(store)["requests"] == 2
