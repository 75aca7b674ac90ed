"""The TOML rules as Prometheus rules and the Grafana dashboard: promtool accepts them, and the
retry-storm rule fires in Prometheus's own rule test on the series /metrics would show."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.builders.rule_file import EVERY_KIND
from tokentrace.alerts.rules import load, parse_rule
from tokentrace.metrics.alert_rules import alert_name, rule_groups
from tokentrace.metrics.exposition import DEFAULT_LABELS

promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool (Debian's prometheus) absent"
)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tokentrace.cli", *args], capture_output=True, text=True, timeout=60
    )


def _check(path) -> None:
    checked = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_kind_becomes_an_alerting_rule(tmp_path):
    path = tmp_path / "alerts.toml"
    path.write_text(EVERY_KIND)
    document, skipped = rule_groups(load(path).rules, DEFAULT_LABELS)
    rules = {r["alert"]: r for r in document["groups"][0]["rules"]}
    assert skipped == []
    assert set(rules) == {"P95", "TokensPerRequestOutOfRange", "Budget", "Drift", "Storm", "Spike"}
    assert rules["P95"]["for"] == "2m" and 'tenant_id="acme"' in rules["P95"]["expr"]
    assert "histogram_quantile(0.95" in rules["P95"]["expr"]
    assert "stddev_over_time" in rules["Spike"]["expr"]
    assert rules["Budget"]["expr"].count("tokentrace_errors_total") == 2  # the long and the short window


def test_a_rule_over_a_label_metrics_lack_is_left_out_with_the_reason():
    by_user = parse_rule({"name": "u", "kind": "retry_storm", "group_by": ["user_id"]})
    document, skipped = rule_groups((by_user,), DEFAULT_LABELS)
    assert document["groups"][0]["rules"] == []
    assert skipped == ["u: /metrics has no label 'user_id' to group by; add it with --metric-labels"]
    assert alert_name(parse_rule({"name": "4xx spend!", "kind": "retry_storm"})) == "Rule4xxSpend"


@promtool
def test_promtool_accepts_the_rules_and_the_dashboard(tmp_path):
    path = tmp_path / "alerts.toml"
    path.write_text(EVERY_KIND)
    written = _cli("prometheus-rules", "--alerts", str(path), "-o", str(tmp_path / "rules.yml"))
    assert written.returncode == 0, written.stderr
    _check(tmp_path / "rules.yml")

    board = json.loads(_cli("grafana-dashboard").stdout)
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    assert len(exprs) == len(board["panels"]) >= 8
    # Every panel's query, as a recording rule (Grafana's $__rate_interval filled in).
    recording = [
        {"record": f"panel:{n}", "expr": e.replace("$__rate_interval", "5m")} for n, e in enumerate(exprs)
    ]
    (tmp_path / "panels.yml").write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": recording}]}))
    _check(tmp_path / "panels.yml")


@promtool
@pytest.mark.parametrize(("calls_per_minute", "fires"), [(4, True), (1, False)])
def test_the_retry_storm_rule_fires_in_prometheus(tmp_path, calls_per_minute, fires):
    path = tmp_path / "alerts.toml"
    path.write_text(
        '[[rules]]\nname = "storm"\nkind = "retry_storm"\nwindow = "5m"\ngroup_by = ["feature"]\n'
    )
    document, _ = rule_groups(load(path).rules, DEFAULT_LABELS)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(document))
    series = '{project="default",feature="refund-chat",request_model="gpt-4o"}'
    # One answered call a minute; each answer takes `calls_per_minute` calls (the rest are 429s).
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f"tokentrace_requests_total{series}", "values": f"0+{calls_per_minute}x20"},
                    {"series": f"tokentrace_answered_total{series}", "values": "0+1x20"},
                    {"series": f"tokentrace_sdk_resends_total{series}", "values": "0+0x20"},
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "15m",
                        "alertname": "Storm",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "feature": "refund-chat",
                                    "severity": "warning",
                                    "tokentrace_rule": "storm",
                                    "kind": "retry_storm",
                                },
                                "exp_annotations": {"summary": "storm: attempts_per_request > 1.5 over 5m"},
                            }
                        ]
                        if fires
                        else [],
                    }
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))
    result = subprocess.run(
        ["promtool", "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
