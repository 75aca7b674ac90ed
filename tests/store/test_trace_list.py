"""The DuckDB trace list looks for a page in the range's last hours before the whole range: the
page must be the one the whole range gives, whatever straddles a window's edge."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from tests.builders.planted import UNTIL, call, new_trace, store_with
from tokentrace.query.traces import list_traces, trace_tree
from tokentrace.store.duckdb import DuckDBStore, trace_list
from tokentrace.store.filters import SpanFilter, TraceFilter


def _ids(page) -> list[str]:
    return [trace["trace_id"] for trace in page.traces]


@pytest.fixture
def store(tmp_path):
    return DuckDBStore(tmp_path / "traces.duckdb")


def test_a_trace_begun_before_the_last_hour_is_placed_by_its_first_span(store):
    begun = new_trace()
    recent = new_trace()
    store_with(
        store,
        [
            call(UNTIL - timedelta(hours=3), trace=begun),
            call(UNTIL - timedelta(minutes=30), trace=recent),
            call(UNTIL - timedelta(minutes=1), trace=begun),  # the newest span of all
        ],
    )
    page = list_traces(store, TraceFilter(SpanFilter("default", until=UNTIL)), limit=1)
    assert _ids(page) == [recent] and page.has_more
    both = list_traces(store, TraceFilter(SpanFilter("default", until=UNTIL)), limit=2)
    assert _ids(both) == [recent, begun]
    assert both.traces[1]["spans"] == 2  # summed whole, its span of three hours before too


def test_a_trace_whose_earlier_spans_miss_the_filter_is_placed_by_the_span_that_matches(store):
    begun = new_trace()
    recent = new_trace()
    store_with(
        store,
        [
            call(UNTIL - timedelta(hours=3), trace=begun, user="someone-else"),
            call(UNTIL - timedelta(minutes=30), trace=recent, user="u7"),
            call(UNTIL - timedelta(minutes=1), trace=begun, user="u7"),
        ],
    )
    page = list_traces(
        store, TraceFilter(SpanFilter("default", until=UNTIL, equals={"user_id": "u7"})), limit=1
    )
    assert _ids(page) == [begun]


@pytest.mark.parametrize(
    ("condition", "dear"),
    [({"min_cost_usd": 0.5}, {"input_tokens": 400_000}), ({"errors_only": True}, {"error": "rate_limit"})],
)
def test_a_trace_begun_before_the_range_passes_by_its_spans_outside_it(store, condition, dear):
    """A window that sums its traces as it finds them has only their spans from the window on:
    a trace begun before the range (placed in the window all the same) is summed whole, its
    costly (~$1) or failed first span too, and heads the page."""
    begun, recent, older = new_trace(), new_trace(), new_trace()
    store_with(
        store,
        [
            call(UNTIL - timedelta(hours=8), trace=begun, **dear),  # before the range
            call(UNTIL - timedelta(minutes=10), trace=begun, input_tokens=10),
            call(UNTIL - timedelta(minutes=40), trace=recent, **dear),
            call(UNTIL - timedelta(minutes=50), trace=older, **dear),
        ],
    )
    f = TraceFilter(SpanFilter("default", since=UNTIL - timedelta(hours=6)), **condition)
    # (a page of one asks for two: the last hour's window fills it)
    assert _ids(list_traces(store, f, limit=1)) == [begun]
    assert _ids(list_traces(store, f, limit=3)) == [begun, recent, older]


def test_an_empty_project_lists_nothing(store):
    page = list_traces(store, TraceFilter(SpanFilter("default")))
    assert page.traces == [] and not page.has_more


def _random_store(store: DuckDBStore) -> None:
    """Traces over two days, thinner further back; some run for hours (across every window's
    edge), some carry their user or an error on a later span only."""
    rng = random.Random(7)
    spans = []
    for n in range(160):
        trace = new_trace()
        begun = UNTIL - timedelta(
            hours=rng.choice((0.2, 0.5, 0.9, 2, 3.5, 5, 10, 15, 20, 30, 47)) * rng.random()
        )
        length = rng.choice((1, 1, 2, 3))
        hours_apart = rng.choice((0.01, 0.1, 0.7, 2.5, 9))
        for k in range(length):
            at = begun + timedelta(hours=hours_apart * k)
            later = k > 0
            spans.append(
                call(
                    at,
                    trace=trace,
                    user=f"u{n % 4}" if later or n % 3 else "nobody",
                    feature=rng.choice(("chat", "search")),
                    model=rng.choice(("gpt-4o", "gpt-4o-mini")),
                    input_tokens=rng.randint(10, 5000),
                    error="rate_limit" if later and n % 7 == 0 else None,
                    duration_ms=rng.uniform(10, 9000),
                )
            )
    rng.shuffle(spans)
    store_with(store, spans[:300], spans[300:])


def _page(store, f: TraceFilter, limit: int, offset: int) -> list[dict]:
    return list_traces(store, f, limit=limit, offset=offset).traces


FILTERS = {
    "everything": {},
    "the last 6 hours": {"since": -6},
    "until 3 hours ago": {"until": -3},
    "a day, ending 20 hours ago": {"since": -44, "until": -20},
    "one user": {"equals": {"user_id": "u1"}},
    "a feature and model": {"equals": {"feature": "chat", "request_model": "gpt-4o-mini"}},
    "no such user": {"equals": {"user_id": "nobody-at-all"}},
    "at least $0.01": {"min_cost_usd": 0.01},
    "longer than 2 h": {"min_duration_ms": 2 * 3_600_000},
    "errors": {"errors_only": True},
    "errors in the last 6 hours": {"since": -6, "errors_only": True},
    "at least $0.01, a day ending 20 hours ago": {"since": -44, "until": -20, "min_cost_usd": 0.01},
}


def _filter(spec: dict) -> TraceFilter:
    spec = dict(spec)

    def hours(key: str) -> datetime | None:
        return UNTIL + timedelta(hours=spec.pop(key)) if key in spec else None

    since, until = hours("since"), hours("until")
    spans = SpanFilter(
        "default", since=since, until=until or UNTIL + timedelta(minutes=1), equals=spec.pop("equals", {})
    )
    return TraceFilter(spans, **spec)


@pytest.mark.parametrize("most", [None, 3])
@pytest.mark.parametrize("name", FILTERS)
def test_the_windows_give_the_page_the_whole_range_gives(store, monkeypatch, name, most):
    """With few traces a window, and with a window's traces past the most it places or sums (it
    gives way to the whole range)."""
    _random_store(store)
    f = _filter(FILTERS[name])
    asked = [(limit, offset) for limit in (1, 5, 20) for offset in (0, 3, 40)]
    if most is not None:
        monkeypatch.setattr(trace_list, "MOST_PLACED", most)
        monkeypatch.setattr(trace_list, "MOST_SUMMED", most)
    windowed = [_page(store, f, limit, offset) for limit, offset in asked]
    monkeypatch.setattr(trace_list, "WINDOWS", ())  # the whole range, one look
    whole = [_page(store, f, limit, offset) for limit, offset in asked]
    assert windowed == whole
    assert any(whole) or name == "no such user"


@pytest.mark.parametrize("name", FILTERS)
def test_one_pass_over_the_range_gives_the_page_two_steps_give(store, monkeypatch, name):
    """Traces summed in the aggregation that places them (a range holding most of the project's
    hours, no span condition) or placed first and summed after: the same pages."""
    _random_store(store)
    f = _filter(FILTERS[name])
    asked = [(limit, offset) for limit in (1, 5, 20) for offset in (0, 3, 40)]
    monkeypatch.setattr(trace_list, "WINDOWS", ())  # the whole range, one look
    pages = []
    for share in (0.0, 2.0):  # one pass wherever there is no span condition; never
        monkeypatch.setattr(trace_list, "ONE_PASS_SHARE", share)
        pages.append([_page(store, f, limit, offset) for limit, offset in asked])
    assert pages[0] == pages[1]
    assert any(pages[0]) or name == "no such user"


def test_a_span_in_the_last_half_microsecond_of_an_hour_stays_with_its_trace(store, monkeypatch):
    """trace_hours rounds such a start into the next hour (the cast to microseconds): the list,
    the windows and the one trace's read must still find it."""
    hour = int((UNTIL - timedelta(hours=2)).timestamp()) * 10**9  # 10:00
    lone, early = new_trace(), new_trace()
    lone_span = call(UNTIL - timedelta(hours=3), trace=lone)
    early_span = call(UNTIL - timedelta(hours=3), trace=early)
    for span in (lone_span, early_span):  # 09:59:59.9999996
        span.start_unix_nano, span.end_unix_nano = hour - 400, hour + 10**6
    later = call(UNTIL - timedelta(minutes=30), trace=early)
    other = call(UNTIL - timedelta(minutes=90), trace=new_trace())
    store_with(store, [lone_span, early_span, later, other])
    f = TraceFilter(SpanFilter("default", until=UNTIL))
    whole_range = []
    for windows in (trace_list.WINDOWS, ()):
        monkeypatch.setattr(trace_list, "WINDOWS", windows)
        page = list_traces(store, f, limit=10)
        whole_range.append([(trace["trace_id"], trace["spans"]) for trace in page.traces])
    assert whole_range[0] == whole_range[1]
    # early is placed by its span at 09:59:59, as lone is (a tie: by trace id), not by its 11:30 one
    assert whole_range[0] == [(other.trace_id, 1), (lone, 1), (early, 2)]
    tree = trace_tree(store, "default", early)
    assert tree is not None and tree.span_count == 2
