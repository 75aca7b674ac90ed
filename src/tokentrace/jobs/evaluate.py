"""Evaluate calls as they arrive, and sessions once they go quiet: the evaluators file's
evaluators (evals/) over the LLM calls they apply to, their verdicts written as scores (source
`evaluator`).

Each run queues what the writes since the last one owe (jobs/evaluation_intake.py: the calls an
evaluator applies to, and the sessions whose latest call is older than their evaluator's quiet
time, queued by that call: a session that goes on is judged again, its score replaced; store:
evaluations, where queueing is idempotent, so a restart never queues twice), then, on the node
holding the job's lease, works through what is due: the call's question and
answer from its content with the documents its trace's retrieval spans returned as context, or
the session's turns; the evaluator's verdict written as a score, then the evaluation settled. A
crash between the two evaluates again and replaces the score (its id is the evaluator's, its
version's and the span's or session's), never adds one.

A judge that does not answer (429, 5xx, a timeout) is asked again later, with backoff, up to
MAX_ATTEMPTS; an answer that is no verdict fails at once. Either way the reason is kept. Every
request to a judge is stored as a span of its own project (evals/judge_trace.py), priced. An
evaluator past its rate limit waits for the next minute; past its daily budget (the judge's own
calls, priced like any call) its evaluations are skipped for the day, and say so.
"""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa

from tokentrace.canonical import CONTENT_SCHEMA, SCORE_SCHEMA, SPAN_SCHEMA, Tables
from tokentrace.evals.config import Evaluator, EvaluatorsError, parse_spec
from tokentrace.evals.conversation import question_and_answer, text_of, transcript
from tokentrace.evals.judge import JudgeCall, JudgeEndpoint, JudgeError, JudgeUnavailable, ask
from tokentrace.evals.judge_trace import judge_rows
from tokentrace.evals.rules import regex_verdict, schema_verdict
from tokentrace.evals.templates import render
from tokentrace.evals.verdict import Verdict, score_id, score_row
from tokentrace.jobs.evaluation_intake import Intake
from tokentrace.jobs.periodic import Periodic
from tokentrace.pricing.book import PriceBook
from tokentrace.store.filters import SpanFilter
from tokentrace.store.protocol import Store

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("tokentrace.evaluate")

BATCH = 50  # evaluations worked through per run
#: A run takes no further evaluation after this long (the rest stay due for the next): a run
#: stays well inside the job's lease (LEASE), so no other node starts on what it holds.
RUN_SECONDS = 60.0
LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 5
_DOCUMENT = re.compile(r"retrieval\.documents\.\d+\.document\.content")


@dataclass
class EvaluateReport:
    queued: int = 0
    scored: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0


@dataclass
class _Outcome:
    """What became of one due evaluation: its verdict (if any), its next state, the reason it
    has none, when it is due again, what its judge cost, and the session it judged."""

    verdict: Verdict | None
    state: str
    error: str | None
    due: datetime
    cost: float | None = None
    session_id: str | None = None


def _documents(recorded: Any) -> list[str]:
    """The texts of a `gen_ai.retrieval.documents` value (a JSON array of {id, score, content},
    as a string or already a list); none from what is not one."""
    if isinstance(recorded, str):
        try:
            recorded = orjson.loads(recorded)
        except orjson.JSONDecodeError:
            return []
    if not isinstance(recorded, list):
        return []
    return [d["content"] for d in recorded if isinstance(d, dict) and isinstance(d.get("content"), str)]


@dataclass
class _Spend:
    """An evaluator's calls this minute and its judge's spend this UTC day (read from the
    store's evaluations when the day, or the process, starts)."""

    minute: datetime | None = None
    calls: int = 0
    day: datetime | None = None
    usd: float = 0.0


