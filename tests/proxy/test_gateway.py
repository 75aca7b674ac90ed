"""The gateway as apps meet it: real openai and anthropic SDKs, a real `tokentrace proxy`
process, the simulated provider upstream and a real tokentrace server receiving its spans."""

from __future__ import annotations

import asyncio
import time

import anthropic
import httpx
import openai
import orjson
import pytest
from genai_prices import Usage, calc_price

from tests.builders.processes import minute_with_room
from tests.builders.receiver import Receiver

pytestmark = pytest.mark.e2e
TAGS = {
    "x-tokentrace-tenant": "acme",
    "x-tokentrace-user": "u42",
    "x-tokentrace-feature": "refund-chat",
    "x-tokentrace-session": "s-9",
    "x-tokentrace-prompt-template": "refund",
    "x-tokentrace-prompt-version": "v3",
}
ASK = [{"role": "user", "content": "Where is my refund for order 1234?"}]
CLAUDE = "claude-3-5-sonnet-latest"


def spans_of(server, count: int) -> list[dict]:
    """The server's spans (all of them, in start order) once `count` have arrived."""
    server.wait_for_spans(count)
    traces = server.get("/api/v1/traces", since="1h", limit=200)["traces"]
    spans = []
    for trace in traces:
        tree = server.get(f"/api/v1/traces/{trace['trace_id']}")
        stack = list(tree["roots"])
        while stack:
            span = stack.pop()
            spans.append(span)
            stack.extend(span["children"])
    return sorted(spans, key=lambda s: s["start_time"])


@pytest.fixture
def gateway(server, provider_url, start_gateway):
    return start_gateway(
        server.url, "--upstream", f"openai={provider_url}", "--upstream", f"anthropic={provider_url}"
    )


def test_every_api_shape_through_the_gateway_is_one_span_with_the_providers_usage(server, gateway):
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-app", default_headers=TAGS)
    claude = anthropic.Anthropic(base_url=gateway.url, api_key="sk-ant-app", default_headers=TAGS)
    seen = []
    chat = client.chat.completions.create(model="gpt-4o", messages=ASK, max_tokens=200, temperature=0.2)
    seen.append(("gpt-4o", chat.usage.prompt_tokens, chat.usage.completion_tokens, False))
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=ASK, stream=True))
    # The client did not ask for usage in its stream: it gets none, though the gateway asked.
    assert all(chunk.usage is None and chunk.choices for chunk in chunks)
    asked = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=ASK, stream=True, stream_options={"include_usage": True}
        )
    )
    assert asked[-1].usage is not None and asked[-1].choices == []
    seen.append(("gpt-4o-mini", None, None, True))
    seen.append(("gpt-4o-mini", asked[-1].usage.prompt_tokens, asked[-1].usage.completion_tokens, True))
    response = client.responses.create(model="gpt-4o", input="Summarize the refund policy.")
    seen.append(("gpt-4o", response.usage.input_tokens, response.usage.output_tokens, False))
    embedding = client.embeddings.create(model="text-embedding-3-small", input="refund policy")
    seen.append(("text-embedding-3-small", embedding.usage.prompt_tokens, None, False))
    message = claude.messages.create(model=CLAUDE, max_tokens=300, messages=ASK)
    seen.append((CLAUDE, message.usage.input_tokens, message.usage.output_tokens, False))
    with claude.messages.stream(model=CLAUDE, max_tokens=300, messages=ASK) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text
    seen.append((CLAUDE, final.usage.input_tokens, final.usage.output_tokens, True))

    spans = spans_of(server, len(seen))
    assert len(spans) == len(seen)
    for span, (model, inp, out, streamed) in zip(spans, seen, strict=True):
        assert span["request_model"] == model and span["service_name"] == "tokentrace-proxy"
        if inp is not None:
            assert (span["input_tokens"], span["output_tokens"]) == (inp, out)
        assert span["output_tokens"] is not None or span["operation"] == "embeddings"
        assert bool(span["streaming"]) is streamed
        assert span["cost_known"] and span["cost_usd"] > 0
        assert (span["tenant_id"], span["user_id"], span["feature"], span["session_id"]) == (
            "acme",
            "u42",
            "refund-chat",
            "s-9",
        )
        assert (span["prompt_template"], span["prompt_version"]) == ("refund", "v3")
        assert span["status"] != "error"
        assert span["response_id"] or span["operation"] == "embeddings"
        if streamed:
            assert 0 < span["ttft_ms"] <= span["duration_ms"]
    assert spans[0]["temperature"] == 0.2 and spans[0]["max_tokens"] == 200
    # The stream whose usage the client never saw is still counted, from the event it never got.
    assert spans[1]["input_tokens"] == spans[2]["input_tokens"] and spans[1]["output_tokens"] > 0


