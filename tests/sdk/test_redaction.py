"""The default redaction rules and the content policy they serve."""

from __future__ import annotations

import pytest

from tokentrace.redaction import redact_defaults
from tokentrace.sdk import content


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail jane.doe+tag@corp.example.co.uk now", "mail [EMAIL] now"),
        ("key sk-proj-abcdefghijklmnopqrstuvwx1234", "key [API_KEY]"),
        ("key sk-ant-api03-ABCDEFGHIJKLMNOPQRSTUVWX_yz", "key [API_KEY]"),
        ("aws AKIAIOSFODNN7EXAMPLE", "aws [API_KEY]"),
        ("gh ghp_" + "a" * 36, "gh [API_KEY]"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "Authorization: Bearer [API_KEY]"),
        ("card 4111 1111 1111 1111 ok", "card [CARD] ok"),
        ("card 4111-1111-1111-1111", "card [CARD]"),
        ("amex 378282246310005", "amex [CARD]"),
    ],
)
def test_secrets_are_replaced(text, expected):
    assert redact_defaults(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 4111-1111-1111-1112 fails the Luhn check",  # not a card number
        "call 555-1234 in 2026, ticket #123456",
        "the user@ symbol alone",
        "sk-short",
        "version 1.2.3, ids 12345678",
        " ".join(["\uff14" + "\uff11" * 3] + ["\uff11" * 4] * 3),  # full-width: the card rule reads 0-9
    ],
)
def test_ordinary_text_is_left_alone(text):
    assert redact_defaults(text) == text


class _Span:
    def __init__(self) -> None:
        self.attributes: dict[str, str] = {}

    def set_attribute(self, key: str, value: str) -> None:
        self.attributes[key] = value


@pytest.fixture
def policy():
    yield
    content.configure(content.ContentPolicy())


def test_nothing_is_recorded_when_capture_is_off(policy):
    span = _Span()
    content.record(span, inputs=[{"role": "user", "parts": [content.text_part("hi")]}])
    assert span.attributes == {}


def test_a_custom_hook_and_the_size_cap_apply_to_every_text_field(policy):
    content.configure(content.ContentPolicy(True, lambda text: text.replace("acme", "[TENANT]"), 16))
    span = _Span()
    content.record(
        span,
        system=[content.text_part("acme rules")],
        inputs=[{"role": "tool", "parts": [content.tool_response_part("t1", {"tenant": "acme"})]}],
        outputs=[{"role": "assistant", "parts": [content.tool_call_part("t2", "f", "acme " * 10)]}],
    )
    assert span.attributes["gen_ai.system_instructions"] == '[{"type":"text","content":"[TENANT] rules"}]'
    assert '"response":"{\\"tenant\\":\\"[T' in span.attributes["gen_ai.input.messages"]
    assert "more characters not recorded" in span.attributes["gen_ai.output.messages"]
    assert "acme" not in "".join(span.attributes.values())


@pytest.mark.parametrize(
    ("value", "enabled"), [("true", True), ("SPAN_ONLY", True), ("false", False), ("", False)]
)
def test_the_standard_environment_variable_turns_capture_on(monkeypatch, value, enabled):
    monkeypatch.setenv(content.ENV, value)
    assert content.enabled_by_env() is enabled
