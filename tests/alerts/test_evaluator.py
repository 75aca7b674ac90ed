"""Alert rules over planted traffic in each real store, notifying a real HTTP receiver."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.builders.planted import BASELINE, UNTIL, WINDOW, agent_run, call, new_trace, store_with, traffic
from tests.builders.receiver import Receiver
from tokentrace.alerts import rules
from tokentrace.alerts.evaluator import Evaluator


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _rule_file(tmp_path, receiver: Receiver, body: str) -> rules.RuleFile:
    path = tmp_path / "alerts.toml"
    path.write_text(f'[[notifiers]]\nname = "hook"\ntype = "webhook"\nurl = "{receiver.url}"\n\n{body}')
    return rules.load(path)


def _steady() -> list:
    return traffic(UNTIL - WINDOW - BASELINE, 60, 6)


def _evaluate(tmp_path, open_store, receiver, body: str, window: list, *, now=UNTIL):
    store = store_with(open_store(), _steady(), window)
    evaluator = Evaluator(store, _rule_file(tmp_path, receiver, body))
    try:
        return evaluator.evaluate(now)
    finally:
        evaluator.stop()


SPEND = """
[[rules]]
name = "spend"
kind = "threshold"
metric = "cost_per_hour"
above = 1.5
window = "10m"
group_by = ["feature"]
notify = ["hook", "log"]
"""


def test_a_groups_notification_names_causes_inside_its_group(tmp_path, open_store, receiver):
    """Two features change at once: each one's alert explains its own change, not the other's."""
    window = traffic(
        UNTIL - WINDOW,
        10,
        6,
        **{"refund-chat": {"input_tokens": 4000}, "classify": {"model": "gpt-4o"}},
    )
    body = SPEND.replace("above = 1.5", "above = 0.05")
    fired = _evaluate(tmp_path, open_store, receiver, body, window)
    assert {e["payload"]["group"]["feature"] for e in fired} == {"refund-chat", "classify"}
    by_feature = {b["group"]["feature"]: b for b in receiver.of("spend")}
    classify = by_feature["classify"]["triage"]["causes"]
    assert classify and all("refund-chat" not in json.dumps(c) for c in classify)
    assert any(c["value"] == "gpt-4o" or "gpt-4o-mini→gpt-4o" in c["evidence"] for c in classify)
    refund = by_feature["refund-chat"]["triage"]["causes"]
    assert refund and all("classify" not in json.dumps(c) for c in refund)


def test_a_breach_fires_once_resolves_once_and_survives_a_restart(tmp_path, open_store, receiver):
    bigger = traffic(UNTIL - WINDOW, 10, 6, **{"refund-chat": {"input_tokens": 4000}})
    store = store_with(open_store(), _steady(), bigger)
    file = _rule_file(tmp_path, receiver, SPEND)
    evaluator = Evaluator(store, file)

    [fired, logged] = evaluator.evaluate(UNTIL)
    assert (fired["status"], logged["payload"]["notifier"]) == ("firing", "log")
    [body] = receiver.of("spend")
    assert body["status"] == "firing" and body["group"] == {"feature": "refund-chat"}
    assert body["value"] > 1.5 and body["detail"].startswith("cost_per_hour")
    assert "feature=refund-chat" in body["links"]["traces"]
    # The notification says what changed: the bigger refund prompts.
    first = body["triage"]["causes"][0]
    assert (first["dimension"], first["value"]) in {
        ("feature", "refund-chat"),
        ("prompt_template", "refund-chat"),
        ("input_bucket", "4k-16k"),
    }
    assert first["contribution"] > 0 and first["evidence"]

    assert evaluator.evaluate(UNTIL + timedelta(minutes=1)) == []  # still firing: no news
    evaluator.stop()
    store = open_store(reopen=store)  # a restart: state comes from the store
    evaluator = Evaluator(store, file)
    try:
        assert evaluator.evaluate(UNTIL + timedelta(minutes=2)) == []
        [states] = [s for s in store.alert_states("default") if s["rule"] == "spend"]
        assert states["status"] == "firing"
        resolved = evaluator.evaluate(UNTIL + timedelta(minutes=30))  # the window has moved past it
        assert [e["status"] for e in resolved] == ["resolved", "resolved"]
        assert [b["status"] for b in receiver.of("spend")] == ["firing", "resolved"]
        assert evaluator.evaluate(UNTIL + timedelta(minutes=31)) == []
    finally:
        evaluator.stop()


def test_a_notification_the_receiver_refused_is_sent_again_and_only_once(tmp_path, open_store, receiver):
    bigger = traffic(UNTIL - WINDOW, 10, 6, **{"refund-chat": {"input_tokens": 4000}})
    store = store_with(open_store(), _steady(), bigger)
    evaluator = Evaluator(store, _rule_file(tmp_path, receiver, SPEND))
    try:
        receiver.failing = True
        evaluator.evaluate(UNTIL)
        assert receiver.attempts == 1 and receiver.bodies == []
        [owed] = [e for e in store.alert_events(undelivered=True) if e["payload"]["notifier"] == "hook"]
        assert owed["last_error"] == "hook: HTTP 503"
        receiver.failing = False
        assert evaluator.evaluate(UNTIL + timedelta(minutes=1)) == []  # no new event, the old one sent
        assert len(receiver.of("spend", "firing")) == 1
        evaluator.deliver()
        assert len(receiver.of("spend", "firing")) == 1
    finally:
        evaluator.stop()


def test_a_rule_with_for_waits_in_pending(tmp_path, open_store, receiver):
    body = SPEND.replace('window = "10m"', 'window = "10m"\nfor = "2m"')
    bigger = traffic(UNTIL - WINDOW, 10, 6, **{"refund-chat": {"input_tokens": 4000}})
    store = store_with(open_store(), _steady(), bigger)
    evaluator = Evaluator(store, _rule_file(tmp_path, receiver, body))
    try:
        assert evaluator.evaluate(UNTIL - timedelta(minutes=2)) == []
        assert store.alert_states("default")[0]["status"] == "pending"
        assert [e["status"] for e in evaluator.evaluate(UNTIL)] == ["firing", "firing"]
    finally:
        evaluator.stop()


def test_steady_traffic_fires_nothing(tmp_path, open_store, receiver):
    every_kind = (
        SPEND
        + """