def test_streams_pass_through_event_by_event(gateway):
    """A paced stream reaches the client as it is made: the first event arrives long before the
    last, as it does straight from the provider (nothing buffers the whole answer)."""
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-app")
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=ASK,
        stream=True,
        extra_headers={"x-simulate": "ttft_ms=100; tpot_ms=40; max_output=20"},
    )
    started = time.monotonic()
    arrivals = [
        time.monotonic() - started for chunk in stream if chunk.choices and chunk.choices[0].delta.content
    ]
    assert len(arrivals) >= 15
    assert arrivals[0] < 0.5 and arrivals[-1] - arrivals[0] > 0.4  # ~19 gaps of 40 ms between them


def test_async_clients_and_the_callers_trace(server, gateway):
    """Async SDKs work alike, and a W3C traceparent from the app makes the gateway's span its child."""
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"

    async def calls() -> None:
        client = openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key="sk-app")
        claude = anthropic.AsyncAnthropic(base_url=gateway.url, api_key="sk-ant")
        headers = {"traceparent": f"00-{trace_id}-{parent_id}-01"}
        await client.chat.completions.create(model="gpt-4o-mini", messages=ASK, extra_headers=headers)
        stream = await claude.messages.create(model=CLAUDE, max_tokens=50, messages=ASK, stream=True)
        async for _ in stream:
            pass

    asyncio.run(calls())
    spans = spans_of(server, 2)
    assert spans[0]["trace_id"] == trace_id and spans[0]["parent_span_id"] == parent_id
    assert spans[1]["trace_id"] != trace_id and spans[1]["parent_span_id"] == ""
    assert spans[1]["streaming"] and spans[1]["output_tokens"] > 0


def test_upstream_errors_reach_the_client_unchanged_and_are_recorded_by_type(server, gateway, provider_url):
    for status in (429, 500, 401):
        direct = httpx.post(
            f"{provider_url}/v1/chat/completions",
            json={"model": "gpt-4o", "messages": ASK},
            headers={"x-simulate": f"error={status}"},
        )
        proxied = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json={"model": "gpt-4o", "messages": ASK},
            headers={"x-simulate": f"error={status}"},
        )
        assert (
            (proxied.status_code, proxied.json())
            == (direct.status_code, direct.json())
            == (status, direct.json())
        )
        if status == 429:
            assert proxied.headers["retry-after-ms"] == direct.headers["retry-after-ms"]
    too_long = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "word " * 200_000}]},
    )
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "context_length_exceeded"
    spans = spans_of(server, 4)
    assert [(s["status"], s["error_type"]) for s in spans] == [
        ("error", "rate_limit"),
        ("error", "server_error"),
        ("error", "auth"),
        ("error", "context_length"),
    ]


def test_bad_requests_and_missing_upstreams_get_clear_errors(server, provider_url, start_gateway):
    gateway = start_gateway(server.url, "--upstream", f"openai={provider_url}")
    not_json = httpx.post(f"{gateway.url}/v1/chat/completions", content=b"{nope")
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["error"]["message"]
    no_model = httpx.post(f"{gateway.url}/v1/chat/completions", json={"messages": ASK})
    assert no_model.status_code == 400 and "name a model" in no_model.json()["error"]["message"]
    claude = httpx.post(
        f"{gateway.url}/v1/messages", json={"model": CLAUDE, "max_tokens": 5, "messages": ASK}
    )
    assert claude.status_code == 404 and "--upstream anthropic=URL" in claude.json()["error"]["message"]
    assert httpx.get(f"{gateway.url}/nowhere").status_code == 404
    # None of these reached a provider: none is an LLM span.
    assert server.get("/api/v1/stats")["spans"] == 0


