"""Which of several LLM spans of one provider call counts (store/duplicates.py)."""

from __future__ import annotations

import itertools
from dataclasses import replace

from tokentrace.store.duplicates import Candidate, resolve

MS = 1_000_000


def span(
    span_id: str,
    parent: str = "root",
    start: float = 0,
    end: float = 10,
    usage: int = 2,
    response_id: str | None = None,
    trace: str = "t1",
    model: str | None = "gpt-4o",
    provider: str = "openai",
    details: int = 1,
    report: bool = False,
) -> Candidate:
    return Candidate(
        key=f"k-{span_id}",
        project_id="p",
        trace_id=trace,
        span_id=span_id,
        parent_span_id=parent,
        provider=provider,
        request_model=model,
        response_id=response_id,
        start_ns=int(start * MS),
        end_ns=int(end * MS),
        usage_fields=usage,
        details=details,
        usage_report=report,
        duplicate_of=None,
    )


def counted(spans: list[Candidate]) -> dict[str, str | None]:
    changes = resolve(spans).changes
    return {s.span_id: changes.get(s.key, s.duplicate_of) for s in spans}


def test_library_span_and_sdk_child_count_once_the_one_nearer_the_wire():
    library = span("lib", start=0, end=20, usage=3)
    sdk = span("sdk", parent="lib", start=1, end=18, usage=3)
    assert counted([library, sdk]) == {"lib": "sdk", "sdk": None}


def test_same_response_id_in_two_traces_counts_once():
    a = span("a", trace="t1", response_id="msg_1", usage=4)
    b = span("b", trace="t2", response_id="msg_1", usage=3)
    assert counted([a, b]) == {"a": None, "b": "a"}


def test_sequential_calls_and_app_retries_each_count():
    first = span("first", start=0, end=10)
    retry = span("retry", start=11, end=20)
    assert counted([first, retry]) == {"first": None, "retry": None}
    # parent and child with different response ids are two answers, however they overlap
    a = span("a", response_id="r1", start=0, end=10)
    b = span("b", parent="a", response_id="r2", start=1, end=9)
    assert counted([a, b]) == {"a": None, "b": None}


def test_parallel_calls_with_different_models_or_providers_stay_apart():
    a = span("a", parent="root", start=0, end=10)
    b = span("b", parent="a", start=1, end=9, model="gpt-4o-mini")
    c = span("c", parent="a", start=1, end=9, provider="anthropic", model=None)
    assert counted([a, b, c]) == {"a": None, "b": None, "c": None}


def test_logfire_stream_request_span_defers_to_its_usage_sibling_and_parallel_streams_stay_apart():
    # two streams in parallel: each request span (no usage) followed by its usage log-span
    r1 = span("r1", start=0, end=5, usage=0)
    l1 = span("l1", start=6, end=30, usage=2, report=True)
    r2 = span("r2", start=40, end=45, usage=0)
    l2 = span("l2", start=46, end=70, usage=2, report=True)
    result = counted([r1, l1, r2, l2])
    assert result == {"r1": "l1", "l1": None, "r2": "l2", "l2": None}
    # two usage spans never merge by adjacency alone
    assert counted([l1, span("l3", start=31, end=40, usage=2)]) == {"l1": None, "l3": None}


def test_failed_or_usage_less_calls_beside_a_call_each_count():
    ok = span("ok", start=0, end=10, usage=2)
    failed = span("failed", start=11, end=12, usage=0)
    no_usage = span("stream-without-usage", start=13, end=30, usage=0)
    assert counted([ok, failed, no_usage]) == {"ok": None, "failed": None, "stream-without-usage": None}


def test_three_spans_of_one_stream_count_once():
    # Logfire + the anthropic SDK: request span, the SDK's child span, the usage log-span
    request = span("req", start=0, end=3, usage=0, provider="anthropic", model="claude")
    sdk = span("sdk", parent="req", start=1, end=55, usage=4, details=3, provider="anthropic", model="claude")
    log = span("log", start=4, end=54, usage=4, details=1, provider="anthropic", model="claude", report=True)
    result = counted([request, sdk, log])
    assert result == {"req": "sdk", "sdk": None, "log": "sdk"}


