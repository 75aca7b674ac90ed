"""What every instrumented LLM call shares: its span, its errors, its attempts."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from tokentrace.sdk import call_span

_tracer = trace.get_tracer(call_span.SCOPE)


@dataclass(slots=True)
class Attempt:
    start_ns: int
    end_ns: int = 0
    status_code: int | None = None
    error: BaseException | None = None


class Call:
    """One logical LLM call: its span and every HTTP attempt the SDK's retry loop made.

    `with call:` runs the SDK's request as this call: its span is current, its attempts are
    recorded, and an exception ends the span as failed. (A class, not a generator context
    manager: this runs on every LLM call, and each object and frame less counts.)"""

    __slots__ = ("_tokens", "attempts", "ctx", "ended", "first_token_ns", "span", "started_ns", "wants_json")

    def __init__(self, span: Span, ctx: Context | None = None) -> None:
        self.span = span
        # The context the call started in, where its request goes out at once (None: the
        # request runs in whatever context is current when `with call:` is entered).
        self.ctx = ctx
        # Wall time at the start; TTFT and attempt times are measured from it, so
        # they hold whatever clock stamps the span itself.
        self.started_ns = time.time_ns()
        self.attempts: list[Attempt] = []
        self.first_token_ns: int | None = None
        self.ended = False
        self.wants_json = False  # the request asked for JSON output: the SDK checks the answer
        self._tokens: tuple[Any, Any] | None = None

    def span_time(self, wall_ns: int) -> int:
        """A wall-clock instant of this call on the span's own clock."""
        return (getattr(self.span, "start_time", None) or self.started_ns) + (wall_ns - self.started_ns)

    def __enter__(self) -> Call:
        entered = trace.set_span_in_context(self.span, self.ctx)
        self._tokens = (current_call.set(self), context.attach(entered))
        return self

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: Any) -> None:
        call_token, context_token = self._tokens
        context.detach(context_token)
        current_call.reset(call_token)
        if exc is not None:
            fail_call(self, exc)


# bool is an int; a tuple, as `str | int | float` would build a union on every call
_PLAIN = (str, int, float)

#: The call in progress in this context: the HTTP layer records its attempts here.
current_call: contextvars.ContextVar[Call | None] = contextvars.ContextVar("tokentrace_call", default=None)
#: Told of each call's span as it ends, before export: `tokentrace.budget`'s open grant
#: settles its reservation from the usage recorded there.
usage_sink: contextvars.ContextVar[Callable[[Span], None] | None] = contextvars.ContextVar(
    "tokentrace_usage_sink", default=None
)


#: OTel's convention to turn instrumentation off for a block of code (exporters use it for
#: their own requests): every wrapped SDK method looks for it in the current context.
SUPPRESS = context._SUPPRESS_INSTRUMENTATION_KEY


def start_call(
    operation: str, provider: str, model: Any, request: dict[str, Any], ctx: Context | None = None
) -> Call:
    """Start the call's span under `ctx` (the current context when None) with the request's
    model and attributes, those given as plain values (not None, nor the SDKs' NOT_GIVEN /
    Omit sentinels)."""
    attrs = {"gen_ai.operation.name": operation, "gen_ai.provider.name": provider}
    name = operation
    if isinstance(model, str) and model:
        attrs["gen_ai.request.model"] = model
        name = f"{operation} {model}"
    for key, value in request.items():
        if isinstance(value, _PLAIN):
            attrs[key] = value
    return Call(call_span.start(name, attrs, ctx), ctx)


def parsed_response(result: Any) -> Any:
    """The response model, also behind `with_raw_response` (which caches its parse)."""
    # model_dump first: a pydantic model answers a missing attribute (`parse`) by raising
    # inside its __getattr__, ~3 µs on every call.
    if hasattr(result, "model_dump"):
        return result
    parse = getattr(result, "parse", None)
    return parse() if callable(parse) else result


def record_response(
    span: Span, model: Any, ident: Any, reasons: list[str] | None, usage: dict[str, int]
) -> None:
    """Response model, id, finish reasons and the token `usage` (a fresh dict of int counts,
    which this fills and hands over), put on the span at once."""
    attributes = usage
    if isinstance(model, str):
        attributes["gen_ai.response.model"] = model
    if isinstance(ident, str):
        attributes["gen_ai.response.id"] = ident
    if reasons:
        attributes["gen_ai.response.finish_reasons"] = tuple(reasons)  # as the SDK keeps a list
    call_span.put(span, attributes)


