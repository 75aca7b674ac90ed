"""Evaluators in a running server (`serve --evaluators`): RAG calls sent over OTLP are graded by
the judge (the simulated provider) and by a rule as they arrive, their verdicts are scores on
the trace, and the API says what each evaluator has done; a bad evaluators file stops `serve`
with its file and line."""

from __future__ import annotations

import subprocess
import sys
import time

import orjson

from tests.builders.otlp import chat, new_trace_id, protobuf, span
from tests.builders.processes import free_port

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
