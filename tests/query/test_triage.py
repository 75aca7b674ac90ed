"""Triage over each real store: each planted change is the first cause, with its evidence."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import pytest

from tests.builders.planted import BASELINE, UNTIL, WINDOW, agent_run, call, new_trace, store_with, traffic
from tokentrace.canonical import input_bucket
from tokentrace.ingest.raw import RawSpan
from tokentrace.query.records import records
from tokentrace.query.triage import triage
from tokentrace.query.triage.mechanisms import mechanisms
from tokentrace.query.triage.periods import calls_between, period_of
from tokentrace.store.sampling import SamplingPolicy


def _run(open_store, window: list[RawSpan], baseline_changes: dict | None = None) -> dict:
    before = traffic(UNTIL - WINDOW - BASELINE, 60, 6, **(baseline_changes or {}))
    return triage(store_with(open_store(), before, window), "default", WINDOW, BASELINE, UNTIL)


def _window(**changes) -> list[RawSpan]:
    return traffic(UNTIL - WINDOW, 10, 6, **changes)


def test_the_same_traffic_has_no_cause(open_store):
    result = _run(open_store, _window())
    assert result.causes == [] and result.latency.causes == [] and result.errors.causes == []
    assert result.window.requests == 60 and result.baseline.requests == 360
    assert result.window.cost_per_hour == pytest.approx(result.baseline.cost_per_hour, rel=0.01)


def test_a_new_prompt_version_that_doubles_the_prompt_ranks_first(open_store):
    result = _run(open_store, _window(**{"refund-chat": {"version": "v2", "input_tokens": 2000}}))
    first = result.causes[0]
    assert (first.dimension, first.value, first.filters) == (
        "prompt_version",
        "v2",
        {"feature": "refund-chat"},
    )
    assert first.metric == "input_tokens_per_call"
    assert (first.before, first.after) == (1000, 2000)
    assert "v1→v2" in first.evidence and first.contribution > 0
    assert len(first.example_trace_ids) == 3
    version_mix = next(c for c in result.checks if c.step == "prompt_version mix")
    assert version_mix.biggest_mover.value in ("v1", "v2") and version_mix.shift > 0.5


def test_a_cheaper_prompt_version_is_named_by_what_it_changed_not_as_its_predecessor_gone(open_store):
    """v1 leaves as v2 takes its calls: the drop in cost is v2's shorter prompt, not "v1: requests
    per hour 240→0" (a version rolled out is no fall in traffic)."""
    result = _run(open_store, _window(**{"refund-chat": {"version": "v2", "input_tokens": 600}}))
    first = result.causes[0]
    assert first.metric == "input_tokens_per_call" and (first.before, first.after) == (1000, 600)
    assert "refund-chat" in (first.value, first.filters.get("feature")) and first.contribution < 0
    assert not any(c.mechanism == "traffic" for c in result.causes)


def test_a_new_user_looping_in_one_tenant_ranks_first(open_store):
    loop = [
        call(UNTIL - WINDOW + timedelta(seconds=5 * n), user="script-bot", tenant="globex")
        for n in range(100)
    ]
    result = _run(open_store, _window() + loop)
    first = result.causes[0]
    assert (first.dimension, first.value, first.filters) == (
        "user_id",
        "script-bot",
        {"tenant_id": "globex"},
    )
    assert first.mechanism == "traffic" and first.before == 0 and first.after == 600


def test_a_feature_moved_to_a_pricier_model_ranks_first(open_store):
    result = _run(open_store, _window(classify={"model": "gpt-4o"}))
    first = result.causes[0]
    assert (first.dimension, first.value, first.filters) == (
        "request_model",
        "gpt-4o",
        {"feature": "classify"},
    )
    assert first.metric == "cost_per_1k_tokens" and first.after > 10 * first.before
    assert "gpt-4o-mini→gpt-4o" in first.evidence


