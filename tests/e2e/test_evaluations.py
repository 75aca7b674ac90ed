"""Evaluators in a running server (`serve --evaluators`): RAG calls sent over OTLP are graded by
the judge (the simulated provider) and by a rule as they arrive, their verdicts are scores on
the trace, and the API says what each evaluator has done; a bad evaluators file stops `serve`
with its file and line."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import orjson
import pytest

from tests.builders.otlp import chat, new_trace_id, protobuf, span
from tests.builders.processes import free_port, minute_with_room
from tokentrace.jobs.evaluate import MAX_ATTEMPTS

CONTEXT = "Refunds are paid within five business days to the original card."


def _rag(answer: str, version: str) -> tuple[str, list[dict]]:
    trace_id = new_trace_id()
    retrieval = span(
        trace_id,
        name="retrieve kb",
        attributes={
            "gen_ai.operation.name": "retrieval",
            "gen_ai.data_source.id": "kb",
            "retrieval.documents.0.document.content": CONTEXT,
        },
    )
    call = chat(trace_id, model="gpt-4o-mini", input_tokens=120, output_tokens=30)
    call["attributes"] |= {
        "tokentrace.feature": "refund-chat",
        "tokentrace.prompt.version": version,
        "gen_ai.input.messages": orjson.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": "When will my refund be paid?"}]}]
        ).decode(),
        "gen_ai.output.messages": orjson.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": answer}]}]
        ).decode(),
    }
    return trace_id, [retrieval, call]


def test_a_server_grades_calls_as_they_arrive(start_server, provider_url, tmp_path):
    evaluators = tmp_path / "evaluators.toml"
    evaluators.write_text(
        f'[judge]\nurl = "{provider_url}/v1"\nmodel = "gpt-4o-mini"\n\n'
        '[[evaluators]]\nname = "groundedness"\nkind = "llm_judge"\ntemplate = "groundedness"\n'
        'where = { feature = "refund-chat" }\n\n'
        '[[evaluators]]\nname = "no-voucher"\nkind = "regex"\npattern = "voucher"\nmust_match = false\n'
    )
    server = start_server("--evaluators", str(evaluators), "--evaluate-interval", "1s")
    good, good_spans = _rag(CONTEXT, "v3")
    bad, bad_spans = _rag("Refunds arrive instantly as store credit plus a bonus voucher.", "v4")
    assert server.post_traces(protobuf(good_spans + bad_spans)).status_code == 200
    server.wait_for_spans(4)
    deadline = time.monotonic() + 30
    while True:
        scores = {t: server.get(f"/api/v1/traces/{t}")["scores"] for t in (good, bad)}
        if all(len(found) == 2 for found in scores.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    by_name = {t: {s["name"]: s for s in found} for t, found in scores.items()}
    assert by_name[good]["groundedness"]["value"] == 1.0 and by_name[good]["no-voucher"]["value"] == 1.0
    assert by_name[bad]["groundedness"]["value"] < 0.4 and by_name[bad]["no-voucher"]["value"] == 0.0
    assert {s["source"] for found in scores.values() for s in found} == {"evaluator"}
    listed = {e["name"]: e for e in server.get("/api/v1/evaluators")["evaluators"]}
    assert listed["groundedness"]["evaluations"] == {"done": 2}
    assert listed["groundedness"]["judge_model"] == "gpt-4o-mini" and listed["no-voucher"]["kind"] == "regex"
    assert listed["groundedness"]["judge_spend_today_usd"] > 0  # the judge's usage, priced
    assert listed["no-voucher"]["judge_spend_today_usd"] is None
    # The judge's calls are traces of their own project, opened with a key made for it; the
    # project's own spend has none of them.
    project = server.get("/api/v1/evaluators")["judge_calls_project"]
    with server.client() as admin:
        key = admin.post("/api/v1/projects", json={"name": project}).json()["api_key"]
    judged = server.get("/api/v1/traces", key)["traces"]
    assert len(judged) == 2 and {t["feature"] for t in judged} == {"groundedness"}
    assert sum(t["cost_usd"] for t in judged) == pytest.approx(
        listed["groundedness"]["judge_spend_today_usd"]
    )
    [judge_call] = server.get(f"/api/v1/traces/{judged[0]['trace_id']}", key)["roots"]
    assert judge_call["tenant_id"] == "default" and judge_call["request_model"] == "gpt-4o-mini"
    app_spend = server.get("/api/v1/rollups", group_by="feature", since="1h")["rows"]
    assert [r["feature"] for r in app_spend if r["cost_usd"]] == ["refund-chat"]
    # the evaluators page (and API) count them for the project they judged
    calls = server.get("/api/v1/evaluators")["evaluators"][0]["judge_calls_24h"]
    assert calls["requests"] == 2 and calls["cost_usd"] == pytest.approx(sum(t["cost_usd"] for t in judged))
    with server.client() as browser:
        page = browser.get("/evaluators").text
    row = page.split('data-evaluator="groundedness"', 1)[1].split("</tr>", 1)[0]
    assert 'data-field="done">2<' in row and 'data-field="judge-calls">2<' in row
    assert 'data-evaluator="no-voucher"' in page
    # a judged call's page leads to its judge's calls (a rule's verdict has none); another
    # project's key does not open them
    with server.client() as browser:
        trace_page = browser.get(f"/traces/{bad}").text
        link = re.search(
            r'<a href="(/judge-calls/[0-9a-f]{32})" data-judge-calls="groundedness">', trace_page
        )
        assert link and 'data-judge-calls="no-voucher"' not in trace_page
        judge_page = browser.get(link[1]).text
        assert "Judge calls" in judge_page and "ungrounded" in judge_page  # the judge's reply
        assert f'href="/traces/{bad}?span=' in judge_page  # back to what it judged
        other = browser.post("/api/v1/projects", json={"name": "other"}).json()["api_key"]
    assert server.client(other).get(link[1]).status_code == 404


def test_a_bad_evaluators_file_stops_serve_with_its_file_and_line(tmp_path):
    evaluators = tmp_path / "evaluators.toml"
    evaluators.write_text('[[evaluators]]\nname = "x"\nkind = "regex"\npattern = "("\n')
    done = subprocess.run(
        [sys.executable, "-m", "tokentrace.cli", "serve", "--data-dir", str(tmp_path / "data"), "--port",
         str(free_port()), "--grpc-port", str(free_port()), "--evaluators", str(evaluators)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert "evaluators.toml, line 4: evaluators[0]: pattern is not a regular expression" in lines[0]


def _judge_file(path, provider_url: str, headers: str = "", limit: str = "", more: str = "") -> None:
    path.write_text(
        f'[judge]\nurl = "{provider_url}/v1"\nmodel = "gpt-4o-mini"\n{headers}\n'
        f'[[evaluators]]\nname = "groundedness"\nkind = "llm_judge"\ntemplate = "groundedness"\n{limit}{more}'
    )


def _evaluations(server, want: dict[str, dict[str, int]], timeout: float = 40) -> dict[str, dict]:
    """The evaluators listed, once their evaluations by state are `want` (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while True:
        listed = {e["name"]: e for e in server.get("/api/v1/evaluators")["evaluators"]}
        if {n: e["evaluations"] for n, e in listed.items()} == want or time.monotonic() > deadline:
            return listed
        time.sleep(0.3)


def test_a_judge_answering_429_is_asked_again_when_it_says(start_server, provider_url, tmp_path):
    # The simulated provider answers each distinct request of the first judge 429 twice, then
    # grades it; the second judge always answers 429. Both ask again after 100 ms (their
    # Retry-After), where the backoff alone would wait 5, 10, 20 … s.
    evaluators = tmp_path / "evaluators.toml"
    _judge_file(
        evaluators,
        provider_url,
        'headers = { "x-simulate" = "fail_first=2; retry_after_ms=100" }',
        more=(
            '\n[[evaluators]]\nname = "relevance"\nkind = "llm_judge"\ntemplate = "relevance"\n'
            f'judge = {{ url = "{provider_url}/v1", model = "gpt-4o-mini", '
            'headers = { "x-simulate" = "error=429; retry_after_ms=100" } }\n'
        ),
    )
    server = start_server("--evaluators", str(evaluators), "--evaluate-interval", "1s")
    traces = [_rag(CONTEXT, "v3"), _rag("Refunds arrive instantly as store credit.", "v4")]
    assert server.post_traces(protobuf([s for _, spans in traces for s in spans])).status_code == 200
    server.wait_for_spans(4)
    listed = _evaluations(server, {"groundedness": {"done": 2}, "relevance": {"failed": 2}})
    assert listed["groundedness"]["evaluations"] == {"done": 2}  # asked three times each
    [good], [bad] = (server.get(f"/api/v1/traces/{t}")["scores"] for t, _ in traces)
    assert good["value"] == 1.0 and bad["value"] < 0.4
    assert listed["relevance"]["evaluations"] == {"failed": 2}
    reasons = {f["error"] for f in listed["relevance"]["latest_failures"]}
    assert reasons == {f"the judge answered 429 ({MAX_ATTEMPTS} attempts)"}
    # every attempt is a span of its evaluation's trace: each call graded on its third, each
    # relevance evaluation failed after its fifth, the 429s errors of type rate_limit
    with server.client() as admin:
        key = admin.post("/api/v1/projects", json={"name": "tokentrace-evals"}).json()["api_key"]
    judged = server.get("/api/v1/traces", key, limit=10)["traces"]
    attempts = sorted((t["feature"], t["spans"], t["error_types"]) for t in judged)
    graded, failed = ("groundedness", 3, ["rate_limit"]), ("relevance", MAX_ATTEMPTS, ["rate_limit"])
    assert attempts == [graded, graded, failed, failed]
    errors = server.get("/api/v1/rollups", key, group_by="error_type", since="1h")["rows"]
    assert {r["error_type"]: r["errors"] for r in errors if r["error_type"]} == {
        "rate_limit": 4 + 2 * MAX_ATTEMPTS
    }


def test_a_server_killed_mid_queue_finishes_the_queue_once(start_server, provider_url, tmp_path):
    evaluators = tmp_path / "evaluators.toml"
    # One judge call a minute: the first is graded, three stay queued in the store.
    _judge_file(evaluators, provider_url, limit="rate_limit_per_minute = 1\n")
    data = tmp_path / "data"
    server = start_server("--evaluators", str(evaluators), "--evaluate-interval", "1s", data_dir=data)
    traces = [_rag(CONTEXT, "v3") for _ in range(4)]
    # The limit counts per clock minute: a minute mark between the first grade and the kill let
    # the job grade a second call, so the steps up to the kill start with the minute's room.
    minute_with_room(20)
    assert server.post_traces(protobuf([s for _, spans in traces for s in spans])).status_code == 200
    server.wait_for_spans(8)
    listed = _evaluations(server, {"groundedness": {"done": 1, "due": 3}})
    assert listed["groundedness"]["evaluations"] == {"done": 1, "due": 3}
    before = {t: found for t, _ in traces if (found := server.get(f"/api/v1/traces/{t}")["scores"])}
    server.kill9()

    _judge_file(evaluators, provider_url)  # the same evaluator (name, version), no limit
    server.start()
    listed = _evaluations(server, {"groundedness": {"done": 4}})
    assert listed["groundedness"]["evaluations"] == {"done": 4}
    after = {t: server.get(f"/api/v1/traces/{t}")["scores"] for t, _ in traces}
    assert all(len(found) == 1 for found in after.values()), after  # one score each, none twice
    [(graded, first)] = before.items()
    assert after[graded] == first  # graded before the kill and not again: the same created_at


def test_evaluators_added_through_the_api_grade_the_projects_calls(start_server, provider_url, tmp_path):
    """A project adds a relevance judge (the server's judge) and a rule through the API: the
    calls it sends from then on are graded by both, another project's are not; what cannot be an
    evaluator of the API is refused with its reason, and a removed one grades nothing more."""
    evaluators = tmp_path / "evaluators.toml"
    _judge_file(evaluators, provider_url)
    server = start_server("--evaluators", str(evaluators), "--evaluate-interval", "1s")
    with server.client() as api:
        relevance = {"name": "relevance", "kind": "llm_judge", "template": "relevance"}
        added = api.post("/api/v1/evaluators", json=relevance)
        assert added.status_code == 201 and added.json()["source"] == "api"
        rule = {"name": "no-voucher", "kind": "regex", "pattern": "voucher", "must_match": False}
        assert api.post("/api/v1/evaluators", json=rule).status_code == 201
        refused = {
            "groundedness": api.post("/api/v1/evaluators", json={**relevance, "name": "groundedness"}),
            "judge": api.post("/api/v1/evaluators", json={**relevance, "name": "x", "judge": {"url": "http://x"}}),
            "kind": api.post("/api/v1/evaluators", json={"name": "x", "kind": "vibes"}),
        }  # fmt: skip
        assert refused["groundedness"].status_code == 409  # the file's
        assert "uses the server's judge" in refused["judge"].json()["error"]
        assert "kind must be one of" in refused["kind"].json()["error"]
        other = api.post("/api/v1/projects", json={"name": "other"}).json()["api_key"]
    listed = {e["name"]: e["source"] for e in server.get("/api/v1/evaluators")["evaluators"]}
    assert listed == {"groundedness": "file", "relevance": "api", "no-voucher": "api"}
    assert [e["name"] for e in server.get("/api/v1/evaluators", other)["evaluators"]] == ["groundedness"]

    time.sleep(1.5)  # the job's next run reads the evaluators added
    good, good_spans = _rag(CONTEXT, "v3")
    assert server.post_traces(protobuf(good_spans)).status_code == 200
    theirs, their_spans = _rag(CONTEXT, "v3")
    assert server.post_traces(protobuf(their_spans), other).status_code == 200
    server.wait_for_spans(2)
    _evaluations(server, {"groundedness": {"done": 1}, "relevance": {"done": 1}, "no-voucher": {"done": 1}})
    assert {s["name"] for s in server.get(f"/api/v1/traces/{good}")["scores"]} == {
        "groundedness", "relevance", "no-voucher"
    }  # fmt: skip
    deadline = time.monotonic() + 20
    while len(server.get(f"/api/v1/traces/{theirs}", other)["scores"]) < 1 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert [s["name"] for s in server.get(f"/api/v1/traces/{theirs}", other)["scores"]] == ["groundedness"]

    with server.client() as api:
        assert api.delete("/api/v1/evaluators/no-voucher").status_code == 204
        assert api.delete("/api/v1/evaluators/no-voucher").status_code == 404
        assert api.delete("/api/v1/evaluators/groundedness").status_code == 409
    time.sleep(1.5)
    later, later_spans = _rag(CONTEXT, "v3")
    assert server.post_traces(protobuf(later_spans)).status_code == 200
    server.wait_for_spans(4)  # the project's (the other's are counted apart)
    _evaluations(server, {"groundedness": {"done": 2}, "relevance": {"done": 2}})
    assert {s["name"] for s in server.get(f"/api/v1/traces/{later}")["scores"]} == {
        "groundedness",
        "relevance",
    }
