"""Alerts end to end: a real server with a rules file, the demo's retry-storm incident sent through
the real SDKs, and a real HTTP receiver. The right rules fire once, resolve once, and a restart
repeats nothing."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.builders.processes import ServerProcess, run_demo
from tests.builders.receiver import Receiver

pytestmark = pytest.mark.e2e

RULES = """
[[notifiers]]
name = "hook"
type = "webhook"
url = "{url}"

[[rules]]
name = "retry storm"
kind = "retry_storm"
above = 1.5
window = "30s"
group_by = ["feature"]
min_requests = 5
notify = ["hook"]

[[rules]]
name = "prompt drift"
kind = "prompt_drift"
window = "30s"
history = "2h"
min_requests = 3
notify = ["hook"]

[[rules]]
name = "search got dearer"
kind = "baseline"
metric = "cost_per_request"
factor = 1.5
window = "30s"
where = {{ feature = "search-summarize" }}
min_requests = 3
notify = ["hook"]
"""


def test_the_retry_storm_fires_its_rules_once_and_they_resolve(tmp_path):
    receiver = Receiver()
    rules = tmp_path / "alerts.toml"
    rules.write_text(RULES.format(url=receiver.url))
    data = tmp_path / "data"
    server = ServerProcess(data, "--alerts", str(rules), "--alert-interval", "2s").start()
    try:
        # The incident compressed into the last 30 s: the rules' 30-second window moves past it soon.
        run_demo(server.url, "retry-storm", "--incident-minutes", "0.5")
        storm = receiver.wait_for("retry storm", "firing")
        assert storm["group"] == {"feature": "refund-chat"} and storm["value"] > 1.5
        assert storm["triage"]["causes"], "the notification carries what changed"
        drift = receiver.wait_for("prompt drift", "firing")
        assert drift["group"] == {"prompt_template": "refund", "prompt_version": "v4"}

        # /metrics counts the same calls the API does, from the spans the SDK sent.
        scraped = httpx.get(f"{server.url}/metrics", timeout=30)
        assert scraped.headers["content-type"].startswith("text/plain")
        families = {f.name: f.samples for f in text_string_to_metric_families(scraped.text)}
        [total] = httpx.get(f"{server.url}/api/v1/rollups", timeout=30).json()["rows"]
        requests = sum(s.value for s in families["tokentrace_requests"] if s.name.endswith("_total"))
        assert requests == total["requests"] > 0
        limited = [s for s in families["tokentrace_errors"] if s.labels["error_type"] == "rate_limit"]
        assert sum(s.value for s in limited if s.labels["feature"] == "refund-chat") > 0

        alerts = httpx.get(f"{server.url}/api/v1/alerts", timeout=10).json()["alerts"]
        assert {a["rule"] for a in alerts if a["status"] == "firing"} >= {"retry storm", "prompt drift"}

        # A restart reads the state back: nothing is sent twice.
        server.stop()
        server = ServerProcess(data, "--alerts", str(rules), "--alert-interval", "2s").start()
        receiver.wait_for("retry storm", "resolved", timeout=120)
        receiver.wait_for("prompt drift", "resolved", timeout=30)
        time.sleep(5)  # two more evaluations
        for rule in ("retry storm", "prompt drift"):
            assert [b["status"] for b in receiver.of(rule)] == ["firing", "resolved"], receiver.of(rule)
        assert receiver.of("search got dearer") == []  # the incident did not touch search
        events = httpx.get(f"{server.url}/api/v1/alerts/events", timeout=10).json()["events"]
        assert all(e["delivered_at"] for e in events) and len(events) == 4
    finally:
        server.stop()
        receiver.close()


def test_rules_through_the_api(tmp_path):
    rules = tmp_path / "alerts.toml"
    rules.write_text('[[rules]]\nname = "storm"\nkind = "retry_storm"\n')
    server = ServerProcess(tmp_path / "data", "--alerts", str(rules)).start()
    api = f"{server.url}/api/v1/alerts/rules"
    try:
        spend = {
            "name": "spend",
            "kind": "threshold",
            "metric": "cost_per_hour",
            "above": 50,
            "window": "15m",
        }
        created = httpx.post(api, json=spend, timeout=10)
        assert created.status_code == 201 and created.json()["for"] == "0s"
        listed = {r["name"]: r for r in httpx.get(api, timeout=10).json()["rules"]}
        assert listed["storm"]["source"] == "file" and listed["spend"]["source"] == "api"
        assert listed["spend"]["above"] == 50 and listed["spend"]["project"] == "default"

        bad = httpx.post(api, json={**spend, "metric": "dollars"}, timeout=10)
        assert bad.status_code == 400 and "unknown measure 'dollars'" in bad.json()["error"]
        assert httpx.post(api, content=b"{", timeout=10).status_code == 400
        unknown_notifier = httpx.post(api, json={**spend, "notify": ["pager"]}, timeout=10)
        assert unknown_notifier.status_code == 400 and "pager" in unknown_notifier.json()["error"]
        assert httpx.post(api, json={"name": "storm", "kind": "retry_storm"}, timeout=10).status_code == 409
        assert httpx.delete(f"{api}/storm", timeout=10).status_code == 409

        # Nothing planted, nothing fires; the API rule is evaluated with the file's.
        assert httpx.post(f"{server.url}/api/v1/alerts/evaluate", timeout=30).json() == {"events": []}
        assert httpx.delete(f"{api}/spend", timeout=10).status_code == 204
        assert httpx.delete(f"{api}/spend", timeout=10).status_code == 404
        assert [r["name"] for r in httpx.get(api, timeout=10).json()["rules"]] == ["storm"]
    finally:
        server.stop()


def test_a_bad_rules_file_stops_the_server_with_a_clear_error(tmp_path):
    rules = tmp_path / "alerts.toml"
    rules.write_text('[[rules]]\nname = "x"\nkind = "threshold"\nmetric = "cost_per_hour"\n')
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tokentrace.cli",
            "serve",
            "--data-dir",
            str(tmp_path),
            "--alerts",
            str(rules),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "needs above, below or both" in result.stderr
