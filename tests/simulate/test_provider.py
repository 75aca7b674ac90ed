"""The simulated provider through the real openai and anthropic SDKs: every shape the
instrumentations and the gateway must handle, with usage the tests can predict."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tokentrace.simulate.tokens import count_message, count_text

LONG = "Our refund policy: " + "items can be returned within thirty days of delivery. " * 90  # > 1024 tokens
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Find an order",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
        },
    }
]


@pytest.fixture
def oai(provider_url):
    with openai.OpenAI(base_url=f"{provider_url}/v1", api_key="sk-sim", max_retries=0) as client:
        yield client


@pytest.fixture
def claude(provider_url):
    with anthropic.Anthropic(base_url=provider_url, api_key="sk-ant-sim", max_retries=0) as client:
        yield client


def test_chat_usage_is_deterministic_and_predictable(oai):
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Where is my order?"},
    ]
    first = oai.chat.completions.create(model="gpt-4o", messages=messages)
    second = oai.chat.completions.create(model="gpt-4o", messages=messages)
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.usage.prompt_tokens == 3 + sum(count_message(m) for m in messages)
    assert first.usage.completion_tokens == len(first.choices[0].message.content.split())
    assert first.model == "gpt-4o-2024-08-06" and first.choices[0].finish_reason == "stop"


def test_max_tokens_truncates_with_length(oai):
    reply = oai.chat.completions.create(
        model="gpt-4o-mini", max_tokens=5, messages=[{"role": "user", "content": "Tell me everything."}]
    )
    assert reply.usage.completion_tokens == 5 and reply.choices[0].finish_reason == "length"


def test_stream_with_usage_chunk(oai):
    stream = oai.chat.completions.create(
        model="gpt-4o",
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "hello"}],
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage.completion_tokens == len(text.split())
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_tool_call_plain_and_streamed(oai):
    messages = [{"role": "user", "content": "Where is order 42?"}]
    reply = oai.chat.completions.create(model="gpt-4o", messages=messages, tools=TOOLS)
    [call] = reply.choices[0].message.tool_calls
    assert call.function.name == "lookup_order" and "order_id" in call.function.arguments
    assert reply.choices[0].finish_reason == "tool_calls"
    streamed = oai.chat.completions.create(model="gpt-4o", messages=messages, tools=TOOLS, stream=True)
    arguments = "".join(
        c.choices[0].delta.tool_calls[0].function.arguments or ""
        for c in streamed
        if c.choices and c.choices[0].delta.tool_calls
    )
    assert arguments == call.function.arguments


def test_prompt_caching_and_reasoning_tokens(oai):
    messages = [{"role": "system", "content": LONG}, {"role": "user", "content": "Can I return shoes?"}]
    first = oai.chat.completions.create(model="gpt-4o", messages=messages)
    second = oai.chat.completions.create(
        model="gpt-4o", messages=[*messages[:1], {"role": "user", "content": "And a hat?"}]
    )
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    prefix = 3 + count_message(messages[0])
    assert second.usage.prompt_tokens_details.cached_tokens == prefix // 128 * 128 > 1024
    reasoning = oai.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "Think."}])
    details = reasoning.usage.completion_tokens_details
    assert details.reasoning_tokens > 0
    assert reasoning.usage.completion_tokens == details.reasoning_tokens + len(
        reasoning.choices[0].message.content.split()
    )


def test_a_reasoning_effort_sets_how_long_a_reasoning_model_thinks(oai):
    """Through both APIs: effort high thinks 1.5k-6k tokens, low 16-128 (none given: medium, 64-512);
    an effort on a model that does not reason, an unknown one or one that is no string, and a
    `reasoning` that is no object, are OpenAI's 400 and no answer."""
    ask = [{"role": "user", "content": "Which queue does ticket 7 go to?"}]

    def chat(effort: str) -> int:
        answer = oai.chat.completions.create(model="o4-mini", messages=ask, reasoning_effort=effort)
        return answer.usage.completion_tokens_details.reasoning_tokens

    def responses(effort: str) -> int:
        answer = oai.responses.create(model="o4-mini", input="Which queue?", reasoning={"effort": effort})
        return answer.usage.output_tokens_details.reasoning_tokens

    for think in (chat, responses):
        assert 1536 <= think("high") <= 6144 and 16 <= think("low") <= 128 and think("minimal") <= 32
    plain = oai.chat.completions.create(model="o4-mini", messages=ask)  # no effort: medium's range
    assert 64 <= plain.usage.completion_tokens_details.reasoning_tokens <= 512
    with pytest.raises(openai.BadRequestError, match="'reasoning_effort' is not supported with this model"):
        oai.chat.completions.create(model="gpt-4o-mini", messages=ask, reasoning_effort="high")
    with pytest.raises(openai.BadRequestError, match="Invalid value: 'extreme'"):
        oai.chat.completions.create(model="o4-mini", messages=ask, reasoning_effort="extreme")
    with pytest.raises(openai.BadRequestError, match=r"Invalid value: \['high'\]"):
        oai.chat.completions.create(model="o4-mini", messages=ask, extra_body={"reasoning_effort": ["high"]})
    with pytest.raises(openai.BadRequestError, match=r"'reasoning\.effort' is not supported"):
        oai.responses.create(model="gpt-4o", input="Which queue?", reasoning={"effort": "low"})
    with pytest.raises(openai.BadRequestError, match="Invalid type for 'reasoning'"):
        oai.responses.create(model="o4-mini", input="Which queue?", reasoning="high")


