"""The evaluation job (jobs/evaluate.py) over a real store, both engines, with the judge served by
the simulated provider: calls queued once, graded, their verdicts scores; a restart neither
loses nor repeats; a judge that does not answer is retried with backoff, then failed with its
reason; an answer that is no verdict fails at once; a budget stops the judge and says so; the
planted bad prompt version is alerted on, kept by tail sampling and named by triage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from tokentrace.alerts.conditions import observe
from tokentrace.alerts.rules import Rule
from tokentrace.evals.config import parse_evaluators
from tokentrace.evals.judge import JudgeEndpoint
from tokentrace.ingest.columns import tables
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.prepare import price_rows
from tokentrace.ingest.raw import RawSpan
from tokentrace.jobs.evaluate import MAX_ATTEMPTS, Evaluations
from tokentrace.pricing import PriceBook
from tokentrace.query import measures
from tokentrace.query.records import records
from tokentrace.store.filters import SpanFilter

NOW = datetime.now(UTC).replace(microsecond=0)
CONTEXT = "Refunds are paid within five business days to the original card."
GROUNDED = "Refunds are paid within five business days to the original card."
MADE_UP = "Refunds arrive instantly as store credit plus a bonus voucher."


def _messages(role: str, text: str) -> str:
    return orjson.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}]).decode()


def _trace(n: int, answer: str, version: str, at: datetime) -> list[RawSpan]:
    """A RAG call: a retrieval span returning CONTEXT, then the chat call answering from it."""
    trace_id, start = f"{n:032x}", int(at.timestamp() * 1e9)
    retrieval = RawSpan(
        trace_id, f"{n:08x}00000001", "", "retrieve kb", 3, start, start + 10_000_000, 0, "",
        {"gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": "kb",
         "retrieval.documents.0.document.content": CONTEXT},
        {"service.name": "support"},
    )  # fmt: skip
    chat = RawSpan(
        trace_id, f"{n:08x}00000002", "", "chat gpt-4o-mini", 3, start + 20_000_000, start + 900_000_000,
        0, "",
        {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
         "gen_ai.request.model": "gpt-4o-mini",
         "gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 30,
         "tokentrace.feature": "refund-chat", "tokentrace.prompt.version": version,
         "gen_ai.input.messages": _messages("user", "When will my refund be paid?"),
         "gen_ai.output.messages": _messages("assistant", answer)},
        {"service.name": "support"},
    )  # fmt: skip
    return [retrieval, chat]


def _write(store, spans: list[RawSpan]) -> None:
    batch = normalize(spans, "default")
    price_rows(PriceBook(), batch.rows)
    store.write_batch(tables(batch.rows, batch.content, batch.scores), None)


def _evaluators(judge_url: str, extra: str = ""):
    return parse_evaluators(
        f"""
[judge]
url = "{judge_url}"
model = "gpt-4o-mini"

[[evaluators]]
name = "groundedness"
kind = "llm_judge"
template = "groundedness"
where = {{ feature = "refund-chat" }}
{extra}

