"""Streams handed back to the app, traced: TTFT on the first chunk, the span ends with the stream."""

from __future__ import annotations

import time
from typing import Any, Protocol

import wrapt

from tokentrace.sdk.instrumentors.calls import Call, end_call, fail_call


class StreamObserver(Protocol):
    def item(self, call: Call, item: Any) -> None: ...

    def finish(self, call: Call) -> None: ...


def _seen(call: Call, observer: StreamObserver, item: Any) -> None:
    if call.first_token_ns is None:
        call.first_token_ns = time.time_ns()
    observer.item(call, item)


def _done(call: Call, observer: StreamObserver, error: BaseException | None = None) -> None:
    if call.ended:
        return
    if error is not None:
        fail_call(call, error)
        return
    observer.finish(call)
    end_call(call)


def _failure(exc_info: tuple) -> Exception | None:
    """The error a `with` block over a stream ended with, if it failed."""
    return exc_info[1] if isinstance(exc_info[1], Exception) else None


class TracedStream(wrapt.ObjectProxy):
    """A sync stream (iterator, context manager) that reports to its call's span."""

    def __init__(self, wrapped: Any, call: Call, observer: StreamObserver) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_observer = observer

    def __iter__(self) -> TracedStream:
        return self

    def __next__(self) -> Any:
        try:
            item = self.__wrapped__.__next__()
        except StopIteration:
            _done(self._self_call, self._self_observer)
            raise
        except Exception as exc:
            _done(self._self_call, self._self_observer, exc)
            raise
        _seen(self._self_call, self._self_observer, item)
        return item

    def __enter__(self) -> TracedStream:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            _done(self._self_call, self._self_observer, _failure(exc_info))

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            _done(self._self_call, self._self_observer)


class AsyncTracedStream(wrapt.ObjectProxy):
    """An async stream (async iterator, async context manager) that reports to its call's span."""

    def __init__(self, wrapped: Any, call: Call, observer: StreamObserver) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_observer = observer

    def __aiter__(self) -> AsyncTracedStream:
        return self

    async def __anext__(self) -> Any:
        try:
            item = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            _done(self._self_call, self._self_observer)
            raise
        except Exception as exc:
            _done(self._self_call, self._self_observer, exc)
            raise
        _seen(self._self_call, self._self_observer, item)
        return item

    async def __aenter__(self) -> AsyncTracedStream:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            _done(self._self_call, self._self_observer, _failure(exc_info))

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            _done(self._self_call, self._self_observer)
