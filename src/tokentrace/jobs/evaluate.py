"""Evaluate calls as they arrive: the evaluators file's evaluators (evals/) over the LLM calls
they apply to, their verdicts written as scores (source `evaluator`).

Each run queues the calls seen since the last one (store: evaluations; queueing is idempotent,
so overlapping scans and restarts never queue a call twice), then works through what is due:
the call's question and answer from its content, the documents its trace's retrieval spans
returned as context, the evaluator's verdict written as a score, then the evaluation settled.
A crash between the two evaluates the call again and replaces its score (the score id is the
evaluator's, its version's and the span's), never adds one.

A judge that does not answer (429, 5xx, a timeout) is asked again later, with backoff, up to
MAX_ATTEMPTS; an answer that is no verdict fails at once. Either way the reason is kept. An
evaluator past its rate limit waits for the next minute; past its daily budget (the judge's
own calls, priced like any call) its evaluations are skipped for the day, and say so.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa

from tokentrace.canonical import CONTENT_SCHEMA, SCORE_SCHEMA, SPAN_SCHEMA, Tables
from tokentrace.evals.config import Evaluator
from tokentrace.evals.judge import JudgeError, JudgeUnavailable, ask
from tokentrace.evals.rules import regex_verdict, schema_verdict
from tokentrace.evals.templates import render
from tokentrace.evals.verdict import Verdict, score_row
from tokentrace.jobs.periodic import Periodic
from tokentrace.pricing.book import PriceBook
from tokentrace.store.filters import SpanFilter
from tokentrace.store.protocol import Store
from tokentrace.store.python_rows import python_rows

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("tokentrace.evaluate")

LOOKBACK = timedelta(hours=2)  # how far back a first scan (after a start) queues calls
LATE = timedelta(minutes=2)  # how far each scan reaches before the newest call seen
BATCH = 50  # evaluations worked through per run
MAX_ATTEMPTS = 5
_DOCUMENT = re.compile(r"retrieval\.documents\.\d+\.document\.content")


@dataclass
class EvaluateReport:
    queued: int = 0
    scored: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0


def _text(parts: Any) -> str:
    return "".join(
        p.get("content", "") for p in parts or [] if isinstance(p, dict) and p.get("type") == "text"
    )


def question_and_answer(content: dict[str, Any]) -> tuple[str, str]:
    """The last user message of a call's input and the text of its output."""
    asked = [
        m for m in content.get("input_messages") or [] if isinstance(m, dict) and m.get("role") == "user"
    ]
    question = _text(asked[-1].get("parts")) if asked else ""
    answer = "\n".join(
        _text(m.get("parts")) for m in content.get("output_messages") or [] if isinstance(m, dict)
    )
    return question, answer


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
    evaluators: tuple[Evaluator, ...]
    prices: PriceBook = field(default_factory=PriceBook)
    client: httpx.Client | None = None  # the judges' (made at the first judge call)
    interval: timedelta = timedelta(seconds=5)  # between runs, on the job's own thread (start())
    _seen: dict[str, datetime] = field(default_factory=dict)  # per project: the newest call scanned
    _queued: dict[str, dict[tuple[str, str], datetime]] = field(default_factory=dict)  # the overlap's
    _spend: dict[str, _Spend] = field(default_factory=lambda: defaultdict(_Spend))

    def __post_init__(self) -> None:
        self.schedule = Periodic("evaluate", self.interval, self.run_once)

    def start(self) -> None:
        """Run every `interval` on a thread of its own, when there is anything to evaluate."""
        if self.evaluators:
            self.schedule.start()

    def stop(self) -> None:
        self.schedule.stop()

    def run_once(self, now: datetime | None = None) -> EvaluateReport:
        """Queue the calls seen since the last run, then work through what is due."""
        now = now or datetime.now(UTC)
        report = EvaluateReport()
        if not self.evaluators:
            return report
        for project in self.store.projects():
            report.queued += self._queue(project.project_id, now)
        by_name = {(e.name, e.version): e for e in self.evaluators}
        settled, scores = [], []
        for item in self.store.due_evaluations(now, BATCH):
            evaluator = by_name.get((item["evaluator"], item["version"]))
            outcome = self._evaluate(evaluator, item, now)
            if outcome is None:
                continue  # the rate limit: next minute
            verdict, state, error, due, cost = outcome
            if verdict is not None:
                scores.append(
                    score_row(
                        item["project_id"],
                        item["trace_id"],
                        item["span_id"],
                        item["evaluator"],
                        item["version"],
                        verdict,
                        now,
                    )
                )
                report.scored += 1
            report.retried += state == "due"
            report.failed += state == "failed"
            report.skipped += state == "skipped"
            attempts = item["attempts"] + (
                1 if evaluator is not None and evaluator.kind == "llm_judge" else 0
            )
            settled.append(
                {
                    **item,
                    "state": state,
                    "attempts": attempts,
                    "error": error,
                    "due_at": due,
                    "updated_at": now,
                    "cost_usd": cost,
                }
            )
        if scores:  # the scores first: a crash before settling evaluates again, replacing them
            table = pa.Table.from_pylist(scores, schema=SCORE_SCHEMA)
            self.store.write_batch(
                Tables(SPAN_SCHEMA.empty_table(), CONTENT_SCHEMA.empty_table(), table), None
            )
        self.store.settle_evaluations(settled)
        return report

    def _queue(self, project_id: str, now: datetime) -> int:
        since = self._seen.get(project_id, now - LOOKBACK + LATE) - LATE
        fields = sorted(
            {"trace_id", "span_id", "operation", "start_time"}
            | {f for e in self.evaluators for f, _ in e.where}
        )
        operations = tuple(sorted({e.operation for e in self.evaluators}))
        f = SpanFilter(project_id, since=since, equals={"operation": operations})
        calls = python_rows(self.store.spans(f, tuple(fields)))
        if not calls:
            return 0
        newest = max(c["start_time"] for c in calls).replace(tzinfo=UTC)
        self._seen[project_id] = newest
        # Calls this process queued in the overlap are not offered to the store again (the store
        # would ignore them; asking costs a join per run).
        recent = self._queued.setdefault(project_id, {})
        items = []
        for call in calls:
            key = (call["trace_id"], call["span_id"])
            if key in recent:
                continue
            recent[key] = call["start_time"].replace(tzinfo=UTC)
            items += [
                {
                    "project_id": project_id,
                    "evaluator": e.name,
                    "version": e.version,
                    "trace_id": call["trace_id"],
                    "span_id": call["span_id"],
                    "due_at": now,
                }
                for e in self.evaluators
                if e.applies(call)
            ]
        for key in [k for k, at in recent.items() if at < newest - 2 * LATE]:
            del recent[key]
        return self.store.queue_evaluations(items, now) if items else 0

    def _evaluate(
        self, evaluator: Evaluator | None, item: dict[str, Any], now: datetime
    ) -> tuple[Verdict | None, str, str | None, datetime, float | None] | None:
        """(verdict, state, error, next due, what its judge cost) of one queued evaluation; None
        to leave it due."""
        if evaluator is None:
            return None, "skipped", "the evaluator (this version) is no longer configured", now, None
        content = self.store.content(item["project_id"], item["trace_id"], item["span_id"])
        if not content or not content.get("output_messages"):
            return None, "skipped", "the call's answer was not recorded (content capture is off)", now, None
        question, answer = question_and_answer(content)
        if evaluator.kind == "regex":
            verdict = regex_verdict(evaluator.pattern, evaluator.must_match, answer)  # type: ignore[arg-type]
            return verdict, "done", None, now, None
        if evaluator.kind == "json_schema":
            return schema_verdict(evaluator.schema, answer), "done", None, now, None
        spend = self._spend[evaluator.name]
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        if spend.day != day:
            # The day's spend so far, as the store has it: a restart goes on from there.
            spend.day, spend.usd = day, self.store.evaluation_spend(day).get(evaluator.name, 0.0)
        if evaluator.daily_budget_usd is not None and spend.usd >= evaluator.daily_budget_usd:
            return (
                None,
                "skipped",
                f"the evaluator's daily budget of ${evaluator.daily_budget_usd:g} is spent",
                now,
                None,
            )
        minute = now.replace(second=0, microsecond=0)
        if spend.minute != minute:
            spend.minute, spend.calls = minute, 0
        if evaluator.rate_limit_per_minute is not None and spend.calls >= evaluator.rate_limit_per_minute:
            return None
        spend.calls += 1
        messages = render(evaluator.template, question, answer, self._context(item))  # type: ignore[arg-type]
        if self.client is None:
            import httpx

            self.client = httpx.Client()
        try:
            answered = ask(self.client, evaluator.judge, messages)  # type: ignore[arg-type]
        except JudgeUnavailable as exc:
            if item["attempts"] + 1 >= MAX_ATTEMPTS:
                return None, "failed", f"{exc} ({MAX_ATTEMPTS} attempts)", now, None
            asked = exc.retry_after_s
            wait = asked if asked is not None else min(5 * 2 ** item["attempts"], 600)
            return None, "due", str(exc), now + timedelta(seconds=wait), None
        except JudgeError as exc:
            return None, "failed", str(exc), now, None
        cost = self._cost(evaluator, answered.model, answered.input_tokens, answered.output_tokens, now)
        spend.usd += cost
        return answered.verdict, "done", None, now, cost

    def _context(self, item: dict[str, Any]) -> str:
        """The documents the trace's retrieval spans returned: OpenInference's
        `retrieval.documents.N.document.content`, or the span's recorded output."""
        table = self.store.trace_spans(item["project_id"], item["trace_id"])
        found = []
        for span in table.select(["span_id", "operation", "attributes"]).to_pylist():
            if span["operation"] != "retrieval":
                continue
            attributes = orjson.loads(span["attributes"] or "{}")
            found += [str(v) for k, v in sorted(attributes.items()) if _DOCUMENT.fullmatch(k)]
            content = self.store.content(item["project_id"], item["trace_id"], span["span_id"]) or {}
            found += [
                _text(m.get("parts")) for m in content.get("output_messages") or [] if isinstance(m, dict)
            ]
        return "\n".join(t for t in found if t)

    def _cost(
        self, evaluator: Evaluator, model: str | None, inputs: int | None, outputs: int | None, now: datetime
    ) -> float:
        judge = evaluator.judge
        assert judge is not None
        rates = self.prices.rates(judge.api, model or judge.model, int(now.timestamp() * 1e9))
        return rates.cost(inputs, outputs, None, None) if rates is not None else 0.0