def test_a_feature_moved_to_a_reasoning_model_names_the_hidden_reasoning(open_store):
    """The labels stay five tokens; ~3,000 reasoning tokens a call are billed as output."""
    thinking = {
        "model": "o4-mini",
        "output_tokens": 3005,
        "extra": {"gen_ai.usage.reasoning.output_tokens": 3000},
    }
    result = _run(open_store, _window(classify=thinking))
    first = result.causes[0]
    assert (first.dimension, first.value, first.filters) == (
        "request_model",
        "o4-mini",
        {"feature": "classify"},
    )
    assert first.metric == "reasoning_tokens_per_call" and (first.before, first.after) == (0, 3000)
    assert "gpt-4o-mini→o4-mini: output tokens per call 5→3,005" in first.evidence
    assert "of them hidden reasoning 0→3,000" in first.evidence


def test_longer_answers_are_no_reasoning(open_store):
    result = _run(open_store, _window(**{"refund-chat": {"version": "v2", "output_tokens": 900}}))
    first = result.causes[0]
    assert first.metric == "output_tokens_per_call" and (first.before, first.after) == (100, 900)
    assert "reasoning" not in first.evidence


def test_a_feature_moved_to_the_priority_tier_names_the_tier(open_store):
    """The same tokens at OpenAI's priority price: the price is the cause, and the tier its why."""
    priority = {"extra": {"openai.response.service_tier": "priority"}}
    first = _run(open_store, _window(**{"refund-chat": priority})).causes[0]
    assert (first.dimension, first.value, first.metric) == ("feature", "refund-chat", "cost_per_1k_tokens")
    assert first.after > 1.5 * first.before
    assert "feature refund-chat, service tier default→priority: cost per 1k tokens" in first.evidence


def _released(spans: list[RawSpan], version: str) -> list[RawSpan]:
    return [
        dataclasses.replace(s, resource={"service.name": "support-bot", "service.version": version})
        for s in spans
    ]


def test_a_change_that_came_with_a_deploy_names_the_release(open_store):
    """Answers three times longer once 1.9 is out: the cause says since which release. A new
    user's traffic after a deploy is no deploy's doing and says none."""

    def baseline() -> list[RawSpan]:  # (normalizing takes a span's attributes: one list a store)
        return _released(traffic(UNTIL - WINDOW - BASELINE, 60, 6), "1.8")

    longer = _released(_window(**{"refund-chat": {"output_tokens": 300}}), "1.9")
    first = triage(store_with(open_store(), baseline(), longer), "default", WINDOW, BASELINE, UNTIL).causes[0]
    assert first.value == "refund-chat" and first.metric == "output_tokens_per_call"
    assert first.evidence.endswith(
        "output tokens per call 100→300 (+200%, +$0.4800/h), since support-bot 1.8→1.9"
    )
    bot = [
        call(UNTIL - WINDOW + timedelta(seconds=5 * n), user="script-bot", tenant="globex")
        for n in range(100)
    ]
    looping = _released(_window() + bot, "1.9")
    first = triage(store_with(open_store(), baseline(), looping), "default", WINDOW, BASELINE, UNTIL).causes[
        0
    ]
    assert first.value == "script-bot" and first.mechanism == "traffic" and "since" not in first.evidence


@pytest.mark.parametrize("bot_feature", ["export", "refund-chat"])
def test_a_change_spread_over_a_feature_is_the_features_beside_a_bigger_cause(open_store, bot_feature):
    """A script's loop outweighs the answers refund-chat now makes three times longer for every
    tenant: the second cause is the feature's, not its biggest tenant's (acme holds 2/3 of it);
    where the script calls refund-chat too, the feature's cause is measured without its calls."""
    at = [UNTIL - WINDOW + timedelta(seconds=5 * n) for n in range(100)]
    bot = [call(t, user="script-bot", tenant="globex", feature=bot_feature) for t in at]
    causes = _run(open_store, _window(**{"refund-chat": {"output_tokens": 300}}) + bot).causes
    assert (causes[0].value, causes[0].mechanism) == ("script-bot", "traffic")
    longer = causes[1]
    assert (longer.dimension, longer.value, longer.filters) == ("feature", "refund-chat", {})
    assert longer.metric == "output_tokens_per_call" and (longer.before, longer.after) == (100, 300)
    assert longer.contribution == pytest.approx(0.48)  # 240 calls an hour, 200 tokens more at $10/M
    besides = ", besides user script-bot (tenant globex): " if bot_feature == "refund-chat" else ": "
    assert longer.evidence.startswith(f"feature refund-chat{besides}output tokens per call 100→300")