[[rules]]
name = "dearer"
kind = "baseline"
metric = "cost_per_request"
window = "10m"
group_by = ["feature"]
notify = ["hook"]

[[rules]]
name = "surge"
kind = "anomaly"
metric = "requests_per_hour"
window = "10m"
history = "1h"
notify = ["hook"]

[[rules]]
name = "drift"
kind = "prompt_drift"
window = "10m"
history = "2h"
notify = ["hook"]

[[rules]]
name = "storm"
kind = "retry_storm"
window = "10m"
notify = ["hook"]
"""
    )
    assert _evaluate(tmp_path, open_store, receiver, every_kind, traffic(UNTIL - WINDOW, 10, 6)) == []
    assert receiver.bodies == []


def test_cost_per_request_against_the_hour_before(tmp_path, open_store, receiver):
    rule = """
[[rules]]
name = "dearer"
kind = "baseline"
metric = "cost_per_request"
factor = 1.2
window = "10m"
baseline = "1h"
group_by = ["feature"]
notify = ["hook"]
"""
    dearer = traffic(UNTIL - WINDOW, 10, 6, classify={"model": "gpt-4o"})
    _evaluate(tmp_path, open_store, receiver, rule, dearer)
    [body] = receiver.of("dearer")
    assert body["group"] == {"feature": "classify"} and "x the" in body["detail"]


def test_a_traffic_surge_is_an_anomaly(tmp_path, open_store, receiver):
    rule = """
[[rules]]
name = "surge"
kind = "anomaly"
metric = "requests_per_hour"
z = 3
window = "10m"
history = "1h"
notify = ["hook"]
"""
    _evaluate(tmp_path, open_store, receiver, rule, traffic(UNTIL - WINDOW, 10, 18))
    [body] = receiver.of("surge")
    assert body["value"] == pytest.approx(18 * 60) and "sigma" in body["detail"]


def test_errors_burn_the_error_budget_over_both_windows(tmp_path, open_store, receiver):
    rule = """
[[rules]]
name = "budget"
kind = "slo_burn"
objective = 0.99
window = "1h"
short_window = "5m"
burn_rate = 2
notify = ["hook"]
"""
    failing = [
        call(UNTIL - WINDOW + timedelta(seconds=20 * n), error="server_error" if n % 2 == 0 else None)
        for n in range(30)
    ]
    _evaluate(tmp_path, open_store, receiver, rule, failing)
    [body] = receiver.of("budget")
    assert body["kind"] == "slo_burn" and body["value"] >= 2


def test_an_error_budgets_notification_says_where_the_failing_calls_come_from(tmp_path, open_store, receiver):
    """Half the classifier's calls fail with a 400 (its prompts past the model's window): they
    cost nothing, so the cost causes cannot say so; the error causes can, and the Slack text
    lists them."""
    rule = """
[[rules]]
name = "budget"
kind = "slo_burn"
objective = 0.99
window = "10m"
short_window = "5m"
burn_rate = 2
notify = ["hook", "slack"]

[[notifiers]]
name = "slack"
type = "slack"
url = "URL"
"""
    window, classified = [], 0
    for span in traffic(UNTIL - WINDOW, 10, 6):
        if span.attributes["tokentrace.feature"] == "classify" and (classified := classified + 1) % 2:
            at = datetime.fromtimestamp(span.start_unix_nano / 1e9, UTC)
            span = call(at, feature="classify", model="gpt-4o-mini", error="context_length")
        window.append(span)
    _evaluate(tmp_path, open_store, receiver, rule.replace("URL", receiver.url), window)
    [body] = [b for b in receiver.of("budget") if "triage" in b]
    [cause] = body["triage"]["error_causes"]
    assert "classify" in (cause["value"], cause["filters"].get("feature"))
    assert cause["metric"] == "error_rate" and "context_length (400) 10" in cause["evidence"]
    assert cause["example_trace_ids"]
    [slack] = [b for b in receiver.bodies if "blocks" in b]
    assert cause["evidence"] in slack["blocks"][1]["text"]["text"]


def test_a_prompt_version_that_doubles_the_prompt_drifts(tmp_path, open_store, receiver):
    rule = """
