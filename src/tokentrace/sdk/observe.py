"""`@tokentrace.observe`: a span around any function (sync, async, generator), as a tool,
retrieval, agent step or plain span."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from tokentrace.sdk import documents, tool_calls

F = TypeVar("F", bound=Callable[..., Any])

_KINDS = {
    "tool": ("execute_tool", "gen_ai.tool.name"),
    "retrieval": ("retrieval", "gen_ai.data_source.id"),
    "agent": ("invoke_agent", "gen_ai.agent.name"),
}


def _tracer() -> trace.Tracer:
    return trace.get_tracer("tokentrace.sdk")


def _failed(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
    span.set_attribute("error.type", type(exc).__qualname__)


def observe(fn: F | None = None, *, name: str | None = None, kind: str | None = None) -> Any:
    """Trace each call of the decorated function.

    kind="tool" | "retrieval" | "agent" marks the span with the gen_ai operation (and the
    tool, data source or agent name); without it the span is a plain step of the trace. With
    content capture on, a retrieval's query and the documents it returned are recorded too
    (sdk/documents.py: what an evaluator of groundedness reads), and a tool's arguments and
    result (sdk/tool_calls.py).
    """
    if kind is not None and kind not in _KINDS:
        raise ValueError(f"kind must be one of {sorted(_KINDS)} or None")

    def decorate(func: F) -> F:
        label = name or func.__qualname__.rsplit("<locals>.", 1)[-1]
        attributes: dict[str, str] = {}
        span_name = label
        if kind is not None:
            operation, key = _KINDS[kind]
            attributes = {"gen_ai.operation.name": operation, key: label}
            span_name = f"{operation} {label}"

        retrieval, tool = kind == "retrieval", kind == "tool"
        signature = tool_calls.signature_of(func) if tool else None

        def record_result(span: Span, args: tuple, kwargs: dict[str, Any], result: Any) -> None:
            if retrieval:
                documents.record(span, args, kwargs, result)
            elif tool:
                tool_calls.result(span, result)

        @contextmanager
        def traced() -> Iterator[Span]:
            with _tracer().start_as_current_span(
                span_name, attributes=attributes, record_exception=False, set_status_on_exception=False
            ) as span:
                try:
                    yield span
                except GeneratorExit:  # a generator closed early by its consumer did not fail
                    raise
                except BaseException as exc:
                    _failed(span, exc)
                    raise

        if inspect.isasyncgenfunction(func):

            @functools.wraps(func)
            async def agen_wrapper(*args: Any, **kwargs: Any) -> Any:
                with traced() as span:
                    if tool:
                        tool_calls.arguments(span, signature, args, kwargs)
                    async for item in func(*args, **kwargs):
                        yield item

            return agen_wrapper  # type: ignore[return-value]
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with traced() as span:
                    if tool:
                        tool_calls.arguments(span, signature, args, kwargs)
                    result = await func(*args, **kwargs)
                    record_result(span, args, kwargs, result)
                    return result

            return async_wrapper  # type: ignore[return-value]
        if inspect.isgeneratorfunction(func):

            @functools.wraps(func)
            def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
                with traced() as span:
                    if tool:
                        tool_calls.arguments(span, signature, args, kwargs)
                    yield from func(*args, **kwargs)

            return gen_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with traced() as span:
                if tool:
                    tool_calls.arguments(span, signature, args, kwargs)
                result = func(*args, **kwargs)
                record_result(span, args, kwargs, result)
                return result

        return wrapper  # type: ignore[return-value]

    return decorate(fn) if fn is not None else decorate