def test_causes_of_a_fall_count_each_call_once(open_store):
    """A script calling refund-chat stopped, and the feature's answers shrank 3x: the feature's
    cause is measured without the script's calls (which the baseline alone holds), so the causes
    add up to the fall instead of charging the feature with the script's calls again."""
    start = UNTIL - WINDOW - BASELINE
    bot = [call(start + timedelta(seconds=4.5 * n), user="script-bot", tenant="initech") for n in range(800)]
    before = traffic(start, 60, 6, **{"refund-chat": {"output_tokens": 300}}) + bot
    result = triage(store_with(open_store(), before, _window()), "default", WINDOW, BASELINE, UNTIL)
    stopped, shorter = result.causes
    assert stopped.mechanism == "traffic" and (stopped.before, stopped.after) == (800, 0)
    assert (shorter.value, shorter.metric) == ("refund-chat", "output_tokens_per_call")
    assert (shorter.before, shorter.after) == (300, 100) and "besides" in shorter.evidence
    change = result.window.cost_per_hour - result.baseline.cost_per_hour
    assert stopped.contribution + shorter.contribution == pytest.approx(change, rel=0.01)


def test_a_lost_prompt_cache_ranks_first(open_store):
    result = _run(
        open_store, _window(), baseline_changes={"refund-chat": {"cached": 900}}
    )  # the baseline read 90% of every refund prompt from the cache; the window reads none
    first = result.causes[0]
    assert (first.dimension, first.value) == ("feature", "refund-chat")
    assert first.metric == "cache_hit_rate"
    assert first.before == pytest.approx(0.9) and first.after == 0


def test_a_retry_storm_after_rate_limits_ranks_first(open_store):
    # Each refund request now fails twice on 429s and resends a longer conversation.
    storm = []
    for n in range(40):
        trace = new_trace()
        at = UNTIL - WINDOW + timedelta(seconds=5 + 14 * n)
        who = {"user": f"u{n % 6}", "tenant": "acme" if n % 6 < 4 else "globex", "trace": trace}
        storm += [call(at - timedelta(seconds=k), error="rate_limit", duration_ms=50, **who) for k in (2, 1)]
        storm.append(call(at, input_tokens=1600, **who))
    window = [s for s in _window() if s.attributes["tokentrace.feature"] != "refund-chat"] + storm
    result = _run(open_store, window)
    first = result.causes[0]
    assert (first.dimension, first.value) == ("error_type", "rate_limit")
    assert first.filters["feature"] == "refund-chat"
    assert first.metric == "llm_calls_per_request" and (first.before, first.after) == (1, 3)
    assert "retries" in first.evidence
    # The feature, the model, the attempts per request and the 429s, in one line.
    assert first.evidence.startswith(
        "feature refund-chat: LLM calls per request (attempts) 1.0→3.0 on gpt-4o"
    )
    assert "rate_limit errors (429) 0%→67% of calls" in first.evidence
    calls_per_request = next(c for c in result.checks if c.step == "LLM calls per request")
    assert calls_per_request.after > calls_per_request.before


def test_a_slow_feature_is_the_first_latency_cause(open_store):
    result = _run(open_store, _window(classify={"duration_ms": 6000}))
    assert result.latency.after_p95_ms == 6000 and result.latency.before_p95_ms == 1000
    first = result.latency.causes[0]
    assert (first.dimension, first.value) in {("feature", "classify"), ("request_model", "gpt-4o-mini")}
    assert (first.before, first.after) == (1000, 6000)
    assert first.unit == "ms" and first.contribution > 0


