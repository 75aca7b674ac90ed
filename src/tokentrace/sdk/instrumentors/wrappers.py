"""The wrappers every create-style SDK method shares, sync and async: start the call, send
it, then either trace the stream handed back or read the response, and end the call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tokentrace.sdk.instrumentors.calls import Call, end_call, suppressed
from tokentrace.sdk.instrumentors.streams import AsyncTracedStream, StreamObserver, TracedStream

Begin = Callable[[Any, dict[str, Any]], Call]  # (SDK resource, request kwargs) → the started call
Respond = Callable[[Call, Any], None]  # record a complete response on the call's span


def create_wrappers(
    begin: Begin, respond: Respond, observer: Callable[[Call], StreamObserver] | None
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """(sync, async) wrapt wrappers; `observer` reads streamed items (None: never streamed)."""

    def streamed(kwargs: dict[str, Any], result: Any) -> bool:
        # with_raw_response results have .parse(): they are read as responses, not streams
        return observer is not None and kwargs.get("stream") is True and not hasattr(result, "parse")

    def sync_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        if suppressed():
            return wrapped(*args, **kwargs)
        call = begin(instance, kwargs)
        with call:
            result = wrapped(*args, **kwargs)
        if streamed(kwargs, result):
            return TracedStream(result, call, observer(call))
        # Read here, on the app's thread: leaving it to the export thread kept each response
        # alive until its batch went and cost more than it saved (bench/sdk_overhead.py --paired).
        respond(call, result)
        end_call(call)
        return result

    async def async_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        if suppressed():
            return await wrapped(*args, **kwargs)
        call = begin(instance, kwargs)
        with call:
            result = await wrapped(*args, **kwargs)
        if streamed(kwargs, result):
            return AsyncTracedStream(result, call, observer(call))
        respond(call, result)
        end_call(call)
        return result

    return sync_wrapper, async_wrapper
