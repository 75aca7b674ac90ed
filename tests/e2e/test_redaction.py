"""Secrets and PII are redacted before anything is written: the data directory (spool, store,
write-ahead log) never holds the planted secret; with --no-redact the same grep finds it."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.builders.otlp import chat, new_trace_id, protobuf
from tests.builders.processes import ServerProcess

SECRET = "sk-proj-PLANTEDsecret0123456789abcdefXYZ"
EMAIL = "jane.doe.planted@example.org"


def _holding(data: Path, needle: str) -> list[str]:
    return [str(p) for p in data.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def _send(server: ServerProcess) -> str:
    trace_id = new_trace_id()
    call = chat(trace_id, input_tokens=10, output_tokens=2)
    call["attributes"].update(
        {
            "gen_ai.input.messages": orjson.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": f"my key is {SECRET}"}]}]
            ).decode(),
            "app.note": f"mail {EMAIL}",
        }
    )
    call["status_message"] = f"auth failed for {SECRET}"
    assert server.post_traces(protobuf([call])).status_code == 200
    scored = {"trace_id": trace_id, "name": "helpful", "value": 0, "comment": f"from {EMAIL}"}
    with server.client() as c:
        assert c.post("/api/v1/scores", json=scored).status_code == 200
    return trace_id


@pytest.mark.parametrize("redacting", [True, False], ids=["default", "no-redact"])
def test_the_planted_secret_is_nowhere_in_the_data_dir(tmp_path, redacting):
    data = tmp_path / "data"
    server = ServerProcess(data, *([] if redacting else ["--no-redact"])).start()
    try:
        trace_id = _send(server)
        in_spool = _holding(data / "spool", SECRET) + _holding(data / "spool", EMAIL)
        server.wait_for_spans(1)
        detail = server.get(f"/api/v1/traces/{trace_id}")
    finally:
        server.stop()
    found = _holding(data, SECRET) + _holding(data, EMAIL)
    if redacting:
        assert not in_spool and not found, found
        text = orjson.dumps(detail).decode()
        assert "[API_KEY]" in text and "[EMAIL]" in text
    else:  # the same grep finds them when nothing redacts: the check above can fail
        assert in_spool and found
