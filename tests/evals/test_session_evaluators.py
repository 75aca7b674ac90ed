"""Session evaluators and the judge's own calls, over a real store (both engines), the judge
served by the simulated provider: a session is judged once it has been quiet, again when it
goes on (its score replaced, never added), never twice after a restart; its score is the
session's, counted by the tags of the trace it was given at; every request to a judge is a
priced span of the judges' own project, and the application's spend does not move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from tokentrace.evals.config import EvaluatorsError, parse_evaluators
from tokentrace.evals.judge_trace import JUDGE_PROJECT, judge_trace_id
from tokentrace.ingest.columns import tables
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.prepare import price_rows
from tokentrace.ingest.raw import RawSpan
from tokentrace.jobs.evaluate import Evaluations
from tokentrace.pricing import PriceBook
from tokentrace.query import aggregates
from tokentrace.query.quality import quality
from tokentrace.query.records import records
from tokentrace.query.scores import summary
from tokentrace.query.sessions import session
from tokentrace.store.filters import SpanFilter

NOW = datetime.now(UTC).replace(microsecond=0)
PAID = "Refunds are paid within five business days."
DECLINED = "I'm sorry, but I can't help with that."


def _messages(role: str, text: str) -> str:
    return orjson.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}]).decode()


def _turn(n: int, session_id: str, asked: str | None, answer: str | None, at: datetime) -> RawSpan:
    """One user turn of a support chat: a trace of one chat call in session `session_id` (its
    messages recorded unless None)."""
    start = int(at.timestamp() * 1e9)
    attributes = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 200,
        "gen_ai.usage.output_tokens": 40, "session.id": session_id, "tokentrace.feature": "support-chat",
    }  # fmt: skip
    if asked is not None:
        attributes["gen_ai.input.messages"] = _messages("user", asked)
        attributes["gen_ai.output.messages"] = _messages("assistant", answer or "")
    return RawSpan(
        f"{n:032x}", f"{n:016x}", "", "chat gpt-4o-mini", 3, start, start + 800_000_000, 0, "",
        attributes, {"service.name": "support"},
    )  # fmt: skip


def _write(store, spans: list[RawSpan], job: Evaluations | None = None) -> None:
    """Store the spans, as the batch writer does: offering them to the evaluation job after."""
    batch = normalize(spans, "default")
    price_rows(PriceBook(), batch.rows)
    written = tables(batch.rows, batch.content, batch.scores)
    store.write_batch(written, None)
    if job is not None:
        job.offer(written.spans)


def _evaluators(judge_url: str):
    return parse_evaluators(
        f"""
[judge]
url = "{judge_url}"
model = "gpt-4o-mini"

[[evaluators]]
name = "resolved"
kind = "llm_judge"
scope = "session"
template = "task_completion"
quiet_minutes = 10
where = {{ feature = "support-chat" }}

