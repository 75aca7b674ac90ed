"""The wrappers every create-style SDK method shares, sync and async: start the call, send
it, then either trace the stream handed back or read the response, and end the call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import context
from opentelemetry.context import Context

from tokentrace.sdk.instrumentors.calls import SUPPRESS, Call, end_call
from tokentrace.sdk.instrumentors.streams import AsyncTracedStream, StreamObserver, TracedStream

# (SDK resource, request kwargs, the current context) → the started call
Begin = Callable[[Any, dict[str, Any], Context], Call]
Respond = Callable[[Call, Any], None]  # record a complete response on the call's span


def create_wrappers(
    begin: Begin, respond: Respond, observer: Callable[[Call], StreamObserver] | None
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """(sync, async) wrapt wrappers; `observer` reads streamed items (None: never streamed)."""

    # The current context is read once per call: for the suppression flag, the parent and the tags.
    # A result is a stream when one was asked for, unless it is a with_raw_response result
    # (it has .parse(), and is read as a response).
    def sync_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        ctx = context.get_current()
        if ctx.get(SUPPRESS):
            return wrapped(*args, **kwargs)
        call = begin(instance, kwargs, ctx)
        with call:
            result = wrapped(*args, **kwargs)
        if observer is not None and kwargs.get("stream") is True and not hasattr(result, "parse"):
            return TracedStream(result, call, observer(call))
        # Read here, on the app's thread: leaving it to the export thread kept each response
        # alive until its batch went and cost more than it saved (bench/sdk_overhead.py --paired).
        respond(call, result)
        end_call(call)
        return result

    async def async_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        ctx = context.get_current()
        if ctx.get(SUPPRESS):
            return await wrapped(*args, **kwargs)
        call = begin(instance, kwargs, ctx)
        with call:
            result = await wrapped(*args, **kwargs)
        if observer is not None and kwargs.get("stream") is True and not hasattr(result, "parse"):
            return AsyncTracedStream(result, call, observer(call))
        respond(call, result)
        end_call(call)
        return result

    return sync_wrapper, async_wrapper
