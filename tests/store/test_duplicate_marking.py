"""Stacked instrumentations' spans of one provider call count once, in both stores, whatever
order they arrive in; the counted span gets the tags only its duplicates carry."""

from __future__ import annotations

import time

import pytest

from tokentrace.ingest.columns import tables
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.prepare import price_rows
from tokentrace.ingest.raw import RawSpan
from tokentrace.pricing import PriceBook
from tokentrace.query.records import records
from tokentrace.store.filters import SpanFilter

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


def _at(span: RawSpan, start: int, end: int) -> RawSpan:
    span.start_unix_nano, span.end_unix_nano = start, end
    return span


@pytest.mark.parametrize("framework_first", [True, False])
def test_a_provider_sdk_span_alone_in_its_own_trace_counts_once_in_the_run(open_store, framework_first):
    """The anthropic SDK's own span lands as the root of a trace of its own when the framework
    around it does not make its span current: it agrees with the framework's span (provider,
    model, tokens, time inside it), so the call counts once, in the run's trace, with its tags."""
    store = open_store()
    run = RawSpan(TRACE, "00000000000000e1", "", "handle_request", 1, NOW, NOW + 5 * 10**8, 0, "", {}, {})
    framework = _at(_llm("00000000000000e2", "00000000000000e1"), NOW + 10**7, NOW + 4 * 10**8)
    sdk = _at(
        _llm(
            "00000000000000e3",
            "",
            trace="9c8efff798038103d269b633813fc60c",
            **{"gen_ai.response.id": "msg_1"},
        ),
        NOW + 2 * 10**7,
        NOW + 3 * 10**8,
    )
    run.attributes = {"tenant.id": "acme"}  # the run's root: tags, no call
    framework.kind = 1  # frameworks' call spans are INTERNAL
    batches = [[run, framework], [sdk]] if framework_first else [[sdk], [run, framework]]
    for batch in batches:
        _write(store, batch)
    assert _totals(store)["requests"] == 1
    assert _totals(store)["input_tokens"] == 1000
    counted = [r for r in store.trace_spans("default", TRACE).to_pylist() if r["duplicate_of"] is None]
    assert [(r["span_id"], r["tenant_id"]) for r in counted if r["input_tokens"]] == [
        ("00000000000000e2", "acme")
    ]


def test_root_calls_of_other_traces_with_other_tokens_or_times_each_count(open_store):
    """Twins need every fact: another token count, or a span not inside the other, is another call."""
    store = open_store()
    framework = _at(_llm("00000000000000f2", "00000000000000f1"), NOW, NOW + 4 * 10**8)
    other_tokens = _at(
        _llm(
            "00000000000000f3",
            "",
            trace="a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1",
            **{"gen_ai.usage.input_tokens": 999},
        ),
        NOW + 10**7,
        NOW + 10**8,
    )
    later = _at(
        _llm("00000000000000f4", "", trace="b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"),
        NOW + 5 * 10**8,
        NOW + 6 * 10**8,
    )
    _write(store, [framework])
    _write(store, [other_tokens, later])
    assert _totals(store)["requests"] == 3


def test_reused_short_response_ids_never_merge_different_calls(open_store):
    """An Ollama-style server answers `chatcmpl-<0..999>`: many calls share ids. Each call counts
    once; only spans of one answer (same id and the same facts, at the same time) merge."""
    store = open_store()
    calls = []
    for n in range(60):
        trace = f"{n + 1:032x}"
        start = NOW + n * 2 * 10**9  # a call every 2 s
        calls.append(
            _at(
                _llm(
                    f"{n + 1:016x}",
                    "",
                    trace=trace,
                    **{"gen_ai.response.id": f"chatcmpl-{n % 7}", "gen_ai.usage.input_tokens": 500 + n % 3},
                ),
                start,
                start + 10**9,
            )
        )
    _write(store, calls[:30])
    _write(store, calls[30:])
    # a second instrumentation's span of call 5 (same id, tokens and time): that one merges
    twin = _at(
        _llm(
            "00000000000000ff",
            "",
            trace="c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3",
            **{"gen_ai.response.id": "chatcmpl-5", "gen_ai.usage.input_tokens": 502},
        ),
        NOW + 5 * 2 * 10**9,
        NOW + 5 * 2 * 10**9 + 10**9,
    )
    _write(store, [twin])
    assert _totals(store)["requests"] == 60
    assert _totals(store)["input_tokens"] == sum(500 + n % 3 for n in range(60))
