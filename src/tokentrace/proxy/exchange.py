"""What the gateway learns from one call: the client's request, and the answer as it passes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tokentrace.budgets import Usage


class BadRequest(ValueError):
    """A request the gateway cannot forward as it is; answered 400 in the provider's format."""


@dataclass(slots=True)
class CallRequest:
    model: str | None
    stream: bool
    max_tokens: int | None
    attributes: dict[str, Any]  # gen_ai.request.* as the SDK records them
    hide_usage_event: bool = False  # the gateway asked the upstream for a usage event the client did not


@dataclass(slots=True)
class Outcome:
    """The answer's facts, from its JSON body or its stream events."""

    response_model: str | None = None
    response_id: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    input_tokens: int | None = None  # OTel meaning: cached and cache-write tokens included
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    input_audio_tokens: int | None = None  # parts of the input and output counts
    output_audio_tokens: int | None = None
    first_token_ns: int | None = None
    output_events: int = 0  # stream events that carried output (a lower bound on tokens)
    refusal: bool = False
    service_tier: str | None = None  # the tier the answer says it was served (and billed) at

    def usage(self) -> Usage:
        """What the call used, for budgets; a stream cut short counts the output it delivered."""
        output = self.output_tokens if self.output_tokens is not None else self.output_events
        return Usage(
            self.input_tokens or 0,
            output or 0,
            self.cache_read_tokens or 0,
            self.cache_write_tokens or 0,
            self.service_tier,
        )

    def attributes(self) -> dict[str, Any]:
        values = {
            "gen_ai.response.model": self.response_model,
            "gen_ai.response.id": self.response_id,
            "gen_ai.response.finish_reasons": self.finish_reasons or None,
            "gen_ai.usage.input_tokens": self.input_tokens,
            "gen_ai.usage.output_tokens": self.output_tokens,
            "gen_ai.usage.cache_read.input_tokens": self.cache_read_tokens,
            "gen_ai.usage.cache_creation.input_tokens": self.cache_write_tokens,
            "gen_ai.usage.reasoning.output_tokens": self.reasoning_tokens,
            "gen_ai.usage.audio.input_tokens": self.input_audio_tokens,
            "gen_ai.usage.audio.output_tokens": self.output_audio_tokens,
            "tokentrace.refusal": self.refusal or None,
            "tokentrace.service_tier": self.service_tier,
        }
        return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One provider route the gateway serves, and how to read its requests and answers."""

    provider: str  # the upstream it goes to: openai or anthropic
    operation: str  # gen_ai.operation.name
    read_request: Callable[[dict[str, Any]], CallRequest]
    read_json: Callable[[Outcome, dict[str, Any]], None]
    read_event: Callable[[Outcome, dict[str, Any], int], bool]  # True: keep the event from the client
    error_body: Callable[[int, str, str], bytes]  # status, error type, message


def integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def number(value: Any) -> float | int | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def require_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("the request must name a model")
    return model


def no_events(outcome: Outcome, data: dict[str, Any], now_ns: int) -> bool:
    return False
