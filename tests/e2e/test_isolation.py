"""Tenant isolation: a key of project A reads and writes A alone, through every API operation,
the export, the metrics and the UI pages; keys are stored hashed; a server bound beyond
loopback asks every caller for a key; filters take injection strings as plain values."""

from __future__ import annotations

import re

import httpx
import orjson
import pytest

from tests.builders.otlp import chat, new_trace_id, protobuf, span
from tests.builders.processes import ServerProcess
from tokentrace.server.api.openapi import document

ADMIN = "admin-secret-token"
INJECTIONS = [
    "' OR '1'='1",
    "x' OR 1=1 --",
    "'; DROP TABLE spans; --",
    'acme" OR ""="',
    "%",
    "_",
    "') UNION SELECT project_id, trace_id FROM spans --",
    "\\",
    "1; SELECT * FROM api_keys",
]


class Project:
    def __init__(self, name: str, key: str) -> None:
        self.name, self.key = name, key
        self.trace_id = new_trace_id()
        self.marker = f"{name}-only"  # tenant, model, session and user names no other project has

    def spans(self) -> list[dict]:
        tags = {
            "tenant.id": f"tenant-{self.marker}",
            "session.id": f"session-{self.marker}",
            "user.id": f"user-{self.marker}",
        }
        root = span(self.trace_id, name=f"request {self.marker}", attributes=tags)
        call = chat(
            self.trace_id,
            parent=root["span_id"],
            model=f"model-{self.marker}",
            input_tokens=5,
            output_tokens=1,
        )
        self.span_id = call["span_id"]
        return [root, call]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture(scope="module")
def two_projects(tmp_path_factory):
    data = tmp_path_factory.mktemp("isolation") / "data"
    server = ServerProcess(data, "--require-key", "--admin-token", ADMIN).start()
    projects = {}
    for name in ("alpha", "bravo"):
        answer = httpx.post(
            f"{server.url}/api/v1/projects", json={"name": name}, headers={"Authorization": f"Bearer {ADMIN}"}
        )
        projects[name] = project = Project(name, answer.json()["api_key"])
        assert server.post_traces(protobuf(project.spans()), key=project.key).status_code == 200
        score = {"trace_id": project.trace_id, "name": f"score-{project.marker}", "value": 1}
        assert httpx.post(f"{server.url}/api/v1/scores", json=score, headers=project.auth).status_code == 200
        server.wait_for_spans(2, key=project.key)
    yield server, projects["alpha"], projects["bravo"], data
    server.stop()


def _paths(a: Project, b: Project) -> list[str]:
    """Every GET of the API, with b's ids where a path takes one."""
    out = []
    for path, operations in document()["paths"].items():
        if "get" not in operations or path in ("/healthz", "/api/v1/projects"):
            continue
        out.append(
            path.replace("{trace_id}", b.trace_id)
            .replace("{span_id}", getattr(b, "span_id", "0" * 16))
            .replace("{session_id}", f"session-{b.marker}")
        )
    return out


def test_a_key_reads_nothing_of_another_project_through_any_get(two_projects):
    server, alpha, bravo, _ = two_projects
    with httpx.Client(base_url=server.url, headers=alpha.auth, timeout=30) as client:
        for path in _paths(alpha, bravo):
            response = client.get(path, params={"since": "7d"} if "{" not in path else None)
            assert response.status_code in (200, 404), (path, response.status_code, response.text[:300])
            assert bravo.marker not in response.text and bravo.trace_id not in response.text, path
            if bravo.trace_id in path or bravo.marker in path:
                assert response.status_code == 404, path
        own = client.get("/api/v1/spans/export", params={"format": "jsonl"}).content.splitlines()
        metrics = client.get("/metrics").text
    assert {orjson.loads(line)["trace_id"] for line in own} == {alpha.trace_id}
    assert f"model-{alpha.marker}" in metrics and bravo.marker not in metrics


def test_a_key_sees_nothing_of_another_project_in_the_ui(two_projects):
    server, alpha, bravo, _ = two_projects
    with httpx.Client(base_url=server.url, timeout=30) as client:
        login = client.post("/login", data={"key": alpha.key, "next": "/"}, follow_redirects=False)
        assert login.status_code == 303
        for page in ("/", "/cost", "/traces", "/sessions", "/latency", "/alerts", "/budgets"):
            response = client.get(page, params={"since": "7d"})
            assert response.status_code == 200, page
            assert bravo.marker not in response.text, page
        assert alpha.marker in client.get("/traces", params={"since": "7d"}).text  # the page does list
        for page in (f"/traces/{bravo.trace_id}", f"/sessions/session-{bravo.marker}"):
            assert client.get(page).status_code == 404, page


