"""The SDK in a real application process: openai calls through the real SDK to the simulated
provider, exported over OTLP to a real `tokentrace serve`, checked through the API."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import orjson
import pytest
from genai_prices import Usage, calc_price

from tests.builders.paths import ROOT
from tests.builders.processes import ServerProcess

TAGS = {
    "tenant_id": "acme",
    "user_id": "u42",
    "feature": "refund-chat",
    "session_id": "s-9",
    "prompt_template": "refund",
    "prompt_version": "v3",
}


def run_app(scenario: str, provider_url: str, server: ServerProcess) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "tests.sdk.app", scenario, provider_url, server.url],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return orjson.loads(result.stdout.strip().splitlines()[-1])


def spans_of(server: ServerProcess, trace_id: str, count: int) -> list[dict]:
    server.wait_for_spans(count)
    tree = server.get(f"/api/v1/traces/{trace_id}")
    flat, stack = [], list(tree["roots"])
    while stack:
        node = stack.pop()
        flat.append(node)
        stack.extend(node["children"])
    return flat


def test_agent_trace_with_tags_tokens_and_cost(server, provider_url):
    facts = run_app("agent", provider_url, server)
    spans = {s["name"]: s for s in spans_of(server, facts["trace_id"], 4)}
    assert set(spans) == {"invoke_agent support", "retrieval kb", "chat gpt-4o", "execute_tool lookup_order"}
    for span in spans.values():
        assert {k: span[k] for k in TAGS} == TAGS, span["name"]
        assert span["service_name"] == "sdk-test-app" and span["environment"] == "test"
    root = spans["invoke_agent support"]
    assert (
        root["operation"] == "invoke_agent"
        and root["agent_name"] == "support"
        and root["parent_span_id"] == ""
    )
    assert spans["retrieval kb"]["operation"] == "retrieval" and spans["retrieval kb"]["data_source"] == "kb"
    tool = spans["execute_tool lookup_order"]
    assert tool["operation"] == "execute_tool" and tool["tool_name"].endswith("lookup_order")

    chat = spans["chat gpt-4o"]
    usage = facts["usage"]
    assert chat["parent_span_id"] == root["span_id"] and chat["kind"] == "client"
    assert (chat["provider"], chat["request_model"], chat["response_model"]) == (
        "openai",
        "gpt-4o",
        facts["model"],
    )
    assert (
        chat["input_tokens"] == usage["prompt_tokens"] and chat["output_tokens"] == usage["completion_tokens"]
    )
    assert chat["cache_read_tokens"] == 0 and chat["reasoning_tokens"] == 0  # the provider said 0
    assert (chat["temperature"], chat["max_tokens"], chat["finish_reason"], chat["streaming"]) == (
        0.2,
        300,
        "stop",
        False,
    )
    expected = calc_price(
        Usage(input_tokens=usage["prompt_tokens"], output_tokens=usage["completion_tokens"]),
        facts["model"],
        provider_id="openai",
        genai_request_timestamp=datetime.now(UTC),
    )
    assert chat["cost_usd"] == pytest.approx(float(expected.total_price), abs=1e-12)


def test_a_session_is_scored_as_a_whole_outside_any_trace(server, provider_url):
    facts = run_app("agent", provider_url, server)
    spans_of(server, facts["trace_id"], 4)
    deadline = time.monotonic() + 20
    while not (scores := server.get("/api/v1/sessions/s-9")["scores"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    [resolved] = scores
    assert (resolved["name"], resolved["value"], resolved["source"]) == ("resolved", 0.0, "sdk")
    assert (resolved["session_id"], resolved["trace_id"], resolved["comment"]) == ("s-9", "", "asked twice")
    assert resolved["score_id"] == facts["resolved_id"]


def test_streams_responses_and_embeddings(server, provider_url):
    facts = run_app("streams", provider_url, server)
    spans = spans_of(server, facts["trace_id"], 5)
    chats = sorted((s for s in spans if s["name"] == "chat gpt-4o-mini"), key=lambda s: s["start_time"])
    with_usage, without = chats
    assert with_usage["streaming"] is True and with_usage["ttft_ms"] > 0 and with_usage["tpot_ms"] is not None
    assert with_usage["input_tokens"] == facts["with_usage"]["prompt_tokens"]
    assert with_usage["output_tokens"] == facts["with_usage"]["completion_tokens"]
    assert with_usage["finish_reason"] == "stop"
    # no usage was asked for, so none is reported (never estimated), yet the call is traced
    assert without["input_tokens"] is None and without["output_tokens"] is None
    assert without["streaming"] is True and without["finish_reason"] == "stop"

    [response] = [s for s in spans if s["name"] == "chat gpt-4o"]
    assert response["input_tokens"] == facts["responses_usage"]["input_tokens"]
    assert response["output_tokens"] == facts["responses_usage"]["output_tokens"]
    assert response["finish_reason"] == "stop" and response["ttft_ms"] > 0

    [embedding] = [s for s in spans if s["operation"] == "embeddings"]
    assert embedding["input_tokens"] == facts["embedding_tokens"] and embedding["cost_known"] is True


def test_tags_follow_asyncio_tasks_and_nested_contexts(server, provider_url):
    facts = run_app("async", provider_url, server)
    spans = [s for s in spans_of(server, facts["trace_id"], 5) if s["operation"] == "chat"]
    tenants = sorted(s["tenant_id"] for s in spans)
    assert tenants == ["outer", "outer", "t1", "t2"]  # context(tenant_id=None) keeps the outer one
    assert {s["user_id"] for s in spans} == {"u-async"}
    [stream] = [s for s in spans if s["streaming"]]
    assert stream["output_tokens"] == facts["stream_usage"]["completion_tokens"]


def test_tags_and_parents_follow_threads(server, provider_url):
    facts = run_app("threads", provider_url, server)
    spans = spans_of(server, facts["trace_id"], 4)
    [root] = [s for s in spans if s["name"] == "thread-root"]
    chats = [s for s in spans if s["operation"] == "chat"]
    assert len(chats) == 3
    assert all(c["parent_span_id"] == root["span_id"] and c["tenant_id"] == "threaded" for c in chats)


def test_retry_attempts_are_child_spans_and_errors_are_typed(server, provider_url):
    facts = run_app("failures", provider_url, server)
    spans = spans_of(server, facts["trace_id"], 8)
    calls = [s for s in spans if s["operation"] == "chat"]
    flaky = next(c for c in calls if c["status"] != "error")
    assert flaky["attributes"]["tokentrace.attempts"] == 3 and flaky["output_tokens"] > 0
    attempts = sorted(flaky["children"], key=lambda s: s["retry_attempt"])
    assert [a["retry_attempt"] for a in attempts] == [0, 1, 2]
    assert [a["error_type"] for a in attempts] == ["rate_limit", "rate_limit", None]
    assert all(
        a["operation"] == "other" and a["input_tokens"] is None for a in attempts
    )  # never counted twice
    errors = sorted(c["error_type"] for c in calls if c["status"] == "error")
    assert errors == ["context_length", "rate_limit", "server_error"]
    rollup = server.get("/api/v1/rollups", group_by="error_type")["rows"]
    assert sum(r["requests"] for r in rollup) == 4


def test_the_app_keeps_working_while_the_backend_is_down_and_loses_nothing(tmp_path, provider_url):
    server = ServerProcess(tmp_path / "data")  # not started: nothing listens on its port yet
    app = subprocess.Popen(
        [sys.executable, "-m", "tests.sdk.app", "backend-down", provider_url, server.url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        # The exporter retries for its timeout (10 s by default); a server slow to start on a
        # loaded CI machine must still come up within it.
        # The app waits at exit for them too (2 s by default).
        env={**os.environ, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "30", "TOKENTRACE_EXIT_FLUSH_SECONDS": "30"},
    )
    try:
        facts = orjson.loads(app.stdout.readline())  # the app's calls all succeeded
        assert facts["usage"]["prompt_tokens"] > 0
        # Stay down past the batch processor's 5 s schedule, so an export really fails first
        # and only the exporter's retries can deliver it.
        time.sleep(6)
        server.start()
        app.stdin.write("\n")
        app.stdin.flush()
        _, stderr = app.communicate(timeout=60)
        assert app.returncode == 0, stderr
        assert "nothing answers at" in stderr  # the one clear warning
        spans = spans_of(server, facts["trace_id"], 4)
        assert len(spans) == 4
    finally:
        app.kill()
        server.stop()


def test_anthropic_calls_count_once_with_cache_tokens_in_the_otel_meaning(server, provider_url):
    facts = run_app("anthropic", provider_url, server)
    spans = spans_of(server, facts["trace_id"], 9)
    calls = sorted((s for s in spans if s["operation"] == "chat"), key=lambda s: s["start_time"])
    assert len(calls) == 6  # one span per call: anthropic's own span is off
    assert not [s for s in spans if s["name"].startswith("anthropic.")]
    assert all(c["provider"] == "anthropic" and c["tenant_id"] == "acme" for c in calls)

    first, second, raw_stream, helper, async_plain, async_helper = calls
    usage = facts["first"]
    assert first["cache_write_tokens"] == usage["cache_creation_input_tokens"] > 1024
    assert first["input_tokens"] == usage["input_tokens"] + usage["cache_creation_input_tokens"]
    usage = facts["second"]
    assert second["cache_read_tokens"] == usage["cache_read_input_tokens"] > 1024
    assert second["input_tokens"] == usage["input_tokens"] + usage["cache_read_input_tokens"]
    assert second["attributes"]["tokentrace.attempts"] == 2 and len(second["children"]) == 2
    assert first["finish_reason"] == "stop" and first["cost_known"] is True
    assert first["cost_usd"] > second["cost_usd"]  # a cache write costs more than a cache read

    assert raw_stream["streaming"] is True and raw_stream["output_tokens"] == facts["raw_stream_output"]
    assert raw_stream["ttft_ms"] > 0
    assert helper["output_tokens"] == facts["helper_usage"]["output_tokens"] == facts["helper_words"]
    assert helper["streaming"] is True and helper["ttft_ms"] > 0
    assert async_plain["output_tokens"] == facts["async_usage"]["output_tokens"]
    assert async_helper["streaming"] is True and async_helper["output_tokens"] > 0


def _detail(server: ServerProcess, trace_id: str, span: dict) -> dict:
    return server.get(f"/api/v1/traces/{trace_id}/spans/{span['span_id']}")


def _texts(messages: list[dict]) -> str:
    return " ".join(p.get("content") or "" for m in messages for p in m["parts"] if p["type"] == "text")


def test_content_capture_redacts_caps_and_records_every_shape(start_server, provider_url):
    # The server redacts too; with --no-redact only the SDK can have kept the secrets out.
    server = start_server("--no-redact")
    facts = run_app("content", provider_url, server)
    spans = spans_of(server, facts["trace_id"], 12)
    calls = sorted((s for s in spans if s["operation"] == "chat"), key=lambda s: s["start_time"])
    assert len(calls) == 11
    plain, tool, stream, good_json, bad_json, refused, parsed, helper, long, responses, claude = (
        _detail(server, facts["trace_id"], c)["content"] for c in calls
    )
    # secrets never left the app; the rest of the prompt did
    sent = _texts(plain["input_messages"])
    assert "jane.doe@example.com" not in sent and "4111" not in sent and "sk-proj-" not in sent
    assert "I am [EMAIL], card [CARD], key [API_KEY]" in sent
    assert plain["input_messages"][0] == {
        "role": "system",
        "parts": [{"type": "text", "content": "You are a support agent."}],
    }
    assert _texts(plain["output_messages"]) == facts["plain_answer"]
    assert plain["output_messages"][0]["finish_reason"] == "stop"
    # a tool call out, then its result back in, then a streamed answer gathered from deltas
    [call_part] = tool["output_messages"][0]["parts"]
    assert call_part == {"type": "tool_call", **facts["tool_call"]}
    assert stream["input_messages"][-1] == {
        "role": "tool",
        "parts": [
            {
                "type": "tool_call_response",
                "id": facts["tool_call"]["id"],
                "response": '{"status": "shipped"}',
            }
        ],
    }
    assert stream["input_messages"][-2]["parts"][0]["type"] == "tool_call"
    assert _texts(stream["output_messages"]) == facts["streamed_answer"]
    assert _texts(good_json["output_messages"]) == facts["json_answer"]
    assert _texts(bad_json["output_messages"]).startswith('{"answer"')  # cut short by the model
    assert refused["output_messages"][0]["parts"] == [{"type": "text", "content": facts["refusal"]}]
    # the parse() and stream() helpers
    assert calls[6]["attributes"]["gen_ai.output.type"] == "json"
    assert calls[6]["attributes"]["tokentrace.output.json_valid"] is True
    assert facts["parsed"] in _texts(parsed["output_messages"])
    assert calls[7]["streaming"] is True and calls[7]["ttft_ms"] is not None
    assert _texts(helper["output_messages"]) == facts["helper_answer"]
    # the size cap
    [long_text] = long["input_messages"][0]["parts"]
    assert long_text["content"].startswith("x" * 2000) and long_text["content"].endswith(
        "[3000 more characters not recorded]"
    )
    assert responses["system_instructions"] == [{"type": "text", "content": "Be brief."}]
    assert _texts(responses["input_messages"]) == "Where is my parcel?"
    assert claude["system_instructions"] == [{"type": "text", "content": "Refund policy applies."}]
    assert [m["role"] for m in claude["input_messages"]] == ["user", "assistant", "tool"]
    assert claude["input_messages"][2]["parts"] == [
        {"type": "tool_call_response", "id": "tu_1", "response": "shipped"}
    ]
    assert _texts(claude["output_messages"]) == facts["claude_answer"]

    # the rule checks and the SDK's own scores, all on the one trace
    scores = server.get(f"/api/v1/traces/{facts['trace_id']}")["scores"]
    by_name = {}
    for s in scores:
        by_name.setdefault(s["name"], []).append(s)
    assert [s["span_id"] for s in by_name["invalid_json"]] == [calls[4]["span_id"]]
    assert [s["span_id"] for s in by_name["refusal"]] == [calls[5]["span_id"]]
    assert calls[3]["attributes"]["tokentrace.output.json_valid"] is True
    [helpful] = by_name["helpful"]
    assert (
        helpful["score_id"] == facts["helpful_id"] and helpful["value"] == 1.0 and helpful["source"] == "sdk"
    )
    assert helpful["comment"] == "thumbs up" and helpful["span_id"] == next(
        s["span_id"] for s in spans if s["name"] == "content-root"
    )
    [quality] = by_name["quality"]
    assert quality["score_id"] == facts["quality_id"] and quality["value"] == 0.8 and quality["span_id"] == ""
    assert "orphan" not in facts and "orphan" not in by_name


def test_a_call_made_with_instrumentation_suppressed_records_no_span(server, provider_url):
    facts = run_app("suppressed", provider_url, server)
    assert {s["name"] for s in spans_of(server, facts["trace_id"], 2)} == {"after", "chat gpt-4o-mini"}
    time.sleep(1)  # anything else would have been exported with them
    assert server.get("/api/v1/stats")["spans"] == 2


def test_content_is_not_recorded_unless_asked(server, provider_url):
    facts = run_app("agent", provider_url, server)
    spans = spans_of(server, facts["trace_id"], 4)
    [chat] = [s for s in spans if s["operation"] == "chat"]
    assert _detail(server, facts["trace_id"], chat)["content"] is None
    assert not any(k.startswith("gen_ai.input") for k in chat["attributes"])


def test_an_app_with_a_provider_of_its_own_keeps_every_span_in_its_processors(server, provider_url):
    """tokentrace joins the app's provider: the app's own processor sees the LLM span, tags and
    usage included, and so does the server."""
    facts = run_app("joined", provider_url, server)
    assert facts["seen"] == ["_Span"]  # an OTel SDK span was current while the request went
    [mine] = facts["mine"]
    assert mine["name"] == "chat gpt-4o-mini"
    assert mine["attributes"]["tenant.id"] == "acme"
    assert mine["attributes"]["gen_ai.usage.input_tokens"] > 0
    [stored] = spans_of(server, mine["trace_id"], 1)
    assert stored["tenant_id"] == "acme"
    assert stored["input_tokens"] == mine["attributes"]["gen_ai.usage.input_tokens"]


def test_a_processor_added_after_init_sees_the_calls_made_from_then_on(server, provider_url):
    """With tokentrace's own provider a call records a CallSpan; once the app adds a processor
    of its own, calls get OTel SDK spans again, so that processor misses none of them."""
    facts = run_app("added-processor", provider_url, server)
    assert facts["seen"] == ["CallSpan", "_Span"]
    [mine] = facts["mine"]
    assert mine["attributes"]["tenant.id"] == "acme"
    assert mine["attributes"]["gen_ai.response.finish_reasons"] == ["stop"]
    server.wait_for_spans(2)
    assert server.get("/api/v1/stats")["spans"] == 2


def test_audio_heard_and_spoken_is_priced_at_its_own_rates(server, provider_url):
    """Through the real OpenAI SDK: the audio tokens the answer reports (heard in the prompt,
    spoken in the answer) are recorded as their own kinds and priced at gpt-audio's audio rates,
    equal to genai-prices' own calculation; a text-only call on the model has none."""
    facts = run_app("audio", provider_url, server)
    assert facts["transcript"]
    calls = sorted(
        (s for s in spans_of(server, facts["trace_id"], 3) if s["operation"] == "chat"),
        key=lambda s: s["start_time"],
    )
    spoken, written = calls
    usage = facts["usage"][0]
    assert spoken["input_audio_tokens"] == usage["prompt_tokens_details"]["audio_tokens"] > 0
    assert spoken["output_audio_tokens"] == usage["completion_tokens_details"]["audio_tokens"] > 0
    assert written["input_audio_tokens"] is None and written["output_audio_tokens"] is None
    for call, reported in zip(calls, facts["usage"], strict=True):
        counted = Usage(
            input_tokens=reported["prompt_tokens"],
            output_tokens=reported["completion_tokens"],
            input_audio_tokens=reported["prompt_tokens_details"]["audio_tokens"],
            output_audio_tokens=reported["completion_tokens_details"]["audio_tokens"],
        )
        expected = calc_price(counted, "gpt-audio", provider_id="openai").total_price
        assert call["cost_usd"] == pytest.approx(float(expected), rel=1e-9)
    as_text = calc_price(
        Usage(input_tokens=usage["prompt_tokens"], output_tokens=usage["completion_tokens"]),
        "gpt-audio",
        provider_id="openai",
    )
    assert spoken["cost_usd"] > 3 * float(as_text.total_price)  # audio costs 6-13x text here