[[evaluators]]
name = "calm"
kind = "llm_judge"
scope = "session"
template = "frustration"
quiet_minutes = 10
""",
        "evals.toml",
    )


def _session_scores(store, session_id: str) -> dict[str, dict]:
    return {s["name"]: s for s in records(store.session_scores("default", session_id))}


def _app_cost(store) -> float:
    f = SpanFilter("default", since=NOW - timedelta(days=1), until=NOW + timedelta(days=1))
    return sum(r["cost_usd"] for r in aggregates.rollup(store, f))


def test_a_session_is_judged_once_quiet_and_again_when_it_goes_on(open_store, provider_url):
    store = open_store()
    _write(store, [_turn(1, "s-angry", "Where is my refund?", PAID, NOW - timedelta(minutes=30))])
    upset = "It is still not here, this is useless"
    _write(store, [_turn(2, "s-angry", upset, DECLINED, NOW - timedelta(minutes=25))])
    _write(store, [_turn(3, "s-happy", "Where is my refund?", PAID, NOW - timedelta(minutes=28))])
    _write(store, [_turn(4, "s-dark", None, None, NOW - timedelta(minutes=27))])  # content capture off
    _write(store, [_turn(5, "s-live", "Where is my refund?", PAID, NOW - timedelta(minutes=2))])
    spend_before = _app_cost(store)
    job = Evaluations(store, _evaluators(f"{provider_url}/v1"))
    done = job.run_once(NOW)
    # three sessions quiet for 10 minutes, two evaluators each; s-live is still going
    assert (done.queued, done.scored, done.skipped) == (6, 4, 2)
    # the judge's calls are spend of their own: the application's is as it was
    assert spend_before > 0 and _app_cost(store) == pytest.approx(spend_before)
    angry = _session_scores(store, "s-angry")
    assert (angry["resolved"]["value"], angry["resolved"]["string_value"]) == (0.0, "not_completed")
    assert (angry["calm"]["value"], angry["calm"]["string_value"]) == (0.5, "annoyed")
    # the session's score, given at the trace of its latest call (not the call: span_id '')
    assert (angry["calm"]["trace_id"], angry["calm"]["span_id"]) == (f"{2:032x}", "")
    assert angry["calm"]["source"] == "evaluator" and angry["calm"]["session_id"] == "s-angry"
    assert {n: s["value"] for n, s in _session_scores(store, "s-happy").items()} == {
        "resolved": 1.0,
        "calm": 1.0,
    }
    assert _session_scores(store, "s-dark") == {} and _session_scores(store, "s-live") == {}
    skipped = store.evaluation_list("default", "skipped", 10)
    assert {e["error"] for e in skipped} == {
        "the session's messages were not recorded (content capture is off)"
    }
    # the session page has them; the quality numbers count them by the tags of their trace
    assert {s["name"] for s in session(store, "default", "s-angry").scores} == {"resolved", "calm"}
    f = SpanFilter("default", since=NOW - timedelta(hours=1), until=NOW + timedelta(hours=1))
    [by_feature] = summary(store, f, ("feature",), "resolved")
    assert (by_feature["feature"], by_feature["scores"], by_feature["mean"]) == ("support-chat", 2, 0.5)
    [resolved] = [q for q in quality(store, f).scores if q.name == "resolved"]
    assert [(low["session_id"], low["value"]) for low in resolved.lowest] == [
        ("s-angry", 0.0),
        ("s-happy", 1.0),
    ]

    # s-live goes quiet; s-angry goes on, calmly, and is judged again when it is quiet again
    _write(store, [_turn(6, "s-angry", "Thanks, that is clear", PAID, NOW + timedelta(minutes=1))], job)
    assert job.run_once(NOW + timedelta(minutes=5)).queued == 0  # s-angry is not quiet yet
    later = job.run_once(NOW + timedelta(minutes=12))
    assert (later.queued, later.scored) == (4, 4)
    angry = _session_scores(store, "s-angry")
    assert (angry["resolved"]["value"], angry["calm"]["value"]) == (1.0, 0.67)  # replaced, not added
    assert angry["calm"]["trace_id"] == f"{6:032x}"
    assert set(_session_scores(store, "s-live")) == {"resolved", "calm"}
    # a restart scans the last two hours again: the same quiet sessions are not judged twice
    store = open_store(reopen=store)
    restarted = Evaluations(store, _evaluators(f"{provider_url}/v1"))
    after = restarted.run_once(NOW + timedelta(minutes=13))
    assert (after.queued, after.scored) == (0, 0)

    # every request to the judge is a priced span of the judges' project, whose spend it is
    judged = records(
        store.spans(
            SpanFilter(JUDGE_PROJECT),
            (
                "trace_id",
                "name",
                "tenant_id",
                "feature",
                "request_model",
                "input_tokens",
                "cost_usd",
                "status",
            ),
        )
    )
    assert len(judged) == 8 and {j["tenant_id"] for j in judged} == {"default"}
    assert {j["feature"] for j in judged} == {"resolved", "calm"} and {j["status"] for j in judged} == {"ok"}
    assert all(j["input_tokens"] > 0 and j["cost_usd"] > 0 for j in judged)
    day = NOW.replace(hour=0, minute=0, second=0)
    spent = sum(store.evaluation_spend(day).values())
    assert sum(j["cost_usd"] for j in judged) == pytest.approx(spent)
    # a session's verdict leads to its judge's trace (one for both of its evaluations)
    assert judge_trace_id("default", angry["calm"]["score_id"]) in {j["trace_id"] for j in judged}


def test_judge_requests_that_fail_are_spans_too(open_store):
    """A judge that cannot be reached: the attempt is an error span (no tokens, no cost) of the
    evaluation's trace, retried later."""
    store = open_store()
    _write(store, [_turn(1, "s-1", "Where is my refund?", PAID, NOW - timedelta(minutes=30))])
    job = Evaluations(store, _evaluators("http://127.0.0.1:9/v1"))
    assert job.run_once(NOW).retried == 2
    judged = records(
        store.spans(SpanFilter(JUDGE_PROJECT), ("status", "error_type", "cost_usd", "status_message"))
    )
    assert len(judged) == 2 and {j["status"] for j in judged} == {"error"}
    assert {j["cost_usd"] for j in judged} == {0.0} and all(
        "cannot be reached" in j["status_message"] for j in judged
    )


@pytest.mark.parametrize(
    "entry,said",
    [
        ('kind = "regex"\nscope = "session"\npattern = "x"', "a session is judged by an llm_judge"),
        (
            'kind = "llm_judge"\nscope = "turn"\ntemplate = "frustration"',
            "scope must be one of call, session",
        ),
        ('kind = "llm_judge"\nscope = "session"\ntemplate = "groundedness"', "a session's template judges"),
        ('kind = "llm_judge"\ntemplate = "frustration"', 'set scope = "session"'),
        (
            'kind = "llm_judge"\ntemplate = "refusal"\nquiet_minutes = 5',
            'quiet_minutes is for scope = "session"',
        ),
        (
            'kind = "llm_judge"\nscope = "session"\ntemplate = "frustration"\nquiet_minutes = 0',
            "quiet_minutes must be",
        ),
    ],
)
def test_a_session_evaluator_that_cannot_be_used_is_refused_with_its_line(entry, said):
    text = f'[judge]\nurl = "http://127.0.0.1:9/v1"\nmodel = "m"\n\n[[evaluators]]\nname = "e"\n{entry}\n'
    with pytest.raises(EvaluatorsError, match=said) as raised:
        parse_evaluators(text, "evals.toml")
    assert str(raised.value).startswith("evals.toml, line ")
