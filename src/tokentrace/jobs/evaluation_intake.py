"""What evaluators are owed, found as calls are written: the batch writer offers each write's
spans (`offer`, on its thread: the calls among them, as the few columns queueing reads), the
evaluation job drains them into the store's queue each run (`owed`), and a session is owed once
its latest call is older than its evaluator's quiet time.

A call is offered when it is written, whenever it started: a call that arrives late is evaluated
all the same. What was written before a crash and not yet queued is found by one scan of the
last LOOKBACK at start (queueing is idempotent: a call queued twice is queued once).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tokentrace.evals.config import Evaluator
from tokentrace.evals.judge_trace import JUDGE_PROJECT
from tokentrace.store.filters import SpanFilter
from tokentrace.store.protocol import Store
from tokentrace.store.python_rows import python_rows

LOOKBACK = timedelta(hours=2)  # what the scan at start queues again
_Call = tuple[str, str, datetime]  # trace_id, span_id, start


@dataclass
class Intake:
    """The calls written since the last run, and the sessions being followed until quiet."""

    store: Store
    evaluators: tuple[Evaluator, ...]
    _offered: list[pa.Table] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    scanned: bool = False  # the scan at start done (or not needed)
    # (project, evaluator, session) → the session's latest call seen (trace_id, span_id, start)
    _sessions: dict[tuple[str, str, str], _Call] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.use(self.evaluators)

    def use(self, evaluators: tuple[Evaluator, ...]) -> None:
        """Queue for these evaluators from now on (the API adds and removes them)."""
        self._operations = pa.array(sorted({e.operation for e in evaluators}), pa.string())
        self._fields = tuple(
            sorted(
                {"project_id", "trace_id", "span_id", "operation", "start_time", "session_id"}
                | {f for e in evaluators for f, _ in e.where}
            )
        )
        self.evaluators = evaluators
        named = {e.name for e in evaluators}
        self._sessions = {key: call for key, call in self._sessions.items() if key[1] in named}

    def offer(self, spans: pa.Table) -> None:
        """The spans a write just stored: the calls among them wait for the next run."""
        if not self.evaluators or not spans.num_rows:
            return
        calls = spans.filter(pc.is_in(spans["operation"], value_set=self._operations))
        if calls.num_rows:
            with self._lock:
                self._offered.append(calls.select(self._fields))

    def owed(self, now: datetime) -> list[dict[str, Any]]:
        """The evaluations owed since the last run (the last LOOKBACK at the first): one per
        (evaluator, call) it applies to, and one per session gone quiet, by its latest call."""
        with self._lock:
            offered, self._offered = self._offered, []
        if not self.scanned:
            self.scanned = True
            projects = [p.project_id for p in self.store.projects() if p.project_id != JUDGE_PROJECT]
            offered += [self._scan(project, now - LOOKBACK) for project in projects]
        items = []
        for table in offered:
            items += self._calls_owed(table, now)
        return items + self._sessions_owed(now)

    def _scan(self, project_id: str, since: datetime) -> pa.Table:
        operations = tuple(self._operations.to_pylist())
        f = SpanFilter(project_id, since=since, equals={"operation": operations})
        return self.store.spans(f, self._fields)

    def _calls_owed(self, calls: pa.Table, now: datetime) -> list[dict[str, Any]]:
        """A call evaluator's evaluations of `calls`; a session evaluator's sessions' latest
        calls so far (owed once the session is quiet). A span offered twice (a resend) is owed
        twice: the store queues it once."""
        calls = calls.filter(pc.not_equal(calls["project_id"], JUDGE_PROJECT))  # never judged
        items = []
        for e in self.evaluators:
            if any(name not in calls.column_names for name, _ in e.where):
                continue  # offered before the evaluator came (through the API): not its calls
            chosen = e.chosen(calls)
            if e.scope == "session":
                seen = ("project_id", "session_id", "trace_id", "span_id", "start_time")
                for call in python_rows(chosen.select(seen)):
                    key = (call["project_id"], e.name, call["session_id"])
                    at = call["start_time"].replace(tzinfo=UTC)
                    if key not in self._sessions or self._sessions[key][2] <= at:
                        self._sessions[key] = (call["trace_id"], call["span_id"], at)
                continue
            found = chosen.select(["project_id", "trace_id", "span_id"]).to_pydict()
            items += [
                _item(project, e, trace_id, span_id, now)
                for project, trace_id, span_id in zip(
                    found["project_id"], found["trace_id"], found["span_id"], strict=True
                )
            ]
        return items

    def _sessions_owed(self, now: datetime) -> list[dict[str, Any]]:
        """The sessions whose latest call is older than their evaluator's quiet time, queued by
        that call as the store has it (another node may have written a later one): the same
        quiet session is owed once, a session that went on again."""
        by_name = {(e.project_id, e.name): e for e in self.evaluators}
        items = []
        for key, (_, _, at) in list(self._sessions.items()):
            project_id, name, session_id = key
            evaluator = by_name.get((project_id, name)) or by_name[(None, name)]
            quiet_since = now - timedelta(minutes=evaluator.quiet_minutes)
            if at > quiet_since:
                continue
            latest = self._latest_call(project_id, session_id, evaluator.operation)
            if latest is not None and latest[2] > quiet_since:
                self._sessions[key] = latest  # it went on (elsewhere): not quiet yet
                continue
            del self._sessions[key]
            if latest is not None:
                items.append(_item(project_id, evaluator, latest[0], latest[1], now))
        return items

    def _latest_call(
        self, project_id: str, session_id: str, operation: str
    ) -> tuple[str, str, datetime] | None:
        f = SpanFilter(project_id, equals={"session_id": session_id, "operation": operation})
        found = python_rows(self.store.spans(f, ("trace_id", "span_id", "start_time")))
        if not found:
            return None
        last = max(found, key=lambda c: (c["start_time"], c["trace_id"], c["span_id"]))
        return last["trace_id"], last["span_id"], last["start_time"].replace(tzinfo=UTC)


def _item(
    project_id: str, evaluator: Evaluator, trace_id: str, span_id: str, now: datetime
) -> dict[str, Any]:
    return {
        "project_id": project_id,
        "evaluator": evaluator.name,
        "version": evaluator.version,
        "trace_id": trace_id,
        "span_id": span_id,
        "due_at": now,
    }