def test_calls_that_now_fail_past_the_context_window_are_the_first_error_cause(open_store):
    """The classifier's prompts outgrow its model's window: half its calls fail with a 400 and
    carry no usage. Cost does not rise, so no cost cause names it; the error causes do, with the
    type, and the baseline's scattered rate limits (a steady 1 in 30) are no cause."""
    window, classified = [], 0
    for span in _window():
        if span.attributes["tokentrace.feature"] == "classify":
            classified += 1
            if classified % 4 < 2:  # the first of one minute's two, the second of the next
                at = datetime.fromtimestamp(span.start_unix_nano / 1e9, UTC)
                user, tenant = span.attributes["user.id"], span.attributes["tenant.id"]
                span = call(
                    at,
                    feature="classify",
                    model="gpt-4o-mini",
                    user=user,
                    tenant=tenant,
                    error="context_length",
                )
        window.append(span)
    start = UNTIL - WINDOW - BASELINE
    steady = [call(start + timedelta(minutes=5 * n), error="rate_limit") for n in range(12)]
    before = traffic(start, 60, 6) + steady
    result = triage(store_with(open_store(), before, window), "default", WINDOW, BASELINE, UNTIL)
    assert result.errors.after_rate > 4 * result.errors.before_rate
    first = result.errors.causes[0]
    assert (first.dimension, first.value) in {("feature", "classify"), ("request_model", "gpt-4o-mini")}
    assert first.metric == "error_rate" and first.before == 0 and first.after == pytest.approx(0.5, abs=0.1)
    assert "context_length (400) 10" in first.evidence and "rate_limit" not in first.evidence
    assert first.contribution > 0 and len(first.example_trace_ids) == 3
    assert not any(c.value == "classify" or c.filters.get("feature") == "classify" for c in result.causes)
    assert len(result.errors.causes) == 1


def test_a_feature_that_stopped_failing_is_an_error_cause_of_the_fall(open_store):
    """The baseline's classifier failed one call in two; the window's does not fail: the fall in
    failed calls is named by the classifier, its baseline errors by type, a negative share."""
    before, classified = [], 0
    for span in traffic(UNTIL - WINDOW - BASELINE, 60, 6):
        if span.attributes["tokentrace.feature"] == "classify":
            classified += 1
            if classified % 4 < 2:  # the first of one minute's two, the second of the next
                at = datetime.fromtimestamp(span.start_unix_nano / 1e9, UTC)
                who = {"user": span.attributes["user.id"], "tenant": span.attributes["tenant.id"]}
                span = call(at, feature="classify", model="gpt-4o-mini", error="server_error", **who)
        before.append(span)
    result = triage(store_with(open_store(), before, _window()), "default", WINDOW, BASELINE, UNTIL)
    assert result.errors.after_rate == 0 and result.errors.before_rate > 0.1
    first = result.errors.causes[0]
    assert "classify" in (first.value, first.filters.get("feature"))
    assert first.after == 0 and first.before > 0.3 and first.contribution < 0
    assert "server_error (5xx)" in first.evidence and first.example_trace_ids