def test_each_call_is_priced_at_the_tier_it_was_served_at(server, provider_url):
    """The answered tier is the billed one: flex at gpt-5's flex price, priority at its priority
    price (streamed too), auto answered as default at the list price, Anthropic's priority at
    Anthropic's price for it; each equal to genai-prices' own calculation, and cost groups by tier."""
    facts = run_app("tiers", provider_url, server)
    calls = sorted(
        (s for s in spans_of(server, facts["trace_id"], 7) if s["operation"] == "chat"),
        key=lambda s: s["start_time"],
    )
    assert [c["service_tier"] for c in calls] == [
        "flex",
        "priority",
        "default",
        "priority",
        "flex",
        "priority",
    ]
    keys = ("flex", "priority", "auto", "priority-stream", "responses-flex", "anthropic")
    for call, key in zip(calls, keys, strict=True):
        usage = facts["usage"][key]
        if key == "anthropic":
            counted = Usage(
                input_tokens=usage["input_tokens"], output_tokens=usage["output_tokens"]
            )  # no cache use: the OTel count is Anthropic's
            provider, model, context = "anthropic", "claude-sonnet-4-5", {"service_tier": "priority"}
        else:
            tokens = (
                ("input_tokens", "output_tokens")
                if key.startswith("responses")
                else ("prompt_tokens", "completion_tokens")
            )
            counted = Usage(input_tokens=usage[tokens[0]], output_tokens=usage[tokens[1]])
            provider, model, context = "openai", "gpt-5", {"service_tier": call["service_tier"]}
        expected = calc_price(counted, model, provider_id=provider, price_context=context).total_price
        assert call["cost_usd"] == pytest.approx(float(expected), abs=1e-6), key
    flex, priority, default = calls[:3]
    assert flex["attributes"]["tokentrace.price.conditions"] == "service_tier=flex"
    assert "tokentrace.price.conditions" not in default["attributes"]
    per_token = [
        c["cost_usd"] / (c["input_tokens"] + 8 * c["output_tokens"]) for c in (flex, default, priority)
    ]
    assert per_token[0] < per_token[1] < per_token[2]  # flex is half the list price, priority double
    by_tier = {
        r["service_tier"]: r
        for r in server.get("/api/v1/rollups", group_by="service_tier", since="1h")["rows"]
    }
    assert by_tier["flex"]["requests"] == 2 and by_tier["priority"]["requests"] == 3