[[evaluators]]
name = "no-voucher"
kind = "regex"
pattern = "voucher"
must_match = false
""",
        "evals.toml",
    )


def _scores(store) -> dict[tuple[str, str], dict]:
    found = {}
    for n in (1, 2):
        for score in records(store.scores("default", f"{n:032x}")):
            found[(score["trace_id"][-1], score["name"])] = score
    return found


def test_calls_are_graded_once_and_a_restart_repeats_nothing(open_store, provider_url):
    store = open_store()
    _write(store, _trace(1, GROUNDED, "v3", NOW - timedelta(minutes=3)))
    _write(store, _trace(2, MADE_UP, "v4", NOW - timedelta(minutes=2)))
    job = Evaluations(store, _evaluators(f"{provider_url}/v1"))
    done = job.run_once(NOW)
    # two chat calls: each graded by the judge and the regex; retrieval spans are not chat calls
    assert (done.queued, done.scored, done.failed) == (4, 4, 0)
    scores = _scores(store)
    assert (
        scores[("1", "groundedness")]["value"] == 1.0
        and scores[("1", "groundedness")]["source"] == "evaluator"
    )
    assert scores[("2", "groundedness")]["value"] < 0.4
    assert scores[("2", "groundedness")]["string_value"] == "ungrounded"
    assert (scores[("1", "no-voucher")]["value"], scores[("2", "no-voucher")]["value"]) == (1.0, 0.0)
    assert store.evaluation_states("default") == {"groundedness": {"done": 2}, "no-voucher": {"done": 2}}

    again = job.run_once(NOW + timedelta(seconds=10))
    restarted = Evaluations(open_store(reopen=store), _evaluators(f"{provider_url}/v1"))
    after = restarted.run_once(NOW + timedelta(seconds=20))
    assert (again.queued, again.scored, after.queued, after.scored) == (0, 0, 0, 0)


def test_a_call_written_late_is_evaluated_as_it_is_written(open_store, provider_url):
    """The batch writer offers each write's calls: one that started three hours before it
    arrived (an exporter that was offline) is graded all the same, and one offered twice (a
    resend) is queued once."""
    store = open_store()
    job = Evaluations(store, _evaluators(f"{provider_url}/v1"))
    assert job.run_once(NOW).queued == 0
    batch = normalize(_trace(7, GROUNDED, "v3", NOW - timedelta(hours=3)), "default")
    price_rows(PriceBook(), batch.rows)
    written = tables(batch.rows, batch.content, batch.scores)
    store.write_batch(written, None)
    job.offer(written.spans)
    job.offer(written.spans)
    done = job.run_once(NOW + timedelta(seconds=5))
    assert (done.queued, done.scored) == (2, 2)
    assert {s["name"] for s in records(store.scores("default", f"{7:032x}"))} == {
        "groundedness",
        "no-voucher",
    }


def test_a_judge_that_does_not_answer_is_retried_then_failed_with_its_reason(open_store):
    store = open_store()
    _write(store, _trace(1, GROUNDED, "v3", NOW - timedelta(minutes=1)))
    job = Evaluations(store, _evaluators("http://127.0.0.1:9/v1"))
    first = job.run_once(NOW)
    assert (first.scored, first.retried) == (1, 1)  # the regex graded; the judge is due again
    [due] = [
        e for e in store.due_evaluations(NOW + timedelta(hours=1), 10) if e["evaluator"] == "groundedness"
    ]
    assert (
        due["attempts"] == 1
        and due["due_at"] == NOW + timedelta(seconds=5)
        and "cannot be reached" in due["error"]
    )
    assert not job.run_once(NOW + timedelta(seconds=1)).retried  # not due yet: backoff
    at = NOW
    for _ in range(MAX_ATTEMPTS - 1):
        at += timedelta(minutes=15)
        job.run_once(at)
    assert store.evaluation_states("default")["groundedness"] == {"failed": 1}
    assert store.due_evaluations(at + timedelta(days=1), 10) == []
    [failed] = store.evaluation_list("default", "failed", 10)
    assert failed["attempts"] == MAX_ATTEMPTS and f"({MAX_ATTEMPTS} attempts)" in failed["error"]


def test_the_judge_reads_the_documents_a_retrieval_recorded_as_the_genai_conventions_say(
    open_store, provider_url
):
    """`gen_ai.retrieval.documents` (what tokentrace's SDK records) is the groundedness judge's
    context, as OpenInference's `retrieval.documents.N.document.content` is."""
    store = open_store()
    spans = _trace(1, GROUNDED, "v3", NOW - timedelta(minutes=1))
    retrieval = spans[0].attributes
    del retrieval["retrieval.documents.0.document.content"]
    retrieval["gen_ai.retrieval.documents"] = orjson.dumps(
        [{"id": "p1", "score": 0.9, "content": CONTEXT}]
    ).decode()
    _write(store, spans)
    Evaluations(store, _evaluators(f"{provider_url}/v1")).run_once(NOW)
    scores = {s["name"]: s for s in records(store.scores("default", f"{1:032x}"))}
    assert scores["groundedness"]["value"] == 1.0 and scores["groundedness"]["string_value"] == "grounded"


def test_a_call_that_answered_with_tool_calls_only_is_not_graded(open_store, provider_url):
    """An agent's step whose output is tool calls has no answer: skipped, said so, no judge asked
    (graded, an empty answer would read as ungrounded, or as a failed rule)."""
    store = open_store()
    spans = _trace(1, GROUNDED, "v3", NOW - timedelta(minutes=1))
    call = '[{"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "lookup_order", '
    spans[1].attributes["gen_ai.output.messages"] = call + '"arguments": {"order_id": "1"}}]}]'
    _write(store, spans)
    report = Evaluations(store, _evaluators(f"{provider_url}/v1")).run_once(NOW)
    assert (report.scored, report.skipped) == (0, 2)  # groundedness and the regex
    skipped = store.evaluation_list("default", "skipped", 10)
    assert {s["error"] for s in skipped} == {"the call answered with no text (tool calls only)"}
    assert records(store.scores("default", f"{1:032x}")) == []
    assert store.evaluation_spend(NOW.replace(hour=0, minute=0, second=0)) == {}


def test_an_answer_that_is_no_verdict_fails_at_once_and_a_budget_stops_the_judge(open_store, provider_url):
    store = open_store()
    # the daily budget resets at 00:00 UTC: both runs below (now, now + 5 s) in one day
    now = min(NOW, NOW.replace(hour=23, minute=59, second=50))
    _write(store, _trace(1, GROUNDED, "v3", now - timedelta(minutes=2)))
    _write(store, _trace(2, MADE_UP, "v4", now - timedelta(minutes=1)))
    job = Evaluations(store, _evaluators(f"{provider_url}/v1", "daily_budget_usd = 0.0000001"))
    job.run_once(now)
    states = store.evaluation_states("default")["groundedness"]
    assert states == {"done": 1, "skipped": 1}  # the first call spent the budget
    [skipped] = store.evaluation_list("default", "skipped", 10)
    assert skipped["evaluator"] == "groundedness" and "daily budget of $1e-07 is spent" in skipped["error"]
    day = now.replace(hour=0, minute=0, second=0)
    spent = store.evaluation_spend(day)[("default", "groundedness")]
    assert spent > 0 and ("default", "no-voucher") not in store.evaluation_spend(day)  # a rule costs nothing
    # A restart goes on from the day's spend in the store: the judge is not asked again today.
    restarted = Evaluations(store, _evaluators(f"{provider_url}/v1", "daily_budget_usd = 0.0000001"))
    _write(store, _trace(4, GROUNDED, "v3", now - timedelta(seconds=30)))
    report = restarted.run_once(now + timedelta(seconds=5))
    assert report.skipped == 1 and report.scored == 1  # the regex graded the new call
    assert store.evaluation_states("default")["groundedness"] == {"done": 1, "skipped": 2}
    assert store.evaluation_spend(day) == {("default", "groundedness"): spent}

    custom = Evaluations(
        open_store(),
        parse_evaluators(
            '[[evaluators]]\nname = "chatty"\nkind = "llm_judge"\nsystem = "Say hi."\n'
            f'prompt = "{{answer}}"\njudge = {{ url = "{provider_url}/v1", model = "gpt-4o-mini" }}\n',
            "evals.toml",
        ),
    )
    _write(custom.store, _trace(3, GROUNDED, "v3", NOW - timedelta(minutes=1)))
    report = custom.run_once(NOW)
    assert (report.failed, report.scored) == (1, 0)
    [failed] = custom.store.evaluation_list("default", None, 10)
    # (the simulated model answers a JSON request with {"answer": …}: no score in it)
    assert failed["state"] == "failed" and "score must be a number from 0 to 1, got None" in failed["error"]


def test_a_score_rate_is_a_measure_alert_rules_fire_on(open_store, provider_url):
    """`score_rate:groundedness<0.5`: the share of graded calls scored below 0.5, per group; a
    threshold rule on it fires for the prompt version whose answers are made up, not the other."""
    store = open_store()
    for n in range(1, 5):
        answer = MADE_UP if n % 2 == 0 else GROUNDED
        _write(store, _trace(n, answer, "v4" if n % 2 == 0 else "v3", NOW - timedelta(minutes=n)))
    Evaluations(store, _evaluators(f"{provider_url}/v1")).run_once(NOW)
    f = SpanFilter("default", since=NOW - timedelta(hours=1), until=NOW + timedelta(minutes=1))
    rates = measures.measure(store, f, ("prompt_version",), "score_rate:groundedness<0.5")
    assert rates == {("v3",): {"value": 0.0, "requests": 2}, ("v4",): {"value": 1.0, "requests": 2}}
    rule = Rule(
        "ungrounded", "threshold", "score_rate:groundedness<0.5", window=timedelta(hours=1), above=0.05,
        where={"feature": "refund-chat"}, group_by=("prompt_version",), min_requests=1,
    )  # fmt: skip
    seen = {o.group["prompt_version"]: o for o in observe(store, rule, NOW + timedelta(seconds=30))}
    assert seen["v4"].breached and not seen["v3"].breached
    assert seen["v4"].detail == "score_rate:groundedness<0.5 1 > 0.05"
    with pytest.raises(measures.UnknownMeasure, match="score_rate:NAME<VALUE"):
        measures.check("score_rate:groundedness=0.5")


def test_triage_reports_the_quality_change_of_the_prompt_version_that_went_bad(open_store, provider_url):
    """An hour of v3 answers from the context, then half an hour of v4 making answers up: triage
    names v4's groundedness drop beside cost and latency (against the whole baseline: v4's one
    call before the window, as a rollout starts, is too few to compare with)."""
    from tokentrace.query.triage import triage

    store = open_store()
    for n in range(1, 6):  # the baseline: v3, grounded
        _write(store, _trace(n, GROUNDED, "v3", NOW - timedelta(minutes=40 + 10 * n)))
    for n in range(6, 11):  # the window: v4, made up
        _write(store, _trace(n, MADE_UP, "v4", NOW - timedelta(minutes=n)))
    _write(store, _trace(11, MADE_UP, "v4", NOW - timedelta(minutes=31)))  # v4's first, just before
    Evaluations(store, _evaluators(f"{provider_url}/v1")).run_once(NOW)
    report = triage(store, "default", timedelta(minutes=30), timedelta(hours=1), until=NOW)
    by_slice = {(q.score, tuple(q.group.items())): q for q in report.quality}
    overall = by_slice[("groundedness", ())]
    assert overall.before_mean > 0.8 and overall.after_mean < 0.4 and overall.after_scores == 5
    version = by_slice[("groundedness", (("prompt_version", "v4"),))]
    assert (version.before_scores, version.before_mean) == (6, overall.before_mean)
    assert version.evidence.startswith(f"prompt_version v4: groundedness {overall.before_mean:.2f} → 0.")
    assert ("no-voucher", ()) in by_slice  # the rule's score moved as well
    assert report.quality[0].group == {} and report.quality[0].change < 0


def test_tail_sampling_keeps_the_traces_the_judge_scored_low(open_store, provider_url):
    """A policy that keeps no trace by chance keeps every trace whose answer the judge found
    made up (the planted v4), drops the grounded ones' spans, and the totals stay whole."""
    from tokentrace.query import rollups
    from tokentrace.store.filters import ScoreCondition
    from tokentrace.store.sampling import SamplingPolicy

    store = open_store()
    for n in range(1, 11):
        bad = n % 2 == 0
        _write(
            store,
            _trace(n, MADE_UP if bad else GROUNDED, "v4" if bad else "v3", NOW - timedelta(minutes=90 + n)),
        )
    Evaluations(store, _evaluators(f"{provider_url}/v1")).run_once(NOW)
    store.advance_rollups(NOW - timedelta(minutes=2))
    # (sampling judges traces the hourly user rollups hold: older than the last whole hour)
    whole = SpanFilter("default", since=NOW - timedelta(hours=3), until=NOW)
    before = rollups.aggregate(store, whole, ("prompt_version",), None)
    policy = SamplingPolicy(
        recent=timedelta(minutes=10),
        keep_slower_than_percentile=None,
        keep_scores=(ScoreCondition("groundedness", "<", 0.5),),
    )
    verdicts = {
        v["trace_id"]: v["kept_because"] for v in store.apply_sampling("default", policy, NOW).to_pylist()
    }
    assert verdicts == {f"{n:032x}": ("score" if n % 2 == 0 else None) for n in range(1, 11)}
    stored = {r["trace_id"] for r in store.spans(SpanFilter("default"), ("trace_id",)).to_pylist()}
    assert stored == {f"{n:032x}" for n in range(2, 11, 2)}
    after = rollups.aggregate(store, whole, ("prompt_version",), None)

    def by_version(rows):
        return {
            r["prompt_version"]: (r["requests"], r["total_tokens"], round(r["cost_usd"], 12)) for r in rows
        }

    assert by_version(after) == by_version(before) and by_version(after)["v4"][0] == 5
    assert {"v3", "v4"} <= {r["prompt_version"] for r in after}


def test_an_evaluator_added_through_the_api_grades_its_projects_calls_alone(open_store, provider_url):
    store = open_store()
    judge = JudgeEndpoint(f"{provider_url}/v1", "gpt-4o-mini")
    spec = {"name": "relevance", "kind": "llm_judge", "template": "relevance"}
    store.put_evaluator("default", "relevance", orjson.dumps(spec).decode())
    store.put_evaluator(
        "default", "gone", orjson.dumps({"name": "gone", "kind": "regex", "pattern": "x"}).decode()
    )
    assert store.delete_evaluator("default", "gone") and not store.delete_evaluator("default", "gone")
    assert [(p, n) for p, n, _ in store.evaluator_specs()] == [("default", "relevance")]
    _write(store, _trace(1, GROUNDED, "v3", NOW - timedelta(minutes=2)))
    theirs = normalize(_trace(2, GROUNDED, "v3", NOW - timedelta(minutes=2)), "other")
    store.write_batch(tables(theirs.rows, theirs.content), None)
    job = Evaluations(store, (), judge=judge)  # no evaluators file's evaluator: the API's alone
    done = job.run_once(NOW)  # (the first run: it scans the last two hours for what is owed)
    assert (done.queued, done.scored) == (1, 1)
    [score] = records(store.scores("default", f"{1:032x}"))
    assert (score["name"], score["source"]) == ("relevance", "evaluator")
    assert records(store.scores("other", f"{2:032x}")) == []
    # a project deleted takes its evaluators with it
    store.delete_project("default")
    assert store.evaluator_specs() == []


def test_two_projects_evaluators_of_one_name_have_a_budget_each(open_store, provider_url):
    """Project A's "tone" spending its budget does not stop project B's "tone"; the file's
    evaluator of a name counts every project's spend."""
    store = open_store()
    judge = JudgeEndpoint(f"{provider_url}/v1", "gpt-4o-mini")
    spec = {"name": "tone", "kind": "llm_judge", "template": "relevance", "daily_budget_usd": 0.0000001}
    for project in ("a", "b"):
        store.create_project(project, f"key-hash-{project}")
        store.put_evaluator(project, "tone", orjson.dumps(spec).decode())
    for n, project in ((1, "a"), (2, "a"), (3, "b")):
        batch = normalize(_trace(n, GROUNDED, "v3", NOW - timedelta(minutes=3 - n)), project)
        price_rows(PriceBook(), batch.rows)
        store.write_batch(tables(batch.rows, batch.content), None)
    job = Evaluations(store, (), judge=judge)
    job.run_once(NOW)
    # a's first call spent a's budget, its second is skipped; b's budget is untouched by a's
    assert store.evaluation_states("a")["tone"] == {"done": 1, "skipped": 1}
    assert store.evaluation_states("b")["tone"] == {"done": 1}
    day = NOW.replace(hour=0, minute=0, second=0)
    spend = store.evaluation_spend(day)
    assert set(spend) == {("a", "tone"), ("b", "tone")} and all(usd > 0 for usd in spend.values())
    a_tone, b_tone = job.added("a")[0], job.added("b")[0]
    assert (a_tone.spent(spend), b_tone.spent(spend)) == (spend[("a", "tone")], spend[("b", "tone")])
    from_file = parse_evaluators('[[evaluators]]\nname = "tone"\nkind = "regex"\npattern = "x"\n', "f")
    assert from_file[0].spent(spend) == sum(spend.values())


def test_calls_offered_before_an_evaluator_came_are_not_its_and_break_nothing(open_store, provider_url):
    """An evaluator added through the API with a `where` field the earlier offers did not carry:
    those calls are left to the evaluators that were there, the run goes on."""
    from tokentrace.jobs.evaluation_intake import Intake

    store = open_store()
    rule = parse_evaluators('[[evaluators]]\nname = "r"\nkind = "regex"\npattern = "x"\n', "f")
    intake = Intake(store, rule)
    intake.owed(NOW)  # the scan at start
    batch = normalize(_trace(1, GROUNDED, "v3", NOW), "default")
    intake.offer(tables(batch.rows).spans)
    tenant = parse_evaluators(
        '[[evaluators]]\nname = "t"\nkind = "regex"\npattern = "x"\nwhere = { tenant_id = "acme" }\n', "f"
    )
    intake.use(rule + tenant)
    assert [(i["evaluator"], i["span_id"]) for i in intake.owed(NOW)] == [("r", f"{1:08x}00000002")]


def test_an_evaluator_added_after_the_start_grades_from_then_on(open_store, provider_url):
    """A server started without evaluators: one added through the API later grades the calls
    written from then on, not the ones before it (no catch-up scan: nothing was owed)."""
    store = open_store()
    job = Evaluations(store, (), judge=JudgeEndpoint(f"{provider_url}/v1", "gpt-4o-mini"))
    _write(store, _trace(1, GROUNDED, "v3", NOW - timedelta(minutes=2)))
    assert job.run_once(NOW).queued == 0
    rule = {"name": "no-voucher", "kind": "regex", "pattern": "voucher", "must_match": False}
    store.put_evaluator("default", "no-voucher", orjson.dumps(rule).decode())
    batch = normalize(_trace(2, GROUNDED, "v3", NOW), "default")
    written = tables(batch.rows, batch.content)
    store.write_batch(written, None)
    job.offer(written.spans)
    done = job.run_once(NOW + timedelta(seconds=5))
    assert (done.queued, done.scored) == (0, 0)  # the intake had no evaluator when it was offered
    job.offer(written.spans)  # (as the writer would for a write after the evaluator came)
    done = job.run_once(NOW + timedelta(seconds=10))
    assert (done.queued, done.scored) == (1, 1)
    assert records(store.scores("default", f"{1:032x}")) == []