def test_an_agent_looping_shows_in_its_turns_per_run_and_names_the_run(open_store):
    """The planner took 4 turns a run before; in the window one run takes 31 (get_weather 12 times
    with the same arguments): its turns per run rise, and the looping run is named. The queries it
    embeds for retrieval are calls, not turns."""
    before = [
        s
        for n in range(12)
        for s in agent_run(UNTIL - WINDOW - BASELINE + timedelta(minutes=5 * n), embeddings=2)
    ]
    looping = agent_run(UNTIL - WINDOW + timedelta(minutes=2), turns=31, tool_runs=12)
    window = [s for n in range(3) for s in agent_run(UNTIL - WINDOW + timedelta(minutes=5 + n))] + looping
    result = triage(store_with(open_store(), before, window), "default", WINDOW, BASELINE, UNTIL)
    steps = {c.step: c for c in result.checks}
    turns = steps["turns per run (planner)"]
    assert (turns.before, turns.after) == (4, pytest.approx((3 * 4 + 31) / 4))
    [loop] = steps["agent loops"].runs
    assert (loop["agent"], loop["trace_id"], loop["turns"], loop["usual"]) == (
        "planner",
        looping[0].trace_id,
        31,
        4,
    )
    assert (loop["tool"], loop["tool_runs"], loop["same_arguments"]) == ("get_weather", 12, True)
    assert "get_weather ran 12 times with the same arguments" in loop["text"]


@pytest.mark.parametrize(("tool_runs", "loops"), [(3, False), (6, True)])
def test_a_tool_run_recorded_twice_by_nested_instrumentations_counts_once(open_store, tool_runs, loops):
    """Traceloop's MCP instrumentation records each tool run again inside the Agents SDK's span:
    3 runs seen as 6 spans are no loop; 6 runs are, and are said as 6."""
    before = [s for n in range(12) for s in agent_run(UNTIL - WINDOW - BASELINE + timedelta(minutes=5 * n))]
    run = agent_run(UNTIL - WINDOW + timedelta(minutes=2), tool_runs=tool_runs, seen_twice=True)
    result = triage(store_with(open_store(), before, run), "default", WINDOW, BASELINE, UNTIL)
    loops_step = next((c for c in result.checks if c.step == "agent loops"), None)
    found = loops_step.runs if loops_step else []
    assert [(r["tool"], r["tool_runs"]) for r in found] == ([("get_weather", tool_runs)] if loops else [])


@pytest.mark.parametrize(
    ("tokens", "bucket"), [(None, None), (10, "<1k"), (1000, "1k-4k"), (5000, "4k-16k"), (20000, ">16k")]
)
def test_input_length_buckets(tokens, bucket):
    assert input_bucket(tokens) == bucket


def _runaway_session(
    user: str, tenant: str, session: str, requests: int = 12, turns: int = 20
) -> list[RawSpan]:
    """An agent session that loops: `requests` requests of `turns` calls each, every call resending
    the conversation so far (inputs grow by 200 tokens a call, from 2,000 past 16k)."""
    spans = []
    for r in range(requests):
        trace = new_trace()
        for k in range(turns):
            n = r * turns + k
            at = UNTIL - WINDOW + timedelta(seconds=2 * n)
            who = {"user": user, "tenant": tenant, "extra": {"session.id": session}}
            spans.append(call(at, trace=trace, input_tokens=2000 + 200 * n, **who))
    return spans


def test_a_runaway_agent_session_names_its_user_session_and_growing_inputs(open_store):
    """u2 (acme) resumes session s-77 from the baseline and its agent loops: 240 calls whose
    inputs grow past 16k. The session is the cause, said with its user and tenant; the input
    bucket >16k, which holds the same calls, is not named beside it."""
    before = traffic(UNTIL - WINDOW - BASELINE, 60, 6)
    for span in before:
        if span.attributes["user.id"] == "u2":
            span.attributes["session.id"] = "s-77"
    window = _window() + _runaway_session("u2", "acme", "s-77")
    result = triage(store_with(open_store(), before, window), "default", WINDOW, BASELINE, UNTIL)
    first = result.causes[0]
    assert (first.dimension, first.value, first.mechanism) == ("session_id", "s-77", "session")
    assert first.filters == {"tenant_id": "acme", "user_id": "u2"}
    assert (first.before, first.after) == (60, 240)  # u2's calls in s-77: the baseline's, the window's
    assert first.evidence.startswith("user u2 (tenant acme): 240 LLM calls in session s-77 (12 requests")
    assert "inputs growing 2,000→49,800 tokens (past 16k)" in first.evidence
    assert len(first.example_trace_ids) == 3
    assert "input_bucket" not in {cause.dimension for cause in result.causes}


