"""Rule files: every kind parses with its defaults; a mistake is a clear error, never a silent rule."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from tests.builders.rule_file import EVERY_KIND
from tokentrace.alerts.rules import KINDS, RuleError, load, parse_rule, rule_spec


def test_a_file_of_every_kind(tmp_path):
    path = tmp_path / "alerts.toml"
    path.write_text(EVERY_KIND)
    loaded = load(path)
    p95, out_of_range, budget, drift, storm, spike = loaded.rules
    assert p95.group_by == ("request_model",) and p95.where == {"tenant_id": "acme"}
    assert p95.for_ == timedelta(minutes=2) and p95.notify == ("oncall", "log")
    assert (out_of_range.above, out_of_range.below) == (8000, 50)
    assert budget.metric == "error_rate" and budget.objective == 0.99 and budget.short_window < budget.window
    assert drift.group_by == ("feature", "prompt_template") and drift.factor == 1.3
    assert storm.metric == "attempts_per_request" and storm.above == 1.5
    assert spike.z == 3.0 and spike.history == timedelta(hours=24)
    assert set(loaded.notifiers) == {"oncall", "log"}
    assert p95.describe() == "p95_latency_ms > 10000 over 15m"


@pytest.mark.parametrize("rule", KINDS)
def test_a_rule_reads_back_from_its_spec(rule):
    data = {"name": "r", "kind": rule, "metric": "cost_per_hour", "above": 1}
    if rule in ("retry_storm", "prompt_drift", "slo_burn"):
        data.pop("metric")
    parsed = parse_rule(data)
    assert parse_rule(rule_spec(parsed)) == parsed


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "r", "kind": "threshold", "metric": "cost_per_hour"}, "needs above, below or both"),
        ({"name": "r", "kind": "threshold", "metric": "cost", "above": 1}, "unknown measure 'cost'"),
        ({"name": "r", "kind": "thresold", "metric": "cost_per_hour"}, "kind must be one of"),
        ({"name": "r", "kind": "retry_storm", "treshold": 2}, "unknown rule keys: ['treshold']"),
        ({"name": "r", "kind": "retry_storm", "group_by": ["colour"]}, "'colour' is not a field"),
        ({"name": "r", "kind": "retry_storm", "window": "soon"}, "is not a duration"),
        ({"name": "r", "kind": "retry_storm", "above": "2"}, "above must be a number"),
        # a NaN bound would never fire, and int(inf) would not say which key was wrong
        (
            {"name": "r", "kind": "threshold", "metric": "cost_per_hour", "above": math.nan},
            "above must be finite",
        ),
        (
            {"name": "r", "kind": "retry_storm", "min_requests": math.inf},
            "min_requests must be finite",
        ),
        ({"name": "r", "kind": "slo_burn", "objective": 99}, "objective must be between 0 and 1"),
        ({"name": "r", "kind": "anomaly", "metric": "p95_latency_ms"}, "anomaly rules need a metric"),
        ({"kind": "retry_storm"}, "a rule needs a name"),
    ],
)
def test_a_mistake_is_a_clear_error(data, message):
    with pytest.raises(RuleError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_rule(data)


def test_a_rule_naming_a_missing_notifier_fails_the_file(tmp_path):
    path = tmp_path / "alerts.toml"
    path.write_text('[[rules]]\nname = "r"\nkind = "retry_storm"\nnotify = ["pager"]\n')
    with pytest.raises(RuleError, match=r"unknown notifiers \['pager'\]"):
        load(path)
    path.write_text('[[notifiers]]\nname = "x"\ntype = "webhook"\n')
    with pytest.raises(RuleError, match="needs an http"):
        load(path)
    path.write_text("[[rules]\n")
    with pytest.raises(RuleError, match=r"alerts\.toml"):
        load(path)


def test_the_demos_rules_file_is_valid():
    from importlib import resources

    with resources.as_file(resources.files("tokentrace.simulate").joinpath("demo_alerts.toml")) as path:
        loaded = load(path)
    assert {r.kind for r in loaded.rules} >= {"retry_storm", "prompt_drift", "baseline", "slo_burn"}