def test_an_upstream_given_as_the_providers_base_url_with_v1_works(server, provider_url, start_gateway):
    # what OPENAI_BASE_URL holds (https://api.openai.com/v1) is a natural --upstream: not /v1/v1
    gateway = start_gateway(
        server.url, "--upstream", f"openai={provider_url}/v1", "--upstream", f"anthropic={provider_url}/v1/"
    )
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-app")
    claude = anthropic.Anthropic(base_url=gateway.url, api_key="sk-ant-app")
    assert client.chat.completions.create(model="gpt-4o", messages=ASK, max_tokens=20).usage.prompt_tokens
    assert claude.messages.create(model=CLAUDE, max_tokens=20, messages=ASK).usage.input_tokens
    assert {s["attributes"]["tokentrace.gateway.upstream"] for s in spans_of(server, 2)} == {provider_url}


def test_an_unreachable_upstream_is_a_502_and_an_error_span(server, start_gateway):
    from tests.builders.processes import free_port

    gateway = start_gateway(server.url, "--upstream", f"openai=http://127.0.0.1:{free_port()}")
    answer = httpx.post(f"{gateway.url}/v1/chat/completions", json={"model": "gpt-4o", "messages": ASK})
    assert answer.status_code == 502 and "cannot be reached" in answer.json()["error"]["message"]
    (span,) = spans_of(server, 1)
    assert (span["status"], span["error_type"]) == ("error", "server_error")


def test_a_trace_endpoint_that_does_not_answer_is_said_at_start_and_counted(
    provider_url, start_gateway, monkeypatch
):
    """The calls still go through; the spans that could not be delivered are counted in /healthz."""
    from tests.builders.processes import free_port

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1")  # the exporter's retries, bounded
    nowhere = f"http://127.0.0.1:{free_port()}"
    gateway = start_gateway(nowhere, "--upstream", f"openai={provider_url}")
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-app")
    assert client.chat.completions.create(model="gpt-4o", messages=ASK, max_tokens=20).usage.prompt_tokens
    deadline = time.monotonic() + 20
    while (health := httpx.get(f"{gateway.url}/healthz").json())["spans"]["failed"] < 1:
        assert time.monotonic() < deadline, health
        time.sleep(0.2)
    assert health["status"] == "ok" and health["spans"] == {"queued": 0, "dropped": 0, "failed": 1}
    assert f"nothing answers at {nowhere}/v1/traces" in gateway.log()


def test_a_client_that_leaves_cancels_the_call(server, gateway):
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-app")
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=ASK,
        stream=True,
        extra_headers={"x-simulate": "tpot_ms=50; max_output=200"},  # 10 s to the end
    )
    next(iter(stream))
    stream.close()
    (span,) = spans_of(server, 1)
    assert (span["status"], span["error_type"]) == ("error", "cancelled")
    assert span["duration_ms"] < 3000


def test_client_keys_carry_tags_that_headers_cannot_override(server, provider_url, start_gateway, tmp_path):
    config = tmp_path / "proxy.toml"
    config.write_text('[[keys]]\nkey = "tt-acme-1"\ntenant_id = "acme"\nfeature = "support"\n')
    gateway = start_gateway(server.url, "--upstream", f"openai={provider_url}", "--config", str(config))
    stranger = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="tt-unknown", max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="client keys"):
        stranger.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    acme = openai.OpenAI(
        base_url=f"{gateway.url}/v1",
        api_key="tt-acme-1",
        default_headers={"x-tokentrace-tenant": "globex", "x-tokentrace-user": "u7"},
    )
    acme.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    (span,) = spans_of(server, 1)
    assert (span["tenant_id"], span["feature"], span["user_id"]) == ("acme", "support", "u7")


BUDGETS = """
[[budgets]]
tenant_id = "acme"
tokens_per_minute = 2000

[[budgets]]
tenant_id = "globex"
usd_per_day = 0.005
action = "downgrade"
downgrade_to = "gpt-4o-mini"

[[budgets]]
feature = "search"
tokens_per_minute = 300
action = "warn"

[alerts]
webhooks = ["{url}"]
"""