def test_long_inputs_from_no_one_in_particular_are_named_by_their_bucket(open_store):
    """One call in three of every feature, user and tenant now carries a 20k-token input (a
    retrieval change under both features, on the same model): no actor or configuration holds
    the change, the bucket does, and it is named."""
    on_4o = {"classify": {"model": "gpt-4o"}}
    window = traffic(UNTIL - WINDOW, 10, 6, **on_4o)
    for feature in ("refund-chat", "classify"):
        calls = [span for span in window if span.attributes["tokentrace.feature"] == feature]
        for span in calls[::3]:  # every user and tenant in turn
            span.attributes["gen_ai.usage.input_tokens"] = 20000
    result = _run(open_store, window, baseline_changes=on_4o)
    named = [(c.dimension, c.value) for c in result.causes]
    assert named[0] == ("input_bucket", ">16k")
    assert not {d for d, _ in named} & {"user_id", "tenant_id", "session_id"}


def test_two_incidents_at_once_are_both_named(open_store):
    """refund-chat shipped a v2 that doubles its prompt and, meanwhile, a script in globex loops
    on v1: two causes, each with its own slice, not two mechanisms of the larger one."""
    loop = [
        call(UNTIL - WINDOW + timedelta(seconds=15 * n), user="script-bot", tenant="globex")
        for n in range(40)
    ]
    result = _run(open_store, _window(**{"refund-chat": {"version": "v2", "input_tokens": 2000}}) + loop)
    named = [(c.dimension, c.value, c.filters) for c in result.causes]
    assert ("user_id", "script-bot", {"tenant_id": "globex"}) in named
    assert ("prompt_version", "v2", {"feature": "refund-chat"}) in named
    assert len(result.causes) <= 6


def _lookups(start: datetime, minutes: int, storm: bool = False) -> list[RawSpan]:
    """A lookup feature on gpt-4o, six requests a minute; in a storm each fails twice on 429s
    before it goes through with a longer input."""
    spans = []
    for n in range(6 * minutes):
        at, who = start + timedelta(seconds=10 * n + 7), {"feature": "lookup", "trace": new_trace()}
        if storm:
            spans += [
                call(at - timedelta(seconds=k), error="rate_limit", duration_ms=50, **who) for k in (2, 1)
            ]
        spans.append(call(at, input_tokens=1600 if storm else 400, **who))
    return spans


def test_three_incidents_at_once_name_who_and_what_before_any_bucket(open_store):
    """In one window refund-chat ships a v2 that doubles its prompt, a script in globex loops on
    v1, and lookup's requests each fail twice on 429s: the version, the user and the storm are
    each named, by what they are, and no input-length bucket stands before them."""
    before = traffic(UNTIL - WINDOW - BASELINE, 60, 6) + _lookups(UNTIL - WINDOW - BASELINE, 60)
    loop = [
        call(UNTIL - WINDOW + timedelta(seconds=6 * n), user="script-bot", tenant="globex")
        for n in range(100)
    ]
    window = (
        _window(**{"refund-chat": {"version": "v2", "input_tokens": 2000}})
        + loop
        + _lookups(UNTIL - WINDOW, 10, storm=True)
    )
    result = triage(store_with(open_store(), before, window), "default", WINDOW, BASELINE, UNTIL)
    named = [
        (c.dimension, c.value, c.filters.get("feature"), c.filters.get("tenant_id")) for c in result.causes
    ]
    assert ("user_id", "script-bot", None, "globex") in named
    assert ("prompt_version", "v2", "refund-chat", None) in named
    assert ("error_type", "rate_limit", "lookup", None) in named
    first_bucket = next((i for i, c in enumerate(result.causes) if c.dimension == "input_bucket"), len(named))
    assert first_bucket >= 3, named


