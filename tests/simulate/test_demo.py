"""`tokentrace demo`: simulated SaaS traffic through the real SDKs, with each incident visible."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ServerProcess


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("demo") / "data").start()
    yield server
    server.stop()


def _run_demo(server: ServerProcess, scenario: str) -> tuple[str, str]:
    project = f"{scenario}-{os.urandom(3).hex()}"  # one project per run, on the shared server
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "tokentrace.cli",
            "projects",
            "create",
            project,
            "--server",
            server.url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tokentrace.cli",
            "demo",
            "--server",
            server.url,
            "--api-key",
            key,
            "--scenario",
            scenario,
            "--requests",
            "90",
            "--workers",
            "6",
            "--fast",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    return key, result.stdout


def _rows(
    server: ServerProcess, key: str, group_by: str, since: str, until: str | None = None, **filters: str
) -> list[dict]:
    params = {"group_by": group_by, "since": since, **filters}
    if until:
        params["until"] = until
    return server.get("/api/v1/rollups", key, **params)["rows"]


def test_the_saas_traffic_covers_tenants_features_templates_and_agents(demo_server):
    key, out = _run_demo(demo_server, "retry-storm")
    assert "Where to look:" in out and "tokentrace cost --by feature,prompt_version" in out
    stats = demo_server.wait_for_spans(1, key=key)
    assert stats["traces"] == 90 and stats["unpriced_spans"] == 0
    by = {
        field: {r[field] for r in _rows(demo_server, key, field, "2h")}
        for field in ("tenant_id", "feature", "prompt_template", "provider", "operation")
    }
    assert by["tenant_id"] == {"acme", "globex", "initech", "umbrella", "hooli"}
    assert by["feature"] == {"refund-chat", "search-summarize", "email-draft", "classify-ticket"}
    assert by["prompt_template"] == {"refund", "summarize", "draft"}
    assert by["provider"] >= {"openai", "anthropic"}
    assert by["operation"] >= {"invoke_agent", "retrieval", "execute_tool", "chat", "embeddings"}
    old = _rows(demo_server, key, "feature", "2h", "12m")
    assert sum(r["traces"] for r in old) > 50  # an hour of history, compressed


def test_retry_storm_and_prompt_bloat_show_in_the_incident_window(demo_server):
    key, _ = _run_demo(demo_server, "retry-storm")
    demo_server.wait_for_spans(1, key=key)
    recent = {
        (r["feature"], r["prompt_version"]): r
        for r in _rows(demo_server, key, "feature,prompt_version", "10m")
    }
    before = {
        (r["feature"], r["prompt_version"]): r
        for r in _rows(demo_server, key, "feature,prompt_version", "2h", "10m")
    }
    v4 = recent[("refund-chat", "v4")]
    assert ("refund-chat", "v3") in before
    assert ("refund-chat", "v4") not in before
    assert v4["errors"] > 0 and v4["error_rate"] > 0.2
    # per answered chat call (failed attempts carry no usage; embeddings are other calls)
    answered = {"operation": "chat", "status": "unset"}
    new = _rows(demo_server, key, "feature,prompt_version", "10m", **answered)
    old = _rows(demo_server, key, "feature,prompt_version", "2h", "10m", **answered)
    per_call_v4 = next(r["input_tokens"] / r["requests"] for r in new if r["prompt_version"] == "v4")
    per_call_v3 = next(r["input_tokens"] / r["requests"] for r in old if r["prompt_version"] == "v3")
    assert per_call_v4 > 1.5 * per_call_v3


@pytest.mark.parametrize("scenario", ["expensive-model", "tenant-loop", "cache-miss"])
def test_other_incidents_show_in_the_incident_window(demo_server, scenario):
    key, _ = _run_demo(demo_server, scenario)
    demo_server.wait_for_spans(1, key=key)
    if scenario == "expensive-model":
        recent = {(r["feature"], r["request_model"]) for r in _rows(demo_server, key, "feature,model", "10m")}
        before = {
            (r["feature"], r["request_model"]) for r in _rows(demo_server, key, "feature,model", "2h", "10m")
        }
        assert ("search-summarize", "gpt-4o") in recent and ("search-summarize", "gpt-4o") not in before
    elif scenario == "tenant-loop":
        recent = {r["user_id"]: r for r in _rows(demo_server, key, "user_id", "10m")}
        assert recent["script-bot"]["requests"] > max(
            r["requests"] for u, r in recent.items() if u != "script-bot"
        )
    else:
        recent = {r["feature"]: r for r in _rows(demo_server, key, "feature", "10m")}
        before = {r["feature"]: r for r in _rows(demo_server, key, "feature", "2h", "10m")}
        assert before["email-draft"]["cache_read_tokens"] > 0
        assert (
            recent["email-draft"]["cache_read_tokens"] == 0
            and recent["email-draft"]["cache_write_tokens"] > 0
        )
