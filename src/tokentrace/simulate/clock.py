"""Virtual time for compressed traffic: each simulated request runs for real (real latency),
stamped at its virtual arrival time by shifting the clock of the thread that runs it.

Only the demo and traffic generator use this: it replaces the OTel SDK's module-level
`time_ns` so spans carry virtual timestamps while their durations stay real.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager

_shift_ns: contextvars.ContextVar[int] = contextvars.ContextVar("tokentrace_sim_shift", default=0)
_installed = False


def virtual_time_ns() -> int:
    return time.time_ns() + _shift_ns.get()


def install() -> None:
    """Make the OTel SDK stamp spans with the virtual clock (idempotent)."""
    global _installed
    if _installed:
        return
    import opentelemetry.sdk.trace as sdk_trace

    sdk_trace.time_ns = virtual_time_ns  # type: ignore[attr-defined]
    _installed = True


@contextmanager
def at(virtual_ns: int) -> Iterator[None]:
    """Run the block as if it started at `virtual_ns`."""
    token = _shift_ns.set(virtual_ns - time.time_ns())
    try:
        yield
    finally:
        _shift_ns.reset(token)