def test_embeddings_and_responses_api(oai):
    embedded = oai.embeddings.create(model="text-embedding-3-small", input=["refund policy", "shipping"])
    assert len(embedded.data) == 2 and len(embedded.data[0].embedding) == 1536
    assert embedded.usage.prompt_tokens == count_text("refund policy") + count_text("shipping")

    response = oai.responses.create(model="gpt-4o", input="Summarize my order", instructions="Be brief.")
    assert response.output_text and response.usage.output_tokens == len(response.output_text.split())
    with oai.responses.stream(model="gpt-4o", input="Summarize my order", instructions="Be brief.") as stream:
        final = stream.get_final_response()
    assert (
        final.output_text == response.output_text and final.usage.total_tokens == response.usage.total_tokens
    )


def test_errors_with_the_real_bodies(oai, provider_url):
    with pytest.raises(openai.RateLimitError) as limited:
        oai.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-simulate": "error=429"},
        )
    assert limited.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-simulate": "error=500"},
        )
    with pytest.raises(openai.BadRequestError) as too_long:
        oai.chat.completions.create(
            model="gpt-3.5-turbo", messages=[{"role": "user", "content": "word " * 20_000}]
        )
    assert too_long.value.code == "context_length_exceeded"


def test_the_sdk_retry_loop_gets_through_after_failures(provider_url):
    client = openai.OpenAI(base_url=f"{provider_url}/v1", api_key="sk-sim", max_retries=2)
    reply = client.chat.completions.with_raw_response.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "retry me"}],
        extra_headers={"x-simulate": "fail_first=2; retry_after_ms=1"},
    )
    assert reply.retries_taken == 2 and reply.parse().choices[0].message.content


def test_anthropic_plain_stream_tools_and_cache(claude):
    system = [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}]
    first = claude.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=200,
        system=system,
        messages=[{"role": "user", "content": "Can I return shoes?"}],
    )
    second = claude.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=200,
        system=system,
        messages=[{"role": "user", "content": "And a hat?"}],
    )
    assert first.usage.cache_creation_input_tokens > 1024 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.cache_creation_input_tokens == 0
    # raw Anthropic semantics: input_tokens excludes what the cache served
    assert second.usage.input_tokens < 40 and first.stop_reason == "end_turn"
    # a second breakpoint after the cached one: the first prefix is read, the rest written
    extended = [*system, {"type": "text", "text": LONG + " more", "cache_control": {"type": "ephemeral"}}]
    third = claude.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=200,
        system=extended,
        messages=[{"role": "user", "content": "And socks?"}],
    )
    assert third.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert third.usage.cache_creation_input_tokens > 1024

    with claude.messages.stream(
        model="claude-sonnet-4-6", max_tokens=200, messages=[{"role": "user", "content": "hello"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert final.usage.output_tokens == len(text.split()) and final.stop_reason == "end_turn"

    tool = claude.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=200,
        tools=[
            {
                "name": "lookup_order",
                "input_schema": {
                    "type": "object",
                    "properties": {"order_id": {"type": "string"}},
                    "required": ["order_id"],
                },
            }
        ],
        messages=[{"role": "user", "content": "Where is order 42?"}],
    )
    assert tool.stop_reason == "tool_use" and tool.content[0].name == "lookup_order"

    with pytest.raises(anthropic.RateLimitError):
        claude.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=10,
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-simulate": "error=429"},
        )
    with pytest.raises(anthropic.BadRequestError, match="prompt is too long"):
        claude.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=10,
            messages=[{"role": "user", "content": "word " * 200_000}],
        )


