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

from tokentrace.sdk import call_values, documents

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


def observe(
    fn: F | None = None,
    *,
    name: str | None = None,
    kind: str | None = None,
    capture_input: bool = True,
    capture_output: bool = True,
) -> Any:
    """Trace each call of the decorated function.

    kind="tool" | "retrieval" | "agent" marks the span with the gen_ai operation (and the
    tool, data source or agent name); without it the span is a plain step of the trace. With
    content capture on, a retrieval's query and the documents it returned are recorded too
    (sdk/documents.py: what an evaluator of groundedness reads), and any other step's arguments
    by name and result (sdk/call_values.py; a generator's arguments only). capture_input=False or
    capture_output=False keeps one of them off this step's span (a secret argument, a large
    result), as Langfuse's decorator does.
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

        retrieval = kind == "retrieval"
        given, returned = (
            (call_values.TOOL_ARGUMENTS, call_values.TOOL_RESULT)
            if kind == "tool"
            else (call_values.INPUT, call_values.OUTPUT)
        )
        signature = None if retrieval else call_values.signature_of(func)

        def record_arguments(span: Span, args: tuple, kwargs: dict[str, Any]) -> None:
            if capture_input and not retrieval:  # (a retrieval's query is read with its documents)
                call_values.arguments(span, given, signature, args, kwargs)

        def record_result(span: Span, args: tuple, kwargs: dict[str, Any], result: Any) -> None:
            if retrieval:  # the query is its input, the documents its output
                asked = (args, kwargs) if capture_input else ((), {})
                documents.record(span, *asked, result if capture_output else None)
            elif capture_output:
                call_values.result(span, returned, result)

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
                    record_arguments(span, args, kwargs)
                    async for item in func(*args, **kwargs):
                        yield item

            return agen_wrapper  # type: ignore[return-value]
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with traced() as span:
                    record_arguments(span, args, kwargs)
                    result = await func(*args, **kwargs)
                    record_result(span, args, kwargs, result)
                    return result

            return async_wrapper  # type: ignore[return-value]
        if inspect.isgeneratorfunction(func):

            @functools.wraps(func)
            def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
                with traced() as span:
                    record_arguments(span, args, kwargs)
                    yield from func(*args, **kwargs)

            return gen_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with traced() as span:
                record_arguments(span, args, kwargs)
                result = func(*args, **kwargs)
                record_result(span, args, kwargs, result)
                return result

        return wrapper  # type: ignore[return-value]

    return decorate(fn) if fn is not None else decorate
