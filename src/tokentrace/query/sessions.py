"""Sessions: conversations across user requests, listed by recent activity or read whole."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tokentrace.query.aggregates import rollup
from tokentrace.query.records import records
from tokentrace.query.scores import session_scores
from tokentrace.query.traces import list_traces
from tokentrace.store.filters import SpanFilter, TraceFilter
from tokentrace.store.protocol import Store

#: The most traces a session page lists (a longer session shows its latest this many).
SESSION_TRACES = 500


@dataclass(slots=True)
class SessionPage:
    """A page of session summaries (one stored row each), most recently active first."""

    sessions: list[dict[str, Any]]
    has_more: bool
    limit: int
    offset: int


@dataclass(slots=True)
class Session:
    """One session: its totals (a rollup row), its traces in the order they happened (`truncated`
    when it has more than SESSION_TRACES: the latest are kept), whose it is (the user and
    tenant of its first trace that has them), and the scores given to it as a whole."""

    session_id: str
    totals: dict[str, Any]
    traces: list[dict[str, Any]]
    truncated: bool
    user_id: str | None
    tenant_id: str | None
    scores: list[dict[str, Any]]


def list_sessions(store: Store, f: SpanFilter, limit: int = 50, offset: int = 0) -> SessionPage:
    """A page of sessions active in the filter, most recent first, each with its whole totals."""
    limit = max(1, min(limit, 1000))
    rows = records(store.session_summaries(f, limit + 1, max(offset, 0)))
    return SessionPage(rows[:limit], len(rows) > limit, limit, offset)


def session(store: Store, project_id: str, session_id: str) -> Session | None:
    """One session: its totals (as a rollup row) and its traces in the order they happened."""
    # Among the start times its spans have, where the store keeps them: not a scan of every span
    since, until = store.session_starts(project_id, session_id) or (None, None)
    f = SpanFilter(project_id, since=since, until=until, equals={"session_id": session_id})
    totals = rollup(store, f)
    if not totals or not totals[0]["spans"]:
        return None
    page = list_traces(store, TraceFilter(f), limit=SESSION_TRACES)
    traces = page.traces[::-1]

    def first(field: str) -> str | None:
        return next((t[field] for t in traces if t[field] is not None), None)

    return Session(
        session_id,
        totals[0],
        traces,
        page.has_more,
        first("user_id"),
        first("tenant_id"),
        session_scores(store, project_id, session_id),
    )


def latest_trace(store: Store, project_id: str, session_id: str) -> str | None:
    """The trace of the session's latest span: what a verdict on the whole session is given at."""
    found = store.spans(SpanFilter(project_id, equals={"session_id": session_id}), ("trace_id",))
    return found.column("trace_id")[-1].as_py() if found.num_rows else None