def _ledger(url: str) -> list[dict]:
    import httpx

    return httpx.get(f"{url}/_simulate/ledger").json()


def test_the_tool_flow_an_agent_expects_on_all_three_apis(oai, claude, provider_url):
    """A tool call first; once a tool result is in the conversation, an answer. Each answer is in
    the ledger with its id and the usage the client saw."""
    before = len(_ledger(provider_url))
    question = [{"role": "user", "content": "Where is order 7?"}]
    first = oai.chat.completions.create(model="gpt-4o-mini", messages=question, tools=TOOLS)
    call = first.choices[0].message.tool_calls[0]
    answer = oai.chat.completions.create(
        model="gpt-4o-mini",
        tools=TOOLS,
        messages=[
            *question,
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "shipped"},
        ],
    )
    assert (first.choices[0].finish_reason, answer.choices[0].finish_reason) == ("tool_calls", "stop")

    flat = [{"type": "function", **TOOLS[0]["function"]}]
    asked = oai.responses.create(model="gpt-4o-mini", input="Where is order 7?", tools=flat)
    function_call = asked.output[0]
    assert function_call.type == "function_call" and function_call.name == "lookup_order"
    with oai.responses.stream(model="gpt-4o-mini", input="Where is order 7?", tools=flat) as stream:
        for _ in stream:
            pass
        streamed = stream.get_final_response()
    assert (
        streamed.output[0].type == "function_call" and streamed.output[0].arguments == function_call.arguments
    )
    told = oai.responses.create(
        model="gpt-4o-mini",
        tools=flat,
        input=[
            {"role": "user", "content": "Where is order 7?"},
            function_call.model_dump(exclude_none=True),
            {"type": "function_call_output", "call_id": function_call.call_id, "output": "shipped"},
        ],
    )
    assert told.output[0].type == "message" and told.output_text

    tools = [{"name": "lookup_order", "input_schema": TOOLS[0]["function"]["parameters"]}]
    used = claude.messages.create(model="claude-haiku-4-5", max_tokens=200, messages=question, tools=tools)
    result = [{"type": "tool_result", "tool_use_id": used.content[0].id, "content": "shipped"}]
    done = claude.messages.create(
        model="claude-haiku-4-5",
        max_tokens=200,
        tools=tools,
        messages=[
            *question,
            {"role": "assistant", "content": used.content},
            {"role": "user", "content": result},
        ],
    )
    assert (used.stop_reason, done.stop_reason) == ("tool_use", "end_turn")

    ledger = _ledger(provider_url)[before:]
    assert [(a["api"], a["tool"]) for a in ledger] == [
        ("chat.completions", True),
        ("chat.completions", False),
        ("responses", True),
        ("responses", True),
        ("responses", False),
        ("messages", True),
        ("messages", False),
    ]
    assert [a["id"] for a in ledger] == [
        first.id,
        answer.id,
        asked.id,
        streamed.id,
        told.id,
        used.id,
        done.id,
    ]
    assert ledger[1]["usage"]["prompt_tokens"] == answer.usage.prompt_tokens
    assert len({a["id"] for a in ledger}) == len(ledger)  # every answer its own id


def test_short_ids_repeat_as_ollama_s_do():
    """--short-ids: chat completion ids are chatcmpl-<0..999>, so a few hundred calls repeat some."""
    from tests.builders.processes import simulated_provider

    with (
        simulated_provider(None, "--short-ids") as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key="sk-sim", max_retries=0) as client,
    ):
        ids = [
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{i}"}]
            ).id
            for i in range(150)
        ]
    assert all(i.startswith("chatcmpl-") and 0 <= int(i.removeprefix("chatcmpl-")) <= 999 for i in ids)
    assert len(set(ids)) < len(ids)  # 150 draws of a seeded generator from 1,000: some repeat
