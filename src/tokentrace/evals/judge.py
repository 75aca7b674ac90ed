"""An LLM judge: one evaluator's prompt sent to an OpenAI- or Anthropic-compatible endpoint,
its answer read as a verdict, with a record of the request as it went (its time, status and the
judge's own usage: what the evaluation cost, and what its span shows), answered or not."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
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


@dataclass(frozen=True)
class JudgeCall:
    """One request to a judge as it went, answered or not."""

    messages: list[dict[str, str]]
    start_ns: int
    end_ns: int
    status_code: int | None = None  # None: no answer at all (a timeout, unreachable)
    reply: str | None = None  # the judge's text
    model: str | None = None  # as the judge's answer names it
    input_tokens: int | None = None
    output_tokens: int | None = None
    error: str | None = None  # why it gave no verdict
    timed_out: bool = False


class JudgeError(ValueError):
    """The judge answered, but not with a verdict (not worth asking again)."""

    call: JudgeCall | None = None  # set by ask(): the request, with what it used


class JudgeUnavailable(Exception):
    """The judge did not answer (429, 5xx, a timeout): worth asking again later."""

    call: JudgeCall | None = None

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class JudgeAnswer:
    verdict: Verdict
    call: JudgeCall  # the request, with the judge's model and usage


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


def _count(value: Any) -> int | None:
    """A token count as the usage gives it, or None when it is no count."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _reply(endpoint: JudgeEndpoint, data: Any) -> tuple[str, str | None, int | None, int | None]:
    """(text, model, input tokens, output tokens) of the judge's answer."""
    if not isinstance(data, dict):
        raise JudgeError("the judge's answer is not a JSON object")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    model = data.get("model") if isinstance(data.get("model"), str) else None
    if endpoint.api == "anthropic":
        text = "".join(str(b.get("text", "")) for b in data.get("content") or [] if isinstance(b, dict))
        read = (_count(usage.get("cache_read_input_tokens")) or 0) + (
            _count(usage.get("cache_creation_input_tokens")) or 0
        )
        inputs = _count(usage.get("input_tokens"))
        return text, model, inputs + read if inputs is not None else None, _count(usage.get("output_tokens"))
    choices = data.get("choices") or [{}]
    first = choices[0] if isinstance(choices, list) and isinstance(choices[0], dict) else {}
    message = first.get("message") if isinstance(first.get("message"), dict) else {}
    text = message.get("content") or ""
    if not isinstance(text, str):
        raise JudgeError("the judge's answer has no text content")
    return text, model, _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The seconds a 429 or 5xx asks to wait: `retry-after-ms` (OpenAI's and Anthropic's, what
    their SDKs read first), else `retry-after`; None when neither is a number."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            continue
        if math.isfinite(seconds):  # "nan" would make every wait after it nan
            return max(seconds, 0.0)
    return None


def ask(client: httpx.Client, endpoint: JudgeEndpoint, messages: list[dict[str, str]]) -> JudgeAnswer:
    """The judge's verdict on one rendered prompt. JudgeUnavailable when it did not answer (rate
    limited, a server error, a timeout); JudgeError when its answer is no verdict. Either error
    carries the request's record (`call`), as the answer does."""
    import httpx  # only where a judge runs: `serve` without evaluators never loads it

    url, headers, body = _request(endpoint, messages)
    headers.update(endpoint.headers)
    call = JudgeCall(messages, time.time_ns(), 0)

    def failed(exc: JudgeError | JudgeUnavailable, **found: Any) -> JudgeError | JudgeUnavailable:
        exc.call = replace(call, end_ns=time.time_ns(), error=str(exc), **found)
        return exc

    try:
        response = client.post(url, json=body, headers=headers, timeout=endpoint.timeout_s)
    except httpx.TimeoutException as exc:
        message = f"the judge timed out after {endpoint.timeout_s:g} s"
        raise failed(JudgeUnavailable(message), timed_out=True) from exc
    except httpx.TransportError as exc:
        raise failed(JudgeUnavailable(f"the judge cannot be reached: {exc}")) from exc
    status = response.status_code
    if status == 429 or status >= 500:
        unavailable = JudgeUnavailable(f"the judge answered {status}", retry_after(response.headers))
        raise failed(unavailable, status_code=status)
    if status != 200:
        refused = JudgeError(f"the judge refused the request ({status}): {response.text[:300]}")
        raise failed(refused, status_code=status)
    try:
        data = response.json()
    except ValueError as exc:
        raise failed(
            JudgeError(f"the judge's answer is not JSON: {response.text[:200]!r}"), status_code=status
        ) from exc
    try:
        text, model, inputs, outputs = _reply(endpoint, data)
    except JudgeError as exc:
        raise failed(exc, status_code=status) from None
    answered = {
        "status_code": status,
        "reply": text,
        "model": model,
        "input_tokens": inputs,
        "output_tokens": outputs,
    }
    try:
        verdict = parse_verdict(text)
    except JudgeError as exc:  # answered, and used tokens: the record keeps what it cost
        raise failed(exc, **answered) from None
    return JudgeAnswer(verdict, replace(call, end_ns=time.time_ns(), **answered))