def test_budgets_block_warn_and_downgrade_at_the_gateway(server, provider_url, start_gateway, tmp_path):
    receiver = Receiver()
    budgets = tmp_path / "budgets.toml"
    budgets.write_text(BUDGETS.format(url=receiver.url))
    gateway = start_gateway(server.url, "--upstream", f"openai={provider_url}", "--budgets", str(budgets))
    minute_with_room(20)

    acme = openai.OpenAI(
        base_url=f"{gateway.url}/v1",
        api_key="sk",
        max_retries=0,
        default_headers={"x-tokentrace-tenant": "acme", "x-simulate": "max_output=5000"},
    )
    used = 0
    with pytest.raises(openai.RateLimitError) as refused:  # calls of up to 900 tokens, until refused
        for _ in range(20):
            used += acme.chat.completions.create(
                model="gpt-4o-mini", messages=ASK, max_tokens=900
            ).usage.total_tokens
    assert 2000 - 900 - len(ASK[0]["content"]) < used <= 2000
    assert "tokentrace budget exceeded" in refused.value.message
    assert "tenant_id=acme/tokens_per_minute" in refused.value.message
    assert refused.value.response.headers["x-should-retry"] == "true"
    assert 0 < int(refused.value.response.headers["retry-after"]) <= 60

    globex = openai.OpenAI(
        base_url=f"{gateway.url}/v1",
        api_key="sk",
        default_headers={"x-tokentrace-tenant": "globex", "x-tokentrace-feature": "search"},
    )
    first = globex.chat.completions.with_raw_response.create(model="gpt-4o", messages=ASK, max_tokens=100)
    assert "x-tokentrace-budget-downgraded" not in first.headers and first.parse().model.startswith(
        "gpt-4o-2"
    )
    second = globex.chat.completions.with_raw_response.create(model="gpt-4o", messages=ASK, max_tokens=1000)
    assert second.parse().model.startswith("gpt-4o-mini")
    assert "gpt-4o -> gpt-4o-mini" in second.headers["x-tokentrace-budget-downgraded"]
    assert "feature=search/tokens_per_minute" in second.headers["x-tokentrace-budget-warning"]

    spans = spans_of(server, 5)
    blocked = [s for s in spans if s["error_type"] == "budget"]
    assert len(blocked) == 1 and blocked[0]["input_tokens"] is None
    assert blocked[0]["attributes"]["tokentrace.budget.action"] == ["block"]
    downgraded = spans[-1]
    assert downgraded["request_model"] == "gpt-4o" and downgraded["response_model"].startswith("gpt-4o-mini")
    assert downgraded["attributes"]["tokentrace.budget.action"] == ["warn", "downgrade"]

    deadline = time.monotonic() + 10
    while len(receiver.bodies) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    actions = sorted((body["budget"], body["action"]) for body in receiver.bodies)
    assert actions == [
        ("feature=search/tokens_per_minute", "warn"),
        ("tenant_id=acme/tokens_per_minute", "block"),
        ("tenant_id=globex/usd_per_day", "downgrade"),
    ]

    shown = httpx.get(f"{gateway.url}/tokentrace/budgets").json()["budgets"]
    acme_use = next(b for b in shown if b["name"] == "tenant_id=acme/tokens_per_minute")
    spent = sum(
        s["input_tokens"] + s["output_tokens"]
        for s in spans
        if s["tenant_id"] == "acme" and s["input_tokens"]
    )
    assert acme_use["used"] == spent  # reservations were replaced by actual use