def test_a_user_whose_calls_come_and_go_is_no_cause(open_store):
    """u9 (globex) sends bursts of ten calls in some ten-minute spans of the baseline and none in
    others; none in the window is what the baseline shows, so the drop in cost has no cause. The
    same user sending 60 calls in the window is one."""

    def bursts(start, spans: list[int]) -> list[RawSpan]:
        return [
            call(start + timedelta(minutes=10 * span, seconds=20 * n), user="u9", tenant="globex")
            for span in spans
            for n in range(10)
        ]

    def baseline() -> list[RawSpan]:  # afresh for each store: normalize consumes what it reads
        return traffic(UNTIL - WINDOW - BASELINE, 60, 6) + bursts(UNTIL - WINDOW - BASELINE, [0, 2, 3])

    quiet = triage(store_with(open_store(), baseline(), _window()), "default", WINDOW, BASELINE, UNTIL)
    assert quiet.window.cost_per_hour < quiet.baseline.cost_per_hour  # the drop is there
    assert quiet.causes == []
    busy = _window() + [
        call(UNTIL - WINDOW + timedelta(seconds=10 * n), user="u9", tenant="globex") for n in range(60)
    ]
    loud = triage(store_with(open_store(), baseline(), busy), "default", WINDOW, BASELINE, UNTIL)
    assert (loud.causes[0].dimension, loud.causes[0].value) == ("user_id", "u9")


def _without_examples(result) -> dict:
    found = asdict(result)
    for cause in (*found["causes"], *found["latency"]["causes"]):
        cause.pop("example_trace_ids")
    return found


def _sampled(store, policy: SamplingPolicy) -> set[str]:
    """Tail sampling applied to every trace of the store (all older than `recent`); the kept."""
    now = datetime.now(UTC)
    store.advance_rollups(now - timedelta(minutes=2))
    verdicts = records(store.apply_sampling("default", policy, now))
    kept = {v["trace_id"] for v in verdicts if v["kept_because"]}
    assert len(verdicts) > 400 and len(kept) < 0.25 * len(verdicts)  # most traces lost their spans
    return kept


def _spread(spans: list[RawSpan]) -> list[RawSpan]:
    """The spans with trace ids spread over their range as real ones are (the planted ids are
    counters, all of which a base rate keeps by their low bits)."""
    return [dataclasses.replace(s, trace_id=_spread_id(s.trace_id)) for s in spans]


def _spread_id(trace_id: str) -> str:
    return hashlib.sha256(trace_id.encode()).hexdigest()[:32]


#: A tenth of the traces by trace id, and the failed ones.
_TENTH = SamplingPolicy(base_rate=0.1, keep_slower_than_percentile=None)


def test_a_store_sampled_to_a_tenth_finds_the_same_causes(open_store):
    """A prompt version that doubles the prompt and a script looping in one tenant, then tail
    sampling drops nine traces in ten: triage finds the same causes, checks and numbers (the
    store keeps the dropped traces' calls), and shows example traces whose spans are stored."""
    loop = [
        call(UNTIL - WINDOW + timedelta(seconds=5 * n), user="script-bot", tenant="globex")
        for n in range(100)
    ]
    window = _window(**{"refund-chat": {"version": "v2", "input_tokens": 2000}}) + loop
    store = store_with(open_store(), _spread(traffic(UNTIL - WINDOW - BASELINE, 60, 6)), _spread(window))
    whole = triage(store, "default", WINDOW, BASELINE, UNTIL)
    assert {(c.dimension, c.value) for c in whole.causes} == {
        ("tenant_id", "globex"),
        ("prompt_version", "v2"),
    }

    kept = _sampled(store, _TENTH)
    sampled = triage(store, "default", WINDOW, BASELINE, UNTIL)
    assert _without_examples(sampled) == _without_examples(whole)
    for cause in sampled.causes:
        assert cause.example_trace_ids and cause.example_trace_ids[0] in kept