[[rules]]
name = "drift"
kind = "prompt_drift"
window = "10m"
history = "2h"
notify = ["hook"]
"""
    v2 = traffic(UNTIL - WINDOW, 10, 6, **{"refund-chat": {"version": "v2", "input_tokens": 2000}})
    _evaluate(tmp_path, open_store, receiver, rule, v2)
    [body] = receiver.of("drift")
    assert body["group"] == {"prompt_template": "refund-chat", "prompt_version": "v2"}
    assert body["value"] == pytest.approx(2.0) and "that of v1" in body["detail"]


def test_a_retry_storm_fires_on_attempts_per_request(tmp_path, open_store, receiver):
    rule = """
[[rules]]
name = "storm"
kind = "retry_storm"
above = 1.5
window = "10m"
group_by = ["feature", "request_model"]
notify = ["hook"]
"""
    storm = []
    for n in range(30):
        trace, at = new_trace(), UNTIL - WINDOW + timedelta(seconds=5 + 18 * n)
        storm += [call(at, trace=trace, error="rate_limit") for _ in range(3)]
        storm.append(call(at, trace=trace, input_tokens=1600))
    storm += traffic(UNTIL - WINDOW, 10, 3, **{"refund-chat": {}})
    _evaluate(tmp_path, open_store, receiver, rule, storm)
    [body] = receiver.of("storm")
    assert body["group"] == {"feature": "refund-chat", "request_model": "gpt-4o"}
    assert body["value"] == pytest.approx(140 / 50)  # 120 storm calls + 20 plain ones, 50 answered


def test_a_slack_notifier_gets_slacks_shape(tmp_path, open_store, receiver):
    path = tmp_path / "alerts.toml"
    path.write_text(
        f'[[notifiers]]\nname = "team"\ntype = "slack"\nurl = "{receiver.url}"\n\n'
        + SPEND.replace('notify = ["hook", "log"]', 'notify = ["team"]')
    )
    bigger = traffic(UNTIL - WINDOW, 10, 6, **{"refund-chat": {"input_tokens": 4000}})
    store = store_with(open_store(), _steady(), bigger)
    evaluator = Evaluator(store, rules.load(path))
    try:
        evaluator.evaluate(UNTIL)
    finally:
        evaluator.stop()
    [body] = receiver.bodies
    assert body["text"].startswith("[FIRING] spend (feature=refund-chat): cost_per_hour")
    assert body["blocks"][1]["text"]["text"].startswith("What changed:\n1. ")


LOOP = """
[[rules]]
name = "loops"
kind = "agent_loop"
window = "10m"
history = "1h"
notify = ["hook"]
"""


def _agent_runs(start, count: int, **run) -> list:
    return [span for n in range(count) for span in agent_run(start + timedelta(minutes=n), **run)]


def test_an_agent_run_far_past_its_usual_turns_is_a_loop(tmp_path, open_store, receiver):
    """The planner usually takes 4 turns (and embeds 3 queries, which are not turns); one run in
    the window takes 31, calling get_weather 12 times with the same arguments: the rule fires for
    the planner and names that run."""
    history = _agent_runs(UNTIL - WINDOW - BASELINE, 20, embeddings=3)
    looping = agent_run(UNTIL - WINDOW + timedelta(minutes=1), turns=31, tool_runs=12)
    window = history + _agent_runs(UNTIL - WINDOW + timedelta(minutes=2), 5) + looping
    _evaluate(tmp_path, open_store, receiver, LOOP, window)
    [body] = receiver.of("loops")
    assert body["group"] == {"agent_name": "planner"} and body["value"] == 31
    assert looping[0].trace_id in body["detail"]
    assert "31 turns" in body["detail"] and "(usually 4)" in body["detail"]
    assert "get_weather ran 12 times with the same arguments" in body["detail"]


def test_agents_at_their_usual_turns_fire_nothing(tmp_path, open_store, receiver):
    """Runs of 4, 5 and 6 turns and a tool run twice are an agent at work, not a loop."""
    history = _agent_runs(UNTIL - WINDOW - BASELINE, 20)
    window = [
        *_agent_runs(UNTIL - WINDOW, 3, turns=6, tool_runs=2),
        *_agent_runs(UNTIL - WINDOW + timedelta(minutes=4), 3, turns=5),
    ]
    _evaluate(tmp_path, open_store, receiver, LOOP, history + window)
    assert receiver.of("loops") == []


def test_an_agent_loop_rule_is_per_agent():
    with pytest.raises(rules.RuleError, match="per agent"):
        rules.parse_rule({"name": "x", "kind": "agent_loop", "group_by": ["tenant_id"]})
