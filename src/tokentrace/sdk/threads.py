"""Carry the current context (tags, the active span) into threads the app starts.

contextvars already flow into asyncio tasks; threads start with an empty context, so a
span started in a worker thread would lose its parent and its tags without this.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import threading
from typing import Any

import wrapt

_installed = False


def _thread_start(wrapped: Any, instance: threading.Thread, args: tuple, kwargs: dict) -> Any:
    instance._tokentrace_context = contextvars.copy_context()  # type: ignore[attr-defined]
    return wrapped(*args, **kwargs)


def _thread_run(wrapped: Any, instance: threading.Thread, args: tuple, kwargs: dict) -> Any:
    ctx = getattr(instance, "_tokentrace_context", None)
    return ctx.run(wrapped, *args, **kwargs) if ctx is not None else wrapped(*args, **kwargs)


def _submit(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    fn, *rest = args
    return wrapped(contextvars.copy_context().run, fn, *rest, **kwargs)


def propagate_to_threads() -> None:
    """Install once: threading.Thread and ThreadPoolExecutor.submit carry the caller's context."""
    global _installed
    if _installed:
        return
    wrapt.wrap_function_wrapper(threading.Thread, "start", _thread_start)
    wrapt.wrap_function_wrapper(threading.Thread, "run", _thread_run)
    wrapt.wrap_function_wrapper(concurrent.futures.ThreadPoolExecutor, "submit", _submit)
    _installed = True