def test_what_a_key_writes_lands_in_its_own_project_whatever_the_body_claims(two_projects):
    server, alpha, bravo, _ = two_projects
    auth = alpha.auth
    # A score naming another project's trace, a rule naming another project: both stay in alpha.
    score = {"trace_id": bravo.trace_id, "name": "planted", "value": 0}
    assert httpx.post(f"{server.url}/api/v1/scores", json=score, headers=auth).status_code == 200
    rule = {"name": "planted-rule", "project": bravo.name, "kind": "threshold", "measure": "cost_usd",
            "window": "5m", "above": 1}  # fmt: skip
    httpx.post(f"{server.url}/api/v1/alerts/rules", json=rule, headers=auth)
    claims = span(new_trace_id(), name="claims", attributes={"tokentrace.project_id": bravo.name})
    assert (
        server.post_traces(
            protobuf([claims], resource={"tokentrace.project": bravo.name}), key=alpha.key
        ).status_code
        == 200
    )
    server.wait_for_spans(3, key=alpha.key)

    seen_by_bravo = server.get(f"/api/v1/traces/{bravo.trace_id}", key=bravo.key)
    assert "planted" not in orjson.dumps(seen_by_bravo).decode()
    assert server.get("/api/v1/stats", key=bravo.key)["spans"] == 2
    assert "planted-rule" not in orjson.dumps(server.get("/api/v1/alerts/rules", key=bravo.key)).decode()


def test_keys_are_stored_hashed(two_projects):
    _, alpha, bravo, data = two_projects  # the keys were written when the projects were made
    for path in data.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert alpha.key.encode() not in content and bravo.key.encode() not in content, path


@pytest.mark.parametrize("value", INJECTIONS)
def test_injection_strings_in_every_filter_are_plain_values(two_projects, value):
    server, alpha, _, _ = two_projects
    filters = [
        p["$ref"].rsplit("/", 1)[1]
        for p in document()["paths"]["/api/v1/traces"]["get"]["parameters"]
        if "$ref" in p
    ]
    names = [
        document()["components"]["parameters"][f]["name"]
        for f in filters
        if f not in ("limit", "offset", "since", "until")
    ]
    with httpx.Client(base_url=server.url, headers=alpha.auth, timeout=30) as client:
        for name in names:
            for path in (
                "/api/v1/traces",
                "/api/v1/rollups",
                "/api/v1/sessions",
                "/api/v1/scores",
                "/api/v1/spans/export",
            ):
                response = client.get(path, params={name: value, "since": "7d"})
                assert response.status_code == 200, (path, name, response.text[:200])
                if path == "/api/v1/traces":
                    assert response.json()["traces"] == [], (name, value)  # matched as text: nothing
        # Names of fields, durations: checked against what exists, never spliced into SQL.
        for path, name in (
            ("/api/v1/rollups", "group_by"),
            ("/api/v1/rollups", "bucket"),
            ("/api/v1/cost_per", "by"),
            ("/api/v1/traces", "since"),
        ):
            assert client.get(path, params={name: value}).status_code == 400, (name, value)
        scored = client.get("/api/v1/traces", params={"score": value})  # a score's name and value
        assert scored.status_code == 400 or scored.json()["traces"] == [], value
        assert client.get("/api/v1/stats").json()["spans"] >= 2  # and the table is still there


def test_a_server_bound_beyond_loopback_asks_every_caller_for_a_key(tmp_path):
    server = ServerProcess(tmp_path / "data", "--host", "0.0.0.0").start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            page = client.get("/", follow_redirects=False)
            api = client.get("/api/v1/traces")
            metrics = client.get("/metrics")
            ingest = client.post(
                "/v1/traces", content=b"", headers={"Content-Type": "application/x-protobuf"}
            )
            admin = client.post("/api/v1/projects", json={"name": "x"})
    finally:
        server.stop()
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert (api.status_code, metrics.status_code, ingest.status_code) == (401, 401, 401)
    assert admin.status_code == 403
    assert re.search(r"Bearer", api.json()["error"])
