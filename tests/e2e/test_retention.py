"""`serve --retention`: what is older is deleted on schedule, spans and totals alike; and
DELETE /api/v1/projects/{name} takes a project's data and keys with it."""

from __future__ import annotations

import time

import httpx

from tests.builders.otlp import chat, new_trace_id, protobuf
from tests.builders.processes import ServerProcess

DAY_NS = 86_400 * 10**9


def _calls(count: int, start_ns: int, tokens: int) -> list[dict]:
    spans = []
    for i in range(count):
        call = chat(new_trace_id(), input_tokens=tokens, output_tokens=1)
        call["start"], call["end"] = start_ns + i * 10**9, start_ns + i * 10**9 + 10**7
        spans.append(call)
    return spans


def test_spans_older_than_the_retention_are_deleted_on_schedule(tmp_path):
    server = ServerProcess(tmp_path / "data", "--retention", "2d", "--retention-interval", "1s").start()
    try:
        now = time.time_ns()
        assert server.post_traces(protobuf(_calls(30, now - 5 * DAY_NS, tokens=1000))).status_code == 200
        assert server.post_traces(protobuf(_calls(20, now - 3600 * 10**9, tokens=7))).status_code == 200
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            stats = server.get("/api/v1/stats")
            if stats["spans"] == 20 and stats["pending_spans"] == 0:
                break
            time.sleep(0.2)
        totals = server.get("/api/v1/rollups", since="7d")["rows"]
    finally:
        server.stop()
    assert stats["spans"] == 20, stats
    assert [(row["requests"], row["input_tokens"]) for row in totals] == [(20, 140)]
    assert "retention: deleted what is older than" in server.log()


def test_deleting_a_project_takes_its_data_and_keys(tmp_path):
    server = ServerProcess(tmp_path / "data", "--admin-token", "admin-secret").start()
    try:
        admin = {"Authorization": "Bearer admin-secret"}
        keys = {}
        for name in ("acme", "globex"):
            created = httpx.post(f"{server.url}/api/v1/projects", json={"name": name}, headers=admin)
            keys[name] = created.json()["api_key"]
            body = protobuf(_calls(5, time.time_ns() - 60 * 10**9, tokens=3))
            assert server.post_traces(body, key=keys[name]).status_code == 200
        server.wait_for_spans(5, key=keys["acme"])
        server.wait_for_spans(5, key=keys["globex"])

        refused = httpx.delete(
            f"{server.url}/api/v1/projects/acme", headers={"Authorization": f"Bearer {keys['globex']}"}
        )
        answer = httpx.delete(f"{server.url}/api/v1/projects/acme", headers=admin)
        after = httpx.get(f"{server.url}/api/v1/stats", headers={"Authorization": f"Bearer {keys['acme']}"})
        other = server.get("/api/v1/stats", key=keys["globex"])
        again = httpx.delete(f"{server.url}/api/v1/projects/acme", headers=admin)
    finally:
        server.stop()
    assert refused.status_code == 403  # a project's key is not the admin's
    assert answer.status_code == 200 and answer.json()["deleted"]["spans"] == 5
    assert after.status_code == 401  # its key went with it
    assert other["spans"] == 5
    assert again.status_code == 404