def check_output(call: Call, texts: list[str], refused: bool = False) -> None:
    """Facts about the answer that need its text but not its recording: a refusal, and
    whether JSON output, when asked for, parses."""
    if refused:
        call.span.set_attribute("tokentrace.refusal", True)
    if call.wants_json and texts:
        try:
            for text in texts:
                orjson.loads(text)
            valid = True
        except ValueError:
            valid = False
        call.span.set_attribute("tokentrace.output.json_valid", valid)


def error_type(exc: BaseException) -> str:
    """The canonical error type of an SDK exception (class, status code and error code read)."""
    name = type(exc).__name__
    status = getattr(exc, "status_code", None)
    code = str(getattr(exc, "code", "") or "")
    message = str(exc).lower()
    if "ratelimit" in name.lower() or status == 429:
        return "rate_limit"
    if "timeout" in name.lower():
        return "timeout"
    if code == "context_length_exceeded" or "context length" in message or "prompt is too long" in message:
        return "context_length"
    if code == "content_filter" or "content_filter" in message:
        return "content_filter"
    if status in (401, 403) or "authentication" in name.lower() or "permission" in name.lower():
        return "auth"
    if (
        (status is not None and status >= 500)
        or "internalserver" in name.lower()
        or "overloaded" in name.lower()
    ):
        return "server_error"
    if status is not None and 400 <= status < 500:
        return "bad_request"
    return "other"


def _emit_attempts(call: Call) -> None:
    """One child span per attempt (called only when the SDK retried: a first-try success adds none)."""
    call.span.set_attribute("tokentrace.attempts", len(call.attempts))
    parent = trace.set_span_in_context(call.span)
    for number, attempt in enumerate(call.attempts):
        span = _tracer.start_span(
            f"attempt {number + 1}",
            context=parent,
            kind=SpanKind.CLIENT,
            start_time=attempt.start_ns,
            attributes={"http.request.resend_count": number},
        )
        if attempt.status_code is not None:
            span.set_attribute("http.response.status_code", attempt.status_code)
        failed = attempt.error is not None or (attempt.status_code or 0) >= 400
        if failed:
            kind = error_type(attempt.error) if attempt.error else _status_type(attempt.status_code)
            span.set_attribute("error.type", kind)
            span.set_status(Status(StatusCode.ERROR, kind))
        span.end(end_time=call.span_time(attempt.end_ns or time.time_ns()))


def _status_type(status: int | None) -> str:
    if status == 429:
        return "rate_limit"
    if status is not None and status >= 500:
        return "server_error"
    if status in (401, 403):
        return "auth"
    return "bad_request"


def fail_call(call: Call, exc: BaseException) -> None:
    if call.ended:
        return
    kind = error_type(exc)
    call.span.record_exception(exc)
    call.span.set_attribute("error.type", kind)
    status = getattr(exc, "status_code", None)
    if status is not None:
        call.span.set_attribute("http.response.status_code", status)
    call.span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:500]))
    end_call(call)


def end_call(call: Call) -> None:
    if call.ended:
        return
    call.ended = True
    if call.first_token_ns is not None:
        call.span.set_attribute("tokentrace.ttft_ms", (call.first_token_ns - call.started_ns) / 1e6)
    if len(call.attempts) > 1:
        _emit_attempts(call)
    sink = usage_sink.get()
    if sink is not None:
        sink(call.span)
    call.span.end()


def send_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """Wraps an SDK's one-HTTP-attempt method: records the attempt in the current call."""
    call = current_call.get()
    if call is None:
        return wrapped(*args, **kwargs)
    attempt = Attempt(time.time_ns())
    call.attempts.append(attempt)
    try:
        response = wrapped(*args, **kwargs)
    except BaseException as exc:
        attempt.end_ns, attempt.error = time.time_ns(), exc
        raise
    attempt.end_ns, attempt.status_code = time.time_ns(), response.status_code
    return response


async def send_async_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """The async twin of send_wrapper."""
    call = current_call.get()
    if call is None:
        return await wrapped(*args, **kwargs)
    attempt = Attempt(time.time_ns())
    call.attempts.append(attempt)
    try:
        response = await wrapped(*args, **kwargs)
    except BaseException as exc:
        attempt.end_ns, attempt.error = time.time_ns(), exc
        raise
    attempt.end_ns, attempt.status_code = time.time_ns(), response.status_code
    return response