def test_a_retry_storm_reads_the_same_after_sampling(open_store):
    storm, storm_traces = [], set()
    for n in range(40):
        trace = new_trace()
        storm_traces.add(_spread_id(trace))
        at = UNTIL - WINDOW + timedelta(seconds=5 + 14 * n)
        who = {"user": f"u{n % 6}", "tenant": "acme" if n % 6 < 4 else "globex", "trace": trace}
        storm += [call(at - timedelta(seconds=k), error="rate_limit", duration_ms=50, **who) for k in (2, 1)]
        storm.append(call(at, input_tokens=1600, **who))
    window = [s for s in _window() if s.attributes["tokentrace.feature"] != "refund-chat"] + storm
    store = store_with(open_store(), _spread(traffic(UNTIL - WINDOW - BASELINE, 60, 6)), _spread(window))
    whole = triage(store, "default", WINDOW, BASELINE, UNTIL)
    assert whole.causes[0].value == "rate_limit"

    kept = _sampled(store, _TENTH)
    assert kept >= storm_traces  # their failed calls keep them
    sampled = triage(store, "default", WINDOW, BASELINE, UNTIL)
    assert _without_examples(sampled) == _without_examples(whole)
    assert set(sampled.causes[0].example_trace_ids) <= storm_traces


def test_a_resend_is_weighed_against_a_first_try_of_its_own_model(open_store):
    """Every gpt-4o-mini request in the window fails once and resends a longer conversation, so
    the window has no mini first try to compare with: the baseline's is used. The models come
    in the other order in the window (gpt-4o's calls first), and the baseline's mini is still
    mini (kinds were numbered per period, so a mini resend was weighed against gpt-4o's first
    try, which costs more: the retries vanished)."""
    start = UNTIL - WINDOW - BASELINE
    before = [
        call(
            start + timedelta(seconds=10 * n + (0 if n % 2 else 5)),
            model="gpt-4o" if n % 2 else "gpt-4o-mini",
        )
        for n in range(120)
    ]
    window = [call(UNTIL - WINDOW + timedelta(seconds=1), model="gpt-4o")]
    for n in range(30):
        trace = new_trace()
        at = UNTIL - WINDOW + timedelta(seconds=10 + 10 * n)
        window += [
            call(at, model="gpt-4o-mini", trace=trace, error="rate_limit", duration_ms=50),
            call(at + timedelta(seconds=1), model="gpt-4o-mini", trace=trace, input_tokens=1500),
            call(at + timedelta(seconds=2), model="gpt-4o"),
        ]
    store = store_with(open_store(), before, window)
    then = period_of(calls_between(store, "default", start, UNTIL - WINDOW), start, UNTIL - WINDOW, None)
    now = period_of(calls_between(store, "default", UNTIL - WINDOW, UNTIL), UNTIL - WINDOW, UNTIL, None)
    mini = (("request_model", "gpt-4o-mini"),)
    split = mechanisms(then, now, now.of(mini), then.of(mini))
    # At most what the 30 resends cost beyond 30 of the baseline's mini first tries, per hour.
    extra = now.rate(now.of(mini).cost - 30 * then.of(mini).cost / 60)
    assert 0 < split["retries"] <= extra * (1 + 1e-9)


def test_a_slice_holding_every_call_is_no_cause(open_store):
    """Every call got slower (the one provider, the one service): what holds every call says no
    more than the p95 itself, so the causes are the features, as slow as each became."""
    result = _run(
        open_store, _window(**{"refund-chat": {"duration_ms": 1500}, "classify": {"duration_ms": 6000}})
    )
    assert result.latency.after_p95_ms > result.latency.before_p95_ms
    named = [(c.dimension, c.value) for c in result.latency.causes]
    everyone = ("provider", "service_name", "prompt_version")  # openai, support-bot, v1: every call
    assert named and all(dimension not in everyone for dimension, _ in named)
    assert named[0][0] in ("feature", "prompt_template", "request_model")
