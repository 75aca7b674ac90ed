"""The OTel GenAI family and the convention-independent fields, span by span."""

from __future__ import annotations

import pytest

from tests.builders.raw_spans import one, raw
from tokentrace import vocab
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.raw import RawEvent


def test_current_gen_ai_attributes():
    row = one(
        raw(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.usage.input_tokens": 100,
                "gen_ai.usage.output_tokens": 20,
                "gen_ai.usage.cache_read.input_tokens": 64,
                "gen_ai.usage.cache_creation.input_tokens": 8,
                "gen_ai.usage.reasoning.output_tokens": 5,
                "gen_ai.request.temperature": 0.5,
                "gen_ai.request.top_p": 0.9,
                "gen_ai.request.seed": 7,
                "gen_ai.request.max_tokens": 256,
                "gen_ai.response.finish_reasons": ["length"],
                "gen_ai.conversation.id": "conv-1",
                "error.type": "x",
            }
        )
    )
    assert row["operation"] == "chat" and row["provider"] == "openai"
    assert (row["input_tokens"], row["output_tokens"], row["total_tokens"]) == (100, 20, 120)
    assert (row["cache_read_tokens"], row["cache_write_tokens"], row["reasoning_tokens"]) == (64, 8, 5)
    assert (row["temperature"], row["top_p"], row["seed"], row["max_tokens"]) == (0.5, 0.9, 7, 256)
    assert row["finish_reason"] == "length" and row["session_id"] == "conv-1"
    assert row["duration_ms"] == 2.0 and row["kind"] == "client" and row["project_id"] == "p1"
    # consumed attributes leave `attributes`; raw vocabularies stay
    assert "gen_ai.usage.input_tokens" not in row["attributes"]
    assert row["attributes"]["gen_ai.response.finish_reasons"] == ["length"]


def test_older_spellings():
    row = one(
        raw(
            {
                "gen_ai.system": "Anthropic",
                "gen_ai.request.model": "claude-3-5-haiku",
                "gen_ai.usage.prompt_tokens": 30,
                "gen_ai.usage.completion_tokens": 4,
                "gen_ai.usage.cache_read_input_tokens": 10,
            }
        )
    )
    assert row["provider"] == "anthropic" and row["operation"] == "chat"
    assert (row["input_tokens"], row["output_tokens"], row["cache_read_tokens"]) == (30, 4, 10)


