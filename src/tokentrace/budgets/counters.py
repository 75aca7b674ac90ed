"""Budget counters: one integer per (budget, scope value, window), changed atomically.

`admit` is the whole enforcement step: it adds a call's reservation to every counter it counts
against, but only if each limited counter stays within its limit; otherwise it adds nothing.
Two implementations: `MemoryCounters` (one gateway) and `redis_counters` (several gateways
sharing budgets, one Lua script per step, so the check and the add cannot interleave).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    amount: int  # counter units to add (negative to give back)
    limit: int | None  # refuse when the counter would pass this; None: count only
    ttl_s: int  # the counter expires this long after its last change


@dataclass(frozen=True, slots=True)
class Admission:
    admitted: bool
    totals: tuple[int, ...]  # each counter after the step (unchanged when refused)
    over: tuple[int, ...]  # indexes of the limited entries that did not fit


class Counters(Protocol):
    def admit(self, entries: Sequence[Entry]) -> Admission: ...

    def add(self, entries: Sequence[Entry]) -> None: ...

    def read(self, keys: Sequence[str]) -> list[int]: ...


class MemoryCounters:
    """Counters in this process (thread-safe); expired windows are dropped as they are met."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[int, float]] = {}  # key -> (value, expires at, monotonic)
        self._lock = threading.Lock()

    def _get(self, key: str, now: float) -> int:
        value, expires = self._values.get(key, (0, 0.0))
        return value if expires > now else 0

    def admit(self, entries: Sequence[Entry]) -> Admission:
        now = time.monotonic()
        with self._lock:
            current = [self._get(e.key, now) for e in entries]
            over = tuple(
                i
                for i, (e, value) in enumerate(zip(entries, current, strict=True))
                if e.limit is not None and value + e.amount > e.limit
            )
            if over:
                return Admission(False, tuple(current), over)
            totals = []
            for entry, value in zip(entries, current, strict=True):
                self._values[entry.key] = (value + entry.amount, now + entry.ttl_s)
                totals.append(value + entry.amount)
        return Admission(True, tuple(totals), ())

    def add(self, entries: Sequence[Entry]) -> None:
        now = time.monotonic()
        with self._lock:
            for entry in entries:
                self._values[entry.key] = (self._get(entry.key, now) + entry.amount, now + entry.ttl_s)

    def read(self, keys: Sequence[str]) -> list[int]:
        now = time.monotonic()
        with self._lock:
            return [self._get(key, now) for key in keys]


class AsyncCounters:
    """Synchronous counters behind the gateway's asynchronous interface (for MemoryCounters,
    whose steps never wait on anything)."""

    def __init__(self, counters: Counters) -> None:
        self.counters = counters

    async def admit(self, entries: Sequence[Entry]) -> Admission:
        return self.counters.admit(entries)

    async def add(self, entries: Sequence[Entry]) -> None:
        self.counters.add(entries)

    async def read(self, keys: Sequence[str]) -> list[int]:
        return self.counters.read(keys)

    async def shared_policy(self) -> bytes | None:
        return None  # one gateway: the budgets set over its API live in its memory only

    async def share_policy(self, text: bytes) -> None:
        pass

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        pass