def test_a_self_hosted_deployments_calls_share_its_hour(start_server, provider_url, tmp_path):
    """Through the real OpenAI SDK to a Llama served on our own GPUs (the simulated provider as
    its OpenAI-compatible server): the calls carry the deployment, the amortize job gives each
    its share of the hour so far by tokens (estimated: the hour is open), the API and /cost show
    the deployment; the gpt-4o-mini call beside them is priced per token."""
    prices = tmp_path / "prices.toml"
    prices.write_text('[[deployments]]\nname = "llama-prod"\nmodel = "llama-3.1-8b*"\nusd_per_hour = 3.6\n')
    server = start_server("--prices", str(prices), "--amortize-interval", "1s")
    now = datetime.now(UTC)
    if now.minute >= 58:  # the test's calls and checks all within one open hour
        time.sleep(3600 - now.minute * 60 - now.second + 1)
    facts = run_app("self-hosted", provider_url, server)
    deadline = time.monotonic() + 30
    while True:
        spans = spans_of(server, facts["trace_id"], 5)
        llama = sorted((s for s in spans if s["deployment"]), key=lambda s: s["start_time"])
        if (len(llama) == 3 and all(s["cost_usd"] is not None for s in llama)) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert [s["request_model"] for s in llama] == ["llama-3.1-8b-instruct"] * 3
    tokens = [u["prompt_tokens"] + u["completion_tokens"] for u in facts["usage"]]
    assert [s["input_tokens"] + s["output_tokens"] for s in llama] == tokens
    assert all(s["attributes"]["tokentrace.price.amortized"] == "estimated" for s in llama)
    assert all(s["attributes"]["tokentrace.price.source"].startswith("deployment llama-prod") for s in llama)
    # shares of what the hour had cost when the job ran: each by its tokens (one export, one run)
    rates = [s["cost_usd"] / t for s, t in zip(llama, tokens, strict=True)]
    assert rates == pytest.approx([rates[0]] * 3) and rates[0] > 0
    minute = datetime.now(UTC).minute + 1
    assert sum(s["cost_usd"] for s in llama) <= 3.6 * minute / 60
    [gpt] = [s for s in spans if s["request_model"] == "gpt-4o-mini" and s["operation"] == "chat"]
    assert gpt["deployment"] is None and gpt["cost_usd"] > 0

    [report] = server.get("/api/v1/deployments", since="1h", detail="true")["deployments"]
    assert (report["name"], report["calls"], report["tokens"]) == ("llama-prod", 3, sum(tokens))
    assert report["amortized_usd"] == pytest.approx(sum(s["cost_usd"] for s in llama))
    assert report["busy_hours"] == 1 and report["idle_hours"] == 0 and 0 < report["hours"] <= 1
    assert report["cost_usd"] == pytest.approx(3.6 * report["hours"])
    assert report["detail"][0]["settled"] is False  # the hour is still open
    with server.client() as c:
        page = c.get("/cost", params={"since": "1h"}).text
    assert 'data-deployment="llama-prod"' in page