def test_two_gateways_on_one_redis_hold_one_budget(server, provider_url, start_gateway, redis_url, tmp_path):
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    budgets = tmp_path / "budgets.toml"
    budgets.write_text('[[budgets]]\ntenant_id = "acme"\ntokens_per_minute = 6000\n')
    flags = (
        "--upstream",
        f"openai={provider_url}",
        "--budgets",
        str(budgets),
        "--redis",
        redis_url,
        "--admin-key",
        "admin-secret",
    )
    gateways = [start_gateway(server.url, *flags), start_gateway(server.url, *flags)]
    minute_with_room(20)

    # Every answer runs to max_tokens (500), so each call uses about what it reserves: gateways
    # counting apart would admit about twice the budget, and `used` below would show it.
    async def burst() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            calls = [
                client.post(
                    f"{gateways[i % 2].url}/v1/chat/completions",
                    json={"model": "gpt-4o-mini", "messages": ASK, "max_tokens": 500},
                    headers={"x-tokentrace-tenant": "acme", "x-simulate": "max_output=5000"},
                )
                for i in range(40)
            ]
            return [r.status_code for r in await asyncio.gather(*calls)]

    statuses = asyncio.run(burst())
    admitted = statuses.count(200)
    assert statuses.count(429) == 40 - admitted and 0 < admitted < 40
    spans = spans_of(server, 40)
    used = sum(s["input_tokens"] + s["output_tokens"] for s in spans if s["status"] != "error")
    assert used <= 6000
    assert {s["attributes"]["tokentrace.gateway.upstream"] for s in spans} == {provider_url}
    # Both gateways answered for the one budget, and both report the one counter.
    shown = [httpx.get(f"{g.url}/tokentrace/budgets").json()["budgets"][0]["used"] for g in gateways]
    assert shown[0] == shown[1] == used

    # Budgets set over one gateway's API reach the other through Redis.
    refused = httpx.put(f"{gateways[0].url}/tokentrace/budgets", json={"budgets": []})
    assert refused.status_code == 401
    bad = httpx.put(
        f"{gateways[0].url}/tokentrace/budgets",
        headers={"Authorization": "Bearer admin-secret"},
        json={"budgets": [{"tenant_id": "acme", "usd_per_day": -1}]},
    )
    assert bad.status_code == 400 and "positive number" in bad.json()["error"]
    new = {"budgets": [{"tenant_id": "acme", "tokens_per_minute": 1_000_000, "name": "acme-tpm"}]}
    assert (
        httpx.put(
            f"{gateways[0].url}/tokentrace/budgets",
            headers={"Authorization": "Bearer admin-secret"},
            json=new,
        ).status_code
        == 200
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        names = [b["name"] for b in httpx.get(f"{gateways[1].url}/tokentrace/budgets").json()["budgets"]]
        if names == ["acme-tpm"]:
            break
        time.sleep(0.1)
    assert names == ["acme-tpm"]
    assert (
        httpx.post(
            f"{gateways[1].url}/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": ASK, "max_tokens": 500},
            headers={"x-tokentrace-tenant": "acme"},
        ).status_code
        == 200
    )


def test_the_gateway_prices_each_call_at_the_tier_it_was_served_at(server, gateway):
    """gpt-5 on flex (plain and streamed) at half its list price, priority above it, and
    Anthropic's answered tier recorded; each tier a group of cost."""
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-app")
    claude = anthropic.Anthropic(base_url=gateway.url, api_key="sk-ant-app")
    for tier in ("flex", "priority", None):
        extra = {"service_tier": tier} if tier else {}
        client.chat.completions.create(model="gpt-5", messages=ASK, **extra)
    list(client.chat.completions.create(model="gpt-5", messages=ASK, stream=True, service_tier="flex"))
    claude.messages.create(model=CLAUDE, max_tokens=100, messages=ASK, service_tier="auto")
    spans = spans_of(server, 5)
    assert [s["service_tier"] for s in spans] == ["flex", "priority", "default", "flex", "priority"]
    flex, priority, default = spans[:3]
    per_token = [
        s["cost_usd"] / (s["input_tokens"] + 8 * s["output_tokens"]) for s in (flex, default, priority)
    ]
    assert per_token[0] == pytest.approx(per_token[1] / 2) and per_token[2] == pytest.approx(2 * per_token[1])
    assert flex["attributes"]["tokentrace.price.conditions"] == "service_tier=flex"
    assert spans[3]["attributes"]["tokentrace.price.conditions"] == "service_tier=flex"


def test_the_gateway_prices_audio_heard_and_spoken_at_its_own_rates(server, gateway):
    """A gpt-audio call with a second of speech in and a spoken answer: the gateway records the
    audio tokens the answer reports as their own kinds, and the span's cost is genai-prices' for
    that usage, audio at gpt-audio's audio rates."""
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-app")
    heard = {"type": "input_audio", "input_audio": {"data": "A" * 43000, "format": "wav"}}
    answer = client.chat.completions.create(
        model="gpt-audio",
        modalities=["text", "audio"],
        audio={"voice": "alloy", "format": "wav"},
        messages=[{"role": "user", "content": [{"type": "text", "text": "what did I say?"}, heard]}],
    )
    [span] = spans_of(server, 1)
    usage = answer.usage
    assert span["input_audio_tokens"] == usage.prompt_tokens_details.audio_tokens > 0
    assert span["output_audio_tokens"] == usage.completion_tokens_details.audio_tokens > 0
    counted = Usage(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        input_audio_tokens=span["input_audio_tokens"],
        output_audio_tokens=span["output_audio_tokens"],
    )
    assert span["cost_usd"] == pytest.approx(
        float(calc_price(counted, "gpt-audio", provider_id="openai").total_price)
    )


