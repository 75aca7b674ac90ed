"""Evaluators (issue 30, first part): the evaluators file, rule verdicts, and an LLM judge served
by the simulated provider over HTTP (its verdicts are deterministic word overlaps), with every way
a judge's answer can fail to be a verdict said clearly."""

from __future__ import annotations

import re

import httpx
import pyarrow as pa
import pytest

from tokentrace.evals.config import EvaluatorsError, load_evaluators, parse_evaluators
from tokentrace.evals.judge import (
    JudgeEndpoint,
    JudgeError,
    JudgeUnavailable,
    ask,
    parse_verdict,
    retry_after,
)
from tokentrace.evals.rules import regex_verdict, schema_verdict
from tokentrace.evals.templates import BUILT_IN, render
from tokentrace.evals.verdict import score_row

FILE = """
[judge]
url = "http://127.0.0.1:9/v1"
model = "gpt-4o-mini"

[[evaluators]]
name = "groundedness"
kind = "llm_judge"
template = "groundedness"
version = "2"
where = { feature = "refund-chat", prompt_version = "v4" }
sample_rate = 0.5
rate_limit_per_minute = 60
daily_budget_usd = 2.5

[[evaluators]]
name = "order-id"
kind = "regex"
pattern = 'ORD-\\d+'

[[evaluators]]
name = "answer-json"
kind = "json_schema"
schema = { type = "object", required = ["answer"], properties = { answer = { type = "string" } } }
"""
CONTEXT = "Refunds are paid within five business days to the original card."


def test_the_evaluators_file_names_what_grades_which_calls():
    grounded, order, answer = parse_evaluators(FILE, "evals.toml")
    assert (grounded.kind, grounded.version, grounded.sample_rate, grounded.daily_budget_usd) == (
        "llm_judge", "2", 0.5, 2.5
    )  # fmt: skip
    assert grounded.judge.model == "gpt-4o-mini" and grounded.template is BUILT_IN["groundedness"]
    call = {"operation": "chat", "feature": "refund-chat", "prompt_version": "v4", "session_id": None}

    def calls(*rows: dict) -> pa.Table:
        return pa.Table.from_pylist([{**call, **row} for row in rows])

    many = calls(*({"trace_id": f"{n:032x}"} for n in range(400)))
    chosen = grounded.chosen(many)["trace_id"].to_pylist()
    assert 150 < len(chosen) < 250  # half, by trace id
    assert chosen == grounded.chosen(many)["trace_id"].to_pylist()  # the same each time
    other = calls(
        {"prompt_version": "v3", "trace_id": "0" * 32}, {"operation": "embeddings", "trace_id": "0" * 32}
    )
    assert grounded.chosen(other).num_rows == 0
    assert order.chosen(calls({"trace_id": "1" * 32})).num_rows == 1 and order.pattern.pattern == r"ORD-\d+"
    assert answer.schema is not None


E = '[[evaluators]]\nname = "x"\n'  # an evaluator's first two lines
J = 'judge = { url = "http://j/v1", model = "m" }\n'


