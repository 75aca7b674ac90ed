"""The DuckDB session list looks for its page among the spans ending in the range's last hours
first: the page must be the one the whole range gives, long spans and old sessions included."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import duckdb
import pytest

from tests.builders.planted import UNTIL, call, new_trace, store_with
from tokentrace.ingest.columns import tables
from tokentrace.ingest.logs import from_logs
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.raw import RawLogRecord, RawSpan
from tokentrace.query.sessions import list_sessions, session
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


def _span(trace: str, span_id: str, parent: str, at: datetime, hours: float, attrs: dict) -> RawSpan:
    start = int(at.timestamp() * 1e9)
    return RawSpan(trace, span_id, parent, "step", 1, start, start + int(hours * 3.6e12), 0, "", attrs, {})


def _session_row(store: DuckDBStore, session: str) -> dict:
    page = list_sessions(store, SpanFilter("default"), limit=100)
    return next(row for row in page.sessions if row["session_id"] == session)


def test_spans_given_their_session_later_are_summed_with_it(tmp_path):
    """A session is summed among the hours session_hours holds for it: a span that takes its
    session after it was stored (from a late parent, or from a log record) adds its hour then."""
    store = DuckDBStore(tmp_path / "late.duckdb")
    root_trace, other_trace = new_trace(), new_trace()
    root = _span(root_trace, "00000000000000a1", "", UNTIL - timedelta(hours=5), 3, {"session.id": "late"})
    child = _span(root_trace, "00000000000000b2", "00000000000000a1", UNTIL - timedelta(hours=1), 0.5, {})
    lone = _span(other_trace, "00000000000000c3", "", UNTIL - timedelta(hours=3), 0.1, {})
    note = RawLogRecord(
        other_trace,
        lone.span_id,
        lone.start_unix_nano,
        lone.start_unix_nano,
        "gen_ai.client.inference.operation.details",
        None,
        {"session.id": "late"},
        {},
    )
    for batch in ([child], [lone], [root]):  # the child waits for its parent, stored hours before
        store.write_batch(tables(normalize(batch, "default").rows), None)
    store.write_batch(tables(content=from_logs([note], "default").content), None)
    summed = _session_row(store, "late")
    assert summed["traces"] == 2  # the lone span's trace, from its record
    assert summed["last_seen"].startswith(
        (UNTIL - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    )  # the child
    read = session(store, "default", "late")  # the session's page reads among its hours too
    assert read is not None and read.totals["spans"] == 3 and len(read.traces) == 2
    store._conn.execute("DELETE FROM session_hours")  # no hours: every span of the project is read
    assert store.session_starts("default", "late") is None
    assert _session_row(store, "late") == summed
    assert session(store, "default", "late") == read
    store.close()


def test_a_store_from_before_session_hours_sums_its_sessions_on_upgrade(tmp_path):
    """Migration 0023 fills session_hours from the stored spans."""
    store = DuckDBStore(tmp_path / "old.duckdb")
    store_with(
        store,
        [call(UNTIL - timedelta(hours=h), trace=new_trace(), extra={"session.id": "s"}) for h in (1, 9)],
    )
    store.close()
    with duckdb.connect(str(tmp_path / "old.duckdb")) as conn:
        conn.execute("DROP TABLE session_hours")
        conn.execute("DELETE FROM schema_migrations WHERE version = 23")
    upgraded = DuckDBStore(tmp_path / "old.duckdb")
    assert _session_row(upgraded, "s")["traces"] == 2
    upgraded.close()
