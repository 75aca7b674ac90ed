"""An LLM judge: one evaluator's prompt sent to an OpenAI- or Anthropic-compatible endpoint,
its answer read as a verdict, with the judge's own usage (what the evaluation cost)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from tokentrace.evals.verdict import Verdict

if TYPE_CHECKING:
    import httpx

_OBJECT = re.compile(r"\{.*\}", re.S)


@dataclass(frozen=True)
class JudgeEndpoint:
    """Where a judge runs: `url` is the API's base (`https://api.openai.com/v1`, or
    `https://api.anthropic.com` with api = anthropic)."""

    url: str
    model: str
    api: str = "openai"  # openai | anthropic
    api_key: str | None = None
    max_tokens: int = 300
    timeout_s: float = 60.0
    # Sent with every request (a gateway's virtual key, Azure's api-key, OpenRouter's referer).
    headers: tuple[tuple[str, str], ...] = ()


class JudgeError(ValueError):
    """The judge answered, but not with a verdict (not worth asking again)."""


class JudgeUnavailable(Exception):
    """The judge did not answer (429, 5xx, a timeout): worth asking again later."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class JudgeAnswer:
    verdict: Verdict
    model: str | None  # as the judge's answer names it
    input_tokens: int | None
    output_tokens: int | None


def parse_verdict(text: str) -> Verdict:
    """The verdict in a judge's reply: a JSON object with a score from 0 to 1 (a boolean reads as
    1 or 0), and optionally a label and an explanation; JudgeError says what is wrong."""
    found = _OBJECT.search(text or "")
    if found is None:
        raise JudgeError(f"the judge's reply has no JSON object: {text[:200]!r}")
    try:
        data = orjson.loads(found.group(0))
    except orjson.JSONDecodeError as exc:
        raise JudgeError(f"the judge's reply is not valid JSON ({exc}): {found.group(0)[:200]!r}") from None
    if not isinstance(data, dict):
        raise JudgeError("the judge's reply is not a JSON object")
    score = data.get("score")
    if isinstance(score, bool):
        score = float(score)
    if not isinstance(score, int | float) or not 0 <= score <= 1:
        raise JudgeError(f"the judge's score must be a number from 0 to 1, got {score!r}")
    label, explanation = data.get("label"), data.get("explanation")
    return Verdict(
        float(score),
        str(label) if label is not None else None,
        str(explanation)[:2000] if explanation is not None else None,
    )


def _request(endpoint: JudgeEndpoint, messages: list[dict[str, str]]) -> tuple[str, dict[str, str], Any]:
    if endpoint.api == "anthropic":
        system = "\n".join(m["content"] for m in messages if m["role"] == "system")
        body = {
            "model": endpoint.model,
            "max_tokens": endpoint.max_tokens,
            "system": system,
            "messages": [m for m in messages if m["role"] != "system"],
        }
        headers = {
            "anthropic-version": "2023-06-01",
            **({"x-api-key": endpoint.api_key} if endpoint.api_key else {}),
        }
        return f"{endpoint.url.rstrip('/')}/v1/messages", headers, body
    body = {
        "model": endpoint.model,
        "messages": messages,
        "max_tokens": endpoint.max_tokens,
        "temperature": 0,
        "response_format": {"type": "json_object"},
    }
    headers = {"authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
    return f"{endpoint.url.rstrip('/')}/chat/completions", headers, body


def _reply(endpoint: JudgeEndpoint, data: Any) -> tuple[str, str | None, int | None, int | None]:
    """(text, model, input tokens, output tokens) of the judge's answer."""
    if not isinstance(data, dict):
        raise JudgeError("the judge's answer is not a JSON object")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    if endpoint.api == "anthropic":
        text = "".join(b.get("text", "") for b in data.get("content") or [] if isinstance(b, dict))
        read = (usage.get("cache_read_input_tokens") or 0) + (usage.get("cache_creation_input_tokens") or 0)
        inputs = usage.get("input_tokens")
        return (
            text,
            data.get("model"),
            inputs + read if isinstance(inputs, int) else None,
            usage.get("output_tokens"),
        )
    choices = data.get("choices") or [{}]
    text = ((choices[0] or {}).get("message") or {}).get("content") or ""
    return text, data.get("model"), usage.get("prompt_tokens"), usage.get("completion_tokens")


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The seconds a 429 or 5xx asks to wait: `retry-after-ms` (OpenAI's and Anthropic's, what
    their SDKs read first), else `retry-after`; None when neither is a number."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(float(value) / scale, 0.0)
        except ValueError:
            continue
    return None


def ask(client: httpx.Client, endpoint: JudgeEndpoint, messages: list[dict[str, str]]) -> JudgeAnswer:
    """The judge's verdict on one rendered prompt. JudgeUnavailable when it did not answer (rate
    limited, a server error, a timeout); JudgeError when its answer is no verdict."""
    import httpx  # only where a judge runs: `serve` without evaluators never loads it

    url, headers, body = _request(endpoint, messages)
    headers.update(endpoint.headers)
    try:
        response = client.post(url, json=body, headers=headers, timeout=endpoint.timeout_s)
    except httpx.TimeoutException as exc:
        raise JudgeUnavailable(f"the judge timed out after {endpoint.timeout_s:g} s") from exc
    except httpx.TransportError as exc:
        raise JudgeUnavailable(f"the judge cannot be reached: {exc}") from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise JudgeUnavailable(f"the judge answered {response.status_code}", retry_after(response.headers))
    if response.status_code != 200:
        raise JudgeError(f"the judge refused the request ({response.status_code}): {response.text[:300]}")
    try:
        data = response.json()
    except ValueError as exc:
        raise JudgeError(f"the judge's answer is not JSON: {response.text[:200]!r}") from exc
    text, model, inputs, outputs = _reply(endpoint, data)
    return JudgeAnswer(parse_verdict(text), model, inputs, outputs)