@pytest.mark.parametrize(
    "text,said",
    [
        (E + 'kind = "llm"\n', "evals.toml, line 3: evaluators[0]: kind must be one of"),
        (E + 'kind = "regex"\npatern = "a"\n', "line 4: evaluators[0]: unknown key 'patern'"),
        (E + 'kind = "regex"\npattern = "("\n', "line 4: evaluators[0]: pattern is not a regular"),
        (E + 'kind = "llm_judge"\ntemplate = "groundedness"\n', "needs a judge"),
        (
            E + 'kind = "llm_judge"\ntemplate = "vibes"\n' + J,
            "line 4: evaluators[0]: template must be one of",
        ),
        (
            E + 'kind = "regex"\npattern = "a"\nsample_rate = 2\n',
            "line 5: evaluators[0]: sample_rate must be",
        ),
        (  # nan compares false to both bounds: it would have sampled nothing, silently
            E + 'kind = "regex"\npattern = "a"\nsample_rate = nan\n',
            "line 5: evaluators[0]: sample_rate must be a number from 0 to 1, got nan",
        ),
        (
            E + 'kind = "regex"\npattern = "a"\ndaily_budget_usd = inf\n',
            "line 5: evaluators[0]: daily_budget_usd must be a number at least 0, got inf",
        ),
        (E + 'kind = "regex"\npattern = "a"\nwhere = { colour = "red" }\n', "'colour' is not a field"),
        (
            E + 'kind = "json_schema"\nschema = { type = "nope" }\n',
            "line 4: evaluators[0]: schema is not a valid",
        ),
        ('[judge]\nurl = "ftp://x"\nmodel = "m"\n', "evals.toml, line 2: the judge needs an http(s) url"),
        (
            '[judge]\nurl = "http://x"\nmodel = "m"\napi_key_env = "TT_TEST_NO_KEY"\n',
            "line 4: TT_TEST_NO_KEY is not set",
        ),
        ('[judge]\nurl = "http://x"\nmodel = "m"\nheaders = { x = 1 }\n', "line 4: headers must be a table"),
        # nan and inf: a bare OverflowError at load, or a timeout httpx refuses on every call
        ('[judge]\nurl = "http://x"\nmodel = "m"\nmax_tokens = inf\n', "line 4: max_tokens must be a number"),
        ('[judge]\nurl = "http://x"\nmodel = "m"\nmax_tokens = 2.5\n', "line 4: max_tokens must be a whole"),
        ('[judge]\nurl = "http://x"\nmodel = "m"\ntimeout_s = nan\n', "line 4: timeout_s must be a number"),
        ('[judge]\nurl = "http://x"\nmodel = "m"\ntimeout_s = "5"\n', "line 4: timeout_s must be a number"),
        ('[[evaluator]]\nname = "x"\n', "evals.toml, line 1: unknown table 'evaluator'"),
        (
            (E + 'kind = "regex"\npattern = "a"\n') * 2,
            "line 6: evaluators[1]: an evaluator named 'x' is already",
        ),
        ("[[evaluators]\n", "evals.toml: "),
    ],
)
def test_a_bad_evaluators_file_is_refused_with_its_file_and_line(text, said):
    with pytest.raises(EvaluatorsError, match=re.escape(said)):
        parse_evaluators(text, "evals.toml")


def test_an_unreadable_file_is_said(tmp_path):
    with pytest.raises(EvaluatorsError, match="No such file"):
        load_evaluators(tmp_path / "missing.toml")


def test_rule_verdicts():
    order = parse_evaluators(FILE, "f")[1]
    assert regex_verdict(order.pattern, True, "Your order ORD-1234 is on its way").score == 1.0
    missing = regex_verdict(order.pattern, True, "Your order is on its way")
    assert (missing.score, missing.label) == (0.0, "fail")
    assert regex_verdict(order.pattern, False, "no id here").score == 1.0  # must not match
    schema = parse_evaluators(FILE, "f")[2].schema
    # the same file read again gives the same evaluators (the job compares them at each run)
    assert parse_evaluators(FILE, "f") == parse_evaluators(FILE, "f") and schema is not None
    assert schema_verdict(schema, '{"answer": "yes"}').score == 1.0
    wrong = schema_verdict(schema, '{"answer": 3}')
    assert (wrong.score, wrong.label) == (0.0, "schema_mismatch") and "answer" in wrong.explanation
    assert schema_verdict(schema, '{"answer": "cut sh').label == "invalid_json"


def test_a_verdict_is_a_score_replaced_not_added_when_evaluated_again():
    verdict = parse_verdict('{"score": 0.25, "label": "ungrounded", "explanation": "made up"}')
    queued = {
        "project_id": "default",
        "evaluator": "groundedness",
        "version": "2",
        "trace_id": "a" * 32,
        "span_id": "b" * 16,
    }
    row = score_row(queued, verdict, None)
    again = score_row(queued, verdict, None)
    assert row["score_id"] == again["score_id"] and row["source"] == "evaluator"
    assert (row["value"], row["string_value"], row["comment"]) == (0.25, "ungrounded", "made up")
    # a session's verdict is the session's (given at the trace of the call it was queued by): a
    # later verdict on the same session, queued by a later call, replaces it
    first = score_row(queued, verdict, None, session_id="s-1")
    later = score_row({**queued, "trace_id": "c" * 32, "span_id": "d" * 16}, verdict, None, "s-1")
    assert first["score_id"] == later["score_id"] != row["score_id"]
    assert (first["span_id"], first["session_id"], later["trace_id"]) == ("", "s-1", "c" * 32)