def test_batch_results_read_through_the_sdks_are_spans_at_the_batch_rate(server, provider_url):
    """OpenAI's Batch API (files.content of the output file batches.retrieve named) and Anthropic's
    messages.batches.results, through the real SDKs: each result read is a span under the app's
    current span, with its usage at genai-prices' batch rate, its custom_id and the tags of the
    context the batch was created in; an output file read twice counts once; a request that
    failed in the batch is an error span."""
    facts = run_app("batches", provider_url, server)
    spans = spans_of(server, facts["trace_id"], 1 + 3 * 3 + 3)  # the output file read three times
    results = {
        s["attributes"]["tokentrace.batch.custom_id"]: s
        for s in spans
        if "tokentrace.batch.id" in s["attributes"]
    }
    read = [s for s in spans if "tokentrace.batch.id" in s["attributes"]]
    assert len(read) == 3 * 3 + 3  # every read recorded; the counting below is once
    root = next(s for s in spans if s["name"] == "nightly")
    for result in facts["openai"]["results"]:
        span, usage = results[result["custom_id"]], result["response"]["body"]["usage"]
        assert span["parent_span_id"] == root["span_id"] and span["trace_id"] == facts["trace_id"]
        assert (span["service_tier"], span["tenant_id"], span["feature"]) == (
            "batch",
            "acme",
            "nightly-summary",
        )
        assert (span["input_tokens"], span["output_tokens"]) == (
            usage["prompt_tokens"],
            usage["completion_tokens"],
        )
        counted = Usage(input_tokens=usage["prompt_tokens"], output_tokens=usage["completion_tokens"])
        price = calc_price(
            counted, "gpt-4o-mini", provider_id="openai", price_context={"processing": "batch"}
        )
        assert span["cost_usd"] == pytest.approx(float(price.total_price), rel=1e-9)
    for result in facts["anthropic"]["results"][:2]:
        span = results[result["custom_id"]]
        usage = result["result"]["message"]["usage"]
        assert (span["provider"], span["service_tier"], span["tenant_id"]) == ("anthropic", "batch", "acme")
        assert span["output_tokens"] == usage["output_tokens"] and span["cost_usd"] > 0
    assert (results["broken"]["status"], results["broken"]["error_type"]) == ("error", "bad_request")
    # each OpenAI result three times (two reads, one async), counted once, and its cost once
    rows = server.get("/api/v1/rollups", since="1h", group_by="provider")["rows"]
    requests = {r["provider"]: r["requests"] for r in rows if r["requests"]}
    assert requests == {"openai": 3, "anthropic": 3}
    openai_cost = sum(results[r["custom_id"]]["cost_usd"] for r in facts["openai"]["results"])
    assert next(r["cost_usd"] for r in rows if r["provider"] == "openai") == pytest.approx(openai_cost)
