"""The DuckDB session list looks for its page among the spans ending in the range's last hours
first: the page must be the one the whole range gives, long spans and old sessions included."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from tests.builders.planted import UNTIL, call, new_trace, store_with
from tokentrace.query.sessions import list_sessions
from tokentrace.store.duckdb import DuckDBStore, trace_list
from tokentrace.store.filters import SpanFilter


@pytest.fixture
def store(tmp_path):
    """Sixty sessions over two days, thinner further back: each a few traces, some calls lasting
    hours (they end in a later window than they start), some sessions with one user's calls and
    another's."""
    store = DuckDBStore(tmp_path / "sessions.duckdb")
    rng = random.Random(11)
    spans = []
    for n in range(60):
        session = f"s{n:02d}"
        begun = UNTIL - timedelta(hours=rng.choice((0.3, 0.8, 3, 6, 20, 47)) * rng.random())
        for k in range(rng.choice((1, 2, 4))):
            at = begun + timedelta(hours=rng.choice((0.05, 0.5, 2)) * k)
            duration_ms = rng.choice((800, 30_000, 3 * 3_600_000))  # up to three hours
            user = f"u{n % 3}" if k else f"u{(n + 1) % 3}"
            spans.append(
                call(
                    at,
                    trace=new_trace(),
                    user=user,
                    duration_ms=duration_ms,
                    extra={"session.id": session},
                )
            )
    store_with(store, spans)
    return store


FILTERS = {
    "everything": {},
    "the last 5 hours": {"since": UNTIL - timedelta(hours=5)},
    "until 4 hours ago": {"until": UNTIL - timedelta(hours=4)},
    "one user": {"equals": {"user_id": "u1"}},
}


@pytest.mark.parametrize("name", FILTERS)
def test_the_windows_give_the_page_the_whole_range_gives(store, monkeypatch, name):
    f = SpanFilter("default", **FILTERS[name])
    asked = [(limit, offset) for limit in (1, 4, 15) for offset in (0, 2, 30)]
    windowed = [list_sessions(store, f, limit, offset) for limit, offset in asked]
    monkeypatch.setattr(trace_list, "WINDOWS", ())  # the whole range, one look
    whole = [list_sessions(store, f, limit, offset) for limit, offset in asked]
    assert windowed == whole
    assert any(page.sessions for page in whole)


def test_a_session_whose_last_call_began_before_the_window_still_leads(store):
    """Its one call began hours before the last calls began and ended after every other: it is
    the most recently active, though its start is in no window."""
    long_call = call(UNTIL - timedelta(hours=3), trace=new_trace(), duration_ms=13 * 3_600_000)
    long_call.attributes["session.id"] = "s-long"
    store_with(store, [long_call])
    page = list_sessions(store, SpanFilter("default"), limit=1)
    assert [s["session_id"] for s in page.sessions] == ["s-long"]
