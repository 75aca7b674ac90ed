"""The SDK's setup mistakes each get one line naming the fix, and an app whose backend is down
exits promptly: real apps in subprocesses, a real server."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.builders.paths import ROOT
from tests.builders.processes import free_port

APP = """
import sys
import tokentrace
from opentelemetry import trace

endpoint = sys.argv[1] if len(sys.argv) > 1 else None
tokentrace.init("setup-check", endpoint=endpoint or None)
with trace.get_tracer("check").start_as_current_span("work"):
    pass
import time
time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0)  # the endpoint check runs meanwhile
"""


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    variables = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TOKENTRACE_"))}
    return subprocess.run(
        [sys.executable, "-c", APP, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**variables, **env},
        timeout=60,
    )


def _warnings(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [line for line in result.stderr.splitlines() if "tokentrace:" in line]


def test_a_backend_that_is_down_holds_the_exit_two_seconds_and_says_so_once():
    nowhere = f"http://127.0.0.1:{free_port()}"
    began = time.monotonic()
    result = _run(nowhere, "0.5", OTEL_EXPORTER_OTLP_TRACES_TIMEOUT="30")
    took = time.monotonic() - began
    lines = _warnings(result)
    assert any(f"nothing answers at {nowhere}/v1/traces" in line for line in lines), result.stderr
    [unsent] = [line for line in lines if "not sent" in line]
    assert "1 spans were not sent" in unsent and "TOKENTRACE_EXIT_FLUSH_SECONDS" in unsent
    assert "Transient error" not in result.stderr and "Traceback" not in result.stderr
    assert took < 10, took  # python and the imports, the 2 s bound: not the exporter's 30 s


def test_an_endpoint_without_its_scheme_is_used_with_http_and_said(server):
    bare = server.url.removeprefix("http://")
    lines = _warnings(_run(bare, "1"))
    assert [line for line in lines if "has no scheme" in line] == [  # once, for traces and scores alike
        f"tokentrace: the endpoint '{bare}' has no scheme; using {server.url} (write it with http:// or https://)"
    ]
    assert server.wait_for_spans(1)["spans"] == 1  # and the span arrived


def test_a_base_url_ending_in_the_traces_path_is_forgiven_and_said(server):
    lines = _warnings(_run("", "1", OTEL_EXPORTER_OTLP_ENDPOINT=f"{server.url}/v1/traces"))
    assert len([line for line in lines if "OTEL_EXPORTER_OTLP_ENDPOINT is a base URL" in line]) == 1
    assert server.wait_for_spans(1)["spans"] == 1


def test_a_path_that_takes_no_spans_and_a_refused_key_name_the_fix(start_server):
    server = start_server("--require-key", "--admin-token", "admin-secret")
    lines = _warnings(_run(f"{server.url}/otlp", "2"))
    assert any(f"nothing takes spans at {server.url}/otlp/v1/traces (404)" in line for line in lines)
    lines = _warnings(_run(server.url, "2", TOKENTRACE_API_KEY="tt-wrong"))
    assert any("refused the API key (401)" in line and "TOKENTRACE_API_KEY" in line for line in lines)


def test_a_right_setup_says_nothing(server):
    assert _warnings(_run(server.url, "1")) == []
    assert server.wait_for_spans(1)["spans"] == 1


LAZY_APP = """
import sys
import tokentrace

tokentrace.init("lazy", endpoint=sys.argv[1])
# neither provider SDK, nor the OTLP exporter's protobuf and requests (made on the first export)
loaded = sorted({"openai", "anthropic", "google.protobuf", "requests"} & set(sys.modules))
import openai  # instrumented as it is imported

client = openai.OpenAI(base_url=sys.argv[2] + "/v1", api_key="sk-test")
answer = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
print(loaded, answer.usage.prompt_tokens)
tokentrace.flush()
"""


def test_init_loads_no_provider_sdk_nor_exporter_and_instruments_one_when_imported(server, provider_url):
    result = subprocess.run(
        [sys.executable, "-c", LAZY_APP, server.url, provider_url],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    loaded, prompt_tokens = result.stdout.strip().rsplit(" ", 1)
    assert loaded == "[]"  # init imported neither SDK, nor the exporter (the span still arrives)
    server.wait_for_spans(1)
    [trace] = server.get("/api/v1/traces", since="1h")["traces"]
    assert trace["input_tokens"] == int(prompt_tokens) > 0  # the call was recorded, with its usage