def test_the_decision_does_not_depend_on_order():
    spans = [
        span("lib", start=0, end=20, usage=3, response_id="m"),
        span("sdk", parent="lib", start=1, end=18, usage=3, response_id="m"),
        span("other-trace", trace="t2", usage=2, response_id="m"),
        span("r1", start=30, end=35, usage=0),
        span("l1", start=36, end=60, usage=2, report=True),
    ]
    expected = counted(spans)
    for order in itertools.permutations(spans):
        assert counted(list(order)) == expected


def test_a_span_already_marked_is_left_alone_and_lends_nothing_new():
    lib = span("lib", start=0, end=20, usage=3)
    sdk = span("sdk", parent="lib", start=1, end=18, usage=3)
    marked = replace(lib, duplicate_of="sdk")
    resolution = resolve([marked, sdk])
    assert resolution.changes == {}
    assert resolution.counted_by == {"k-lib": "k-sdk"}


def test_a_failed_call_seen_by_a_library_and_the_provider_sdk_counts_once():
    """Traceloop's span and the anthropic SDK's sibling of one 429: no usage, no id; the same
    error, one inside the other's time. Two 429s of different kinds, or side by side, stay two."""
    library = replace(
        span("lib", start=0, end=20, usage=0, details=0, provider="anthropic"),
        error_type="rate_limit",
        scope="opentelemetry.instrumentation.anthropic",
    )
    sdk = replace(
        span("sdk", start=2, end=18, usage=0, details=0, provider="anthropic"),
        error_type="rate_limit",
        scope="com.anthropic.sdk.python",
    )
    assert counted([library, sdk]) == {"lib": "sdk", "sdk": None}  # the shorter one, nearer the wire
    other = replace(sdk, error_type="server_error")
    assert counted([library, other]) == {"lib": None, "sdk": None}
    later = replace(sdk, start_ns=25 * MS, end_ns=30 * MS)
    assert counted([library, later]) == {"lib": None, "sdk": None}
    retry = replace(sdk, scope=library.scope)  # an app's own retry: the same instrumentation
    assert counted([library, retry]) == {"lib": None, "sdk": None}


def test_a_response_id_alone_is_no_identity():
    """Reused short ids (`chatcmpl-7`): spans with one id merge only when model, input tokens and
    time agree as well."""
    a = replace(span("a", trace="t1", response_id="chatcmpl-7", parent=""), input_tokens=120)
    b = replace(span("b", trace="t2", response_id="chatcmpl-7", parent=""), input_tokens=450)
    assert counted([a, b]) == {"a": None, "b": None}  # other tokens: other calls
    much_later = replace(a, span_id="c", key="k-c", trace_id="t3", start_ns=10**12, end_ns=10**12 + 10 * MS)
    assert counted([a, much_later]) == {"a": None, "c": None}  # same tokens, minutes apart
    same = replace(a, span_id="d", key="k-d", trace_id="t4")
    assert list(counted([a, same]).values()).count(None) == 1  # same id, tokens and time: one answer


def test_a_lone_root_twin_defers_to_the_span_in_the_run():
    """A provider SDK's span as the root of its own trace, inside a framework's call span of the
    same service with the same tokens: one call, counted in the run's tree even though the SDK
    span has more usage detail."""
    framework = replace(
        span("fw", trace="run", parent="agent", start=0, end=50, usage=2), input_tokens=76, output_tokens=15
    )
    sdk = replace(
        span("sdk", trace="alone", parent="", start=5, end=45, usage=4, details=3, response_id="msg_1"),
        input_tokens=76,
        output_tokens=15,
    )
    assert counted([framework, sdk]) == {"fw": None, "sdk": "fw"}
    elsewhere = replace(sdk, service_name="another-service")
    assert counted([framework, elsewhere]) == {"fw": None, "sdk": None}