@pytest.mark.parametrize(
    "reply,said",
    [
        ("I think it is fine", "no JSON object"),
        ('{"score": 7}', "score must be a number from 0 to 1, got 7"),
        ('{"label": "good"}', "score must be a number from 0 to 1, got None"),
        ('{"score": 0.5,}', "not valid JSON"),
    ],
)
def test_a_reply_that_is_no_verdict_is_said(reply, said):
    with pytest.raises(JudgeError, match=said):
        parse_verdict(reply)
    assert parse_verdict('Sure! ```json\n{"score": true}\n```').score == 1.0


def test_the_judge_on_the_simulated_provider_grades_grounded_and_made_up_answers(provider_url):
    """The built-in templates sent to an OpenAI-compatible judge over HTTP: an answer taken from
    the context is grounded, one that is not is caught; a refusal and an off-topic answer too;
    the judge's usage comes back for its cost."""
    endpoint = JudgeEndpoint(f"{provider_url}/v1", "gpt-4o-mini")
    question = "When will my refund be paid?"
    grounded = "Refunds are paid within five business days to the original card."
    made_up = "Refunds arrive instantly as store credit plus a bonus voucher."
    with httpx.Client() as client:
        good = ask(
            client,
            endpoint,
            render(BUILT_IN["groundedness"], question=question, answer=grounded, context=CONTEXT),
        )
        bad = ask(
            client,
            endpoint,
            render(BUILT_IN["groundedness"], question=question, answer=made_up, context=CONTEXT),
        )
        refused = ask(
            client,
            endpoint,
            render(BUILT_IN["refusal"], question=question, answer="I'm sorry, but I can't help with that."),
        )
        relevant = ask(
            client,
            endpoint,
            render(BUILT_IN["relevance"], question=question, answer="Your refund will be paid soon."),
        )
        anthropic = JudgeEndpoint(provider_url, "claude-haiku-4-5", api="anthropic", api_key="sk-ant")
        claude = ask(
            client,
            anthropic,
            render(BUILT_IN["groundedness"], question=question, answer=made_up, context=CONTEXT),
        )
    assert (good.verdict.score, good.verdict.label) == (1.0, "grounded")
    assert bad.verdict.score < 0.4 and bad.verdict.label == "ungrounded"
    assert (refused.verdict.score, refused.verdict.label) == (0.0, "refused")
    assert relevant.verdict.score >= 0.5
    assert good.call.input_tokens > 0 and good.call.output_tokens > 0
    assert good.call.model.startswith("gpt-4o-mini")
    assert claude.verdict == bad.verdict and claude.call.input_tokens > 0


def test_a_judge_that_does_not_answer_is_worth_asking_again_and_one_that_refuses_is_not(provider_url):
    with httpx.Client() as client:
        with pytest.raises(JudgeUnavailable, match="cannot be reached"):
            ask(
                client,
                JudgeEndpoint("http://127.0.0.1:9/v1", "m", timeout_s=2),
                render(BUILT_IN["refusal"], question="q", answer="a"),
            )
        with pytest.raises(JudgeError, match="refused the request \\(404\\)"):
            ask(
                client,
                JudgeEndpoint(f"{provider_url}/nope", "m"),
                render(BUILT_IN["refusal"], question="q", answer="a"),
            )


@pytest.mark.parametrize(
    "headers,wait",
    [
        ({"retry-after-ms": "150", "retry-after": "0"}, 0.15),  # OpenAI's and Anthropic's, read first
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}, None),  # a date: the backoff decides
        ({}, None),
        ({"retry-after-ms": "nan", "retry-after": "3"}, 3.0),  # not a wait: the next header is read
        ({"retry-after": "inf"}, None),
    ],
)
def test_a_judge_that_asks_to_wait_is_waited_for_as_long_as_it_says(headers, wait):
    assert retry_after(httpx.Headers(headers)) == wait