@dataclass
class Evaluations:
    """The job: `run_once` on a schedule (server/runner.py)."""

    store: Store
    evaluators: tuple[Evaluator, ...]  # the evaluators file's (every project's)
    prices: PriceBook = field(default_factory=PriceBook)
    judge: JudgeEndpoint | None = None  # the file's [judge]: the API's llm_judge evaluators use it
    client: httpx.Client | None = None  # the judges' (made at the first judge call)
    interval: timedelta = timedelta(seconds=5)  # between runs, on the job's own thread (start())
    _spend: dict[tuple[str | None, str], _Spend] = field(default_factory=lambda: defaultdict(_Spend))
    # Whether this node evaluates now (the job's lease); None: always. It queues either way.
    _may_evaluate: Callable[[], bool] | None = None

    def __post_init__(self) -> None:
        self.schedule = Periodic("evaluate", self.interval, self.run_once)
        self.intake = Intake(self.store, self.evaluators)
        self.active = self.evaluators  # the file's and, from the first run, the API's

    def added(self, project_id: str | None = None) -> tuple[Evaluator, ...]:
        """The evaluators added through the API (one project's, or every project's); one that no
        longer parses (the server's judge gone) is logged and left out."""
        found = []
        for project, name, spec in self.store.evaluator_specs(project_id):
            try:
                found.append(parse_spec(orjson.loads(spec), self.judge, project))
            except (EvaluatorsError, orjson.JSONDecodeError) as exc:
                log.warning("evaluator %r of project %r left out: %s", name, project, exc)
        return tuple(found)

    def refresh(self) -> tuple[Evaluator, ...]:
        """The evaluators to queue and evaluate for: the file's and the API's."""
        active = self.evaluators + self.added()
        if active != self.active:
            self.active = active
            self.intake.use(active)
        return active

    def offer(self, spans: pa.Table) -> None:
        """The spans a write just stored (the batch writer calls it after each write)."""
        self.intake.offer(spans)

    def start(self, may_evaluate: Callable[[], bool] | None = None) -> None:
        """Run every `interval` on a thread of its own: each run queues what the writes owe, and
        evaluates only while `may_evaluate()` (this node holds the job's lease; a node that runs
        no background job never does)."""
        self._may_evaluate = may_evaluate
        self.schedule.start()  # evaluators may come through the API later

    def stop(self) -> None:
        self.schedule.stop()

    def run_once(self, now: datetime | None = None) -> EvaluateReport:
        """Queue the calls written since the last run and the sessions gone quiet, then work
        through what is due."""
        now = now or datetime.now(UTC)
        report = EvaluateReport()
        if not self.refresh():
            self.intake.scanned = True  # nothing was owed before: one added later starts from now
            return report
        owed = self.intake.owed(now)
        report.queued = self.store.queue_evaluations(owed, now) if owed else 0
        if self._may_evaluate is not None and not self._may_evaluate():
            return report  # another node evaluates
        by_name = {(e.project_id, e.name, e.version): e for e in self.active}
        settled, scores, spans, content = [], [], [], []
        began = time.monotonic()
        for item in self.store.due_evaluations(now, BATCH):
            if time.monotonic() - began > RUN_SECONDS:
                break
            named = (item["evaluator"], item["version"])
            evaluator = by_name.get((item["project_id"], *named)) or by_name.get((None, *named))
            outcome = self._evaluate(evaluator, item, now, spans, content)
            if outcome is None:
                continue  # the rate limit: next minute
            if outcome.verdict is not None:
                scores.append(score_row(item, outcome.verdict, now, outcome.session_id))
                report.scored += 1
            report.retried += outcome.state == "due"
            report.failed += outcome.state == "failed"
            report.skipped += outcome.state == "skipped"
            attempts = item["attempts"] + (
                1 if evaluator is not None and evaluator.kind == "llm_judge" else 0
            )
            spent = item["cost_usd"] if outcome.cost is None else (item["cost_usd"] or 0.0) + outcome.cost
            settled.append(
                {
                    **item,
                    "state": outcome.state,
                    "attempts": attempts,
                    "error": outcome.error,
                    "due_at": outcome.due,
                    "updated_at": now,
                    "cost_usd": spent,
                }
            )
        if scores or spans:  # before settling: a crash in between evaluates again, replacing the scores
            written = Tables(
                pa.Table.from_pylist(spans, schema=SPAN_SCHEMA),
                pa.Table.from_pylist(content, schema=CONTENT_SCHEMA),
                pa.Table.from_pylist(scores, schema=SCORE_SCHEMA),
            )
            self.store.write_batch(written, None)
        self.store.settle_evaluations(settled)
        return report

    def _evaluate(
        self,
        evaluator: Evaluator | None,
        item: dict[str, Any],
        now: datetime,
        spans: list[dict[str, Any]],
        content: list[dict[str, Any]],
    ) -> _Outcome | None:
        """What becomes of one queued evaluation; None to leave it due. The judge's requests
        are added to `spans` and `content`."""
        if evaluator is None:
            return _Outcome(None, "skipped", "the evaluator (this version) is no longer configured", now)
        session_id = None
        if evaluator.scope == "session":
            session_id = self._session_of(item)
            turns = self._turns(item["project_id"], session_id, evaluator.operation) if session_id else []
            if not turns:
                return _Outcome(
                    None, "skipped", "the session's messages were not recorded (content capture is off)", now
                )
            values = {"conversation": transcript(turns)}
        else:
            found = self.store.content(item["project_id"], item["trace_id"], item["span_id"])
            if not found or not found.get("output_messages"):
                return _Outcome(
                    None, "skipped", "the call's answer was not recorded (content capture is off)", now
                )
            question, answer = question_and_answer(found)
            if not answer.strip():  # an agent's step that only called tools: no answer to grade
                return _Outcome(None, "skipped", "the call answered with no text (tool calls only)", now)
            if evaluator.kind == "regex":
                verdict = regex_verdict(evaluator.pattern, evaluator.must_match, answer)  # type: ignore[arg-type]
                return _Outcome(verdict, "done", None, now)
            if evaluator.kind == "json_schema":
                return _Outcome(schema_verdict(evaluator.schema, answer), "done", None, now)
            values = {"question": question, "answer": answer, "context": self._context(item)}
        spend = self._spend[(evaluator.project_id, evaluator.name)]  # API evaluators: each project's own
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        if spend.day != day:
            # The day's spend so far, as the store has it: a restart goes on from there.
            spend.day, spend.usd = day, evaluator.spent(self.store.evaluation_spend(day))
        if evaluator.daily_budget_usd is not None and spend.usd >= evaluator.daily_budget_usd:
            spent = f"the evaluator's daily budget of ${evaluator.daily_budget_usd:g} is spent"
            return _Outcome(None, "skipped", spent, now)
        minute = now.replace(second=0, microsecond=0)
        if spend.minute != minute:
            spend.minute, spend.calls = minute, 0
        if evaluator.rate_limit_per_minute is not None and spend.calls >= evaluator.rate_limit_per_minute:
            return None
        spend.calls += 1
        if self.client is None:
            import httpx

            self.client = httpx.Client()
        messages = render(evaluator.template, **values)  # type: ignore[arg-type]
        try:
            answered = ask(self.client, evaluator.judge, messages)  # type: ignore[arg-type]
        except JudgeUnavailable as exc:
            self._record(evaluator, item, session_id, exc.call, spans, content)
            if item["attempts"] + 1 >= MAX_ATTEMPTS:
                return _Outcome(None, "failed", f"{exc} ({MAX_ATTEMPTS} attempts)", now, 0.0, session_id)
            asked = exc.retry_after_s
            wait = asked if asked is not None else min(5 * 2 ** item["attempts"], 600)
            return _Outcome(None, "due", str(exc), now + timedelta(seconds=wait), 0.0, session_id)
        except JudgeError as exc:  # answered with no verdict: what it used is spent all the same
            cost = self._record(evaluator, item, session_id, exc.call, spans, content)
            spend.usd += cost
            return _Outcome(None, "failed", str(exc), now, cost, session_id)
        cost = self._record(evaluator, item, session_id, answered.call, spans, content)
        spend.usd += cost
        return _Outcome(answered.verdict, "done", None, now, cost, session_id)

    def _record(
        self,
        evaluator: Evaluator,
        item: dict[str, Any],
        session_id: str | None,
        call: JudgeCall | None,
        spans: list[dict[str, Any]],
        content: list[dict[str, Any]],
    ) -> float:
        """Add the judge's request to the spans written with this run's scores; what it cost."""
        if call is None:
            return 0.0
        judged = {**item, "session_id": session_id}
        span, messages, cost = judge_rows(
            call,
            evaluator.judge,  # type: ignore[arg-type]
            evaluator.name,
            evaluator.version,
            judged,
            score_id(judged),
            self.prices,
        )
        spans.append(span)
        content.append(messages)
        return cost

    def _session_of(self, item: dict[str, Any]) -> str | None:
        """The session of a session evaluation's call (the session's latest when it was queued)."""
        table = self.store.trace_spans(item["project_id"], item["trace_id"])
        for span in table.select(["span_id", "session_id"]).to_pylist():
            if span["span_id"] == item["span_id"]:
                return span["session_id"]
        return None

    def _turns(self, project_id: str, session_id: str, operation: str) -> list[tuple[str, str]]:
        """A session's turns in order, a trace each: the question its first call was asked and
        the answer its last call gave (an agent's turn makes several calls)."""
        f = SpanFilter(project_id, equals={"session_id": session_id, "operation": operation})
        calls = self.store.spans(f, ("trace_id", "span_id")).to_pylist()
        first: dict[str, str] = {}
        last: dict[str, str] = {}
        for call in calls:  # oldest first
            first.setdefault(call["trace_id"], call["span_id"])
            last[call["trace_id"]] = call["span_id"]
        turns = []
        for trace_id, opening in first.items():
            asked = self.store.content(project_id, trace_id, opening) or {}
            closing = (
                asked
                if last[trace_id] == opening
                else self.store.content(project_id, trace_id, last[trace_id]) or {}
            )
            question, _ = question_and_answer(asked)
            _, answer = question_and_answer(closing)
            if question or answer:
                turns.append((question, answer))
        return turns

    def _context(self, item: dict[str, Any]) -> str:
        """The documents the trace's retrieval spans returned: the GenAI conventions'
        `gen_ai.retrieval.documents`, OpenInference's `retrieval.documents.N.document.content`,
        or the span's recorded output."""
        table = self.store.trace_spans(item["project_id"], item["trace_id"])
        found = []
        for span in table.select(["span_id", "operation", "attributes"]).to_pylist():
            if span["operation"] != "retrieval":
                continue
            attributes = orjson.loads(span["attributes"] or "{}")
            found += _documents(attributes.get("gen_ai.retrieval.documents"))
            found += [str(v) for k, v in sorted(attributes.items()) if _DOCUMENT.fullmatch(k)]
            content = self.store.content(item["project_id"], item["trace_id"], span["span_id"]) or {}
            found += [
                text_of(m.get("parts")) for m in content.get("output_messages") or [] if isinstance(m, dict)
            ]
        return "\n".join(t for t in found if t)