def test_tokens_not_sent_stay_empty_never_guessed():
    row = one(raw({"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 5}))
    assert row["output_tokens"] is None and row["total_tokens"] is None
    assert row["cache_read_tokens"] is None and row["reasoning_tokens"] is None


def test_tags_come_from_span_then_resource_then_baggage():
    row = one(
        raw(
            {
                "user.id": "u-span",
                "baggage.tenant.id": "t-baggage",
                "tokentrace.feature": "refunds",
                "prompt_template": "refund",
                "tokentrace.prompt.version": "v3",
                "baggage.session.id": "s-bag",
            },
            resource={
                "service.name": "svc",
                "user.id": "u-resource",
                "session.id": "s-res",
                "deployment.environment": "staging",
                "service.version": "9",
            },
        )
    )
    assert row["user_id"] == "u-span" and row["session_id"] == "s-res" and row["tenant_id"] == "t-baggage"
    assert (row["feature"], row["prompt_template"], row["prompt_version"]) == ("refunds", "refund", "v3")
    assert (row["environment"], row["service_version"]) == ("staging", "9")
    assert one(raw({"tenant_id": "acme"}))["tenant_id"] == "acme"


def test_ttft_and_tpot():
    row = one(
        raw(
            {
                "gen_ai.request.model": "m",
                "gen_ai.usage.output_tokens": 11,
                "gen_ai.response.time_to_first_chunk": 0.5,
            },
            end_unix_nano=None or 0,
        )
        if False
        else raw(
            {
                "gen_ai.request.model": "m",
                "gen_ai.usage.output_tokens": 11,
                "gen_ai.response.time_to_first_chunk": 0.0005,
            }
        )
    )
    assert row["ttft_ms"] == pytest.approx(0.5) and row["streaming"] is True
    assert row["tpot_ms"] == pytest.approx((2.0 - 0.5) / 10)


def test_operation_inferred_for_tool_agent_and_retrieval_spans():
    assert one(raw({"gen_ai.tool.name": "search"}))["operation"] == "execute_tool"
    assert one(raw({"gen_ai.agent.name": "planner"}))["operation"] == "invoke_agent"
    assert one(raw({"gen_ai.data_source.id": "kb"}))["operation"] == "retrieval"
    assert one(raw({}))["operation"] == "other"
    assert one(raw({"gen_ai.operation.name": "embeddings"}))["operation"] == "embeddings"


@pytest.mark.parametrize(
    "clue,expected",
    [
        ("<class 'openai.RateLimitError'>", "rate_limit"),
        ("RateLimitError", "rate_limit"),
        ("rate_limit_error", "rate_limit"),
        ("APITimeoutError", "timeout"),
        ("InternalServerError", "server_error"),
        ("overloaded_error", "server_error"),
        ("AuthenticationError", "auth"),
        ("BadRequestError", "bad_request"),
        ("context_length_exceeded", "context_length"),
        ("ContentFilterFinishReasonError", "content_filter"),
        ("SomethingOdd", "other"),
    ],
)
def test_error_type_spellings(clue, expected):
    assert vocab.error_type(clue) == expected


def test_error_type_from_exception_event_status_code_and_message():
    event = RawEvent("exception", 0, {"exception.type": "openai.RateLimitError"})
    assert one(raw({}, status_code=2, events=[event]))["error_type"] == "rate_limit"
    assert one(raw({"http.response.status_code": 503}, status_code=2))["error_type"] == "server_error"
    ctx = raw(
        {"error.type": "BadRequestError"},
        status_code=2,
        status_message="Error code: 400 - This model's maximum context length is 8192 tokens",
    )
    assert one(ctx)["error_type"] == "context_length"
    assert one(raw({}, status_code=1))["error_type"] is None


@pytest.mark.parametrize(
    "raw_reason,expected",
    [
        ("end_turn", "stop"),
        ("stop", "stop"),
        ("completed", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("tool_call", "tool_calls"),
        ("content_filter", "content_filter"),
        ("weird", "other"),
        ('["stop"]', "stop"),
    ],
)
def test_finish_reason_vocabulary(raw_reason, expected):
    assert one(raw({"gen_ai.response.finish_reasons": raw_reason}))["finish_reason"] == expected


def test_content_goes_to_the_content_row_not_the_span():
    span = raw(
        {
            "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"hi"}]}]',
            "gen_ai.output.messages": [{"role": "assistant"}],
            "gen_ai.system_instructions": "{bad json",
            "gen_ai.request.model": "m",
        },
        events=[RawEvent("gen_ai.choice", 5, {"index": 0})],
    )
    batch = normalize([span], "p1")
    [content] = batch.content
    assert content["input_messages"].startswith('[{"role":"user"')
    assert content["output_messages"] == '[{"role":"assistant"}]'
    assert content["system_instructions"] == '"{bad json"'  # not JSON: stored as a JSON string
    assert '"gen_ai.choice"' in content["events"]
    assert not any(k.startswith("gen_ai.input") for k in batch.rows[0]["attributes"])


@pytest.mark.parametrize(
    "fields,reason",
    [
        ({"trace_id": "abc"}, "trace id"),
        ({"span_id": "0" * 16}, "all zeros"),
        ({"parent_span_id": "xyz"}, "parent span id"),
        ({"start_unix_nano": 0}, "start time is missing"),
        ({"end_unix_nano": 1}, "before start"),
    ],
)
def test_invalid_spans_are_rejected_with_a_reason(fields, reason):
    batch = normalize([raw({}, **fields), raw({}, span_id="b7ad6b7169203332")], "p1")
    assert len(batch.rows) == 1 and reason in batch.errors[0]


@pytest.mark.parametrize("value", [-1, "ten", 1.5, True, float("inf")])
def test_bad_token_counts_reject_the_span(value):
    batch = normalize([raw({"gen_ai.usage.input_tokens": value})], "p1")
    assert batch.rows == [] and "gen_ai.usage.input_tokens" in batch.errors[0]


def test_token_counts_sent_as_integral_numbers_or_digit_strings_are_accepted():
    row = one(raw({"gen_ai.usage.input_tokens": 12.0, "gen_ai.usage.output_tokens": "7"}))
    assert (row["input_tokens"], row["output_tokens"]) == (12, 7)