def _batch_input(model: str, count: int) -> bytes:
    lines = [
        {
            "custom_id": f"ticket-{n}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": model,
                "messages": [{"role": "user", "content": f"Summarize ticket {n} " * (n + 1)}],
            },
        }
        for n in range(count)
    ]
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def test_batch_results_through_the_gateway_are_spans_at_the_batch_rate(server, gateway):
    """OpenAI's Batch API and Anthropic's Message Batches through the gateway with the real SDKs:
    each result the client reads becomes a span with its usage, priced at genai-prices' batch
    rate, tagged as the batch was created and named by its custom_id; results read twice are
    counted once; a request that failed inside the batch is an error span; files that hold no
    batch's results pass through untouched."""
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-app")
    tagged = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-app", default_headers=TAGS)
    upload = client.files.create(file=("tickets.jsonl", _batch_input("gpt-4o-mini", 3)), purpose="batch")
    plain = client.files.content(upload.id).content  # the input file: no batch's results
    assert plain == _batch_input("gpt-4o-mini", 3)
    batch = tagged.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.request_counts.completed == 3
    results = [orjson.loads(line) for line in client.files.content(done.output_file_id).text.splitlines()]
    client.files.content(done.output_file_id).read()  # read twice: counted once

    claude = anthropic.Anthropic(base_url=gateway.url, api_key="sk-ant-app", default_headers=TAGS)
    ask = {"model": CLAUDE, "max_tokens": 60, "messages": ASK}
    asked = claude.messages.batches.create(
        requests=[
            {"custom_id": "draft-1", "params": ask},
            {"custom_id": "draft-2", "params": {**ask, "max_tokens": 20}},
            {"custom_id": "broken", "params": {"model": CLAUDE, "messages": ASK}},  # no max_tokens
        ]
    )
    # (a client held while its results stream: one dropped mid-read closes the stream's socket)
    untagged = anthropic.Anthropic(base_url=gateway.url, api_key="sk-ant-app")
    answers = list(untagged.messages.batches.results(asked.id))
    assert [a.result.type for a in answers] == ["succeeded", "succeeded", "errored"]

    spans = spans_of(server, 6)
    assert len(spans) == 6
    by_id = {s["attributes"]["tokentrace.batch.custom_id"]: s for s in spans}
    for result in results:
        span, usage = by_id[result["custom_id"]], result["response"]["body"]["usage"]
        assert span["attributes"]["tokentrace.batch.id"] == batch.id
        assert (span["provider"], span["service_tier"], span["status"]) == ("openai", "batch", "unset")
        assert (span["input_tokens"], span["output_tokens"]) == (
            usage["prompt_tokens"],
            usage["completion_tokens"],
        )
        assert {k: span[k] for k in ("tenant_id", "user_id", "feature")} == {
            "tenant_id": "acme", "user_id": "u42", "feature": "refund-chat"
        }  # fmt: skip
        counted = Usage(input_tokens=usage["prompt_tokens"], output_tokens=usage["completion_tokens"])
        expected = calc_price(
            counted, "gpt-4o-mini", provider_id="openai", price_context={"processing": "batch"}
        )
        listed = calc_price(counted, "gpt-4o-mini", provider_id="openai")
        assert span["cost_usd"] == pytest.approx(float(expected.total_price), rel=1e-9)
        assert span["cost_usd"] == pytest.approx(float(listed.total_price) / 2, rel=1e-9)
        assert span["attributes"]["tokentrace.price.conditions"] == "processing=batch"
    for answer in answers[:2]:
        span = by_id[answer.custom_id]
        assert (span["provider"], span["service_tier"], span["tenant_id"]) == ("anthropic", "batch", "acme")
        assert span["output_tokens"] == answer.result.message.usage.output_tokens
        assert span["attributes"]["tokentrace.batch.id"] == asked.id
    broken = by_id["broken"]
    assert (
        broken["status"] == "error" and broken["error_type"] == "bad_request" and broken["cost_usd"] is None
    )
