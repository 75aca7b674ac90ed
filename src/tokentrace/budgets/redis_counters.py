"""Budget counters in Redis, shared by every gateway (and SDK) that points at the same server.

Each step is one Lua script, run atomically by Redis: no other gateway's call can slip between
a check and its add. Amounts are integers (nano-dollars, tokens), so INCRBY is exact.
`RedisCounters` serves synchronous callers (the SDK's `budget.check`), `AsyncRedisCounters` the
gateway's event loop; both send the same scripts.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis
import redis.asyncio

from tokentrace.budgets.counters import Admission, Entry

POLICY_KEY = "tokentrace:budgets:policy"

# KEYS: the counters. ARGV: amount, limit (-1: none), ttl for each key in turn.
_ADMIT = """
local totals, over = {}, {}
for i, key in ipairs(KEYS) do
  local amount, limit = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1])
  local value = tonumber(redis.call('GET', key) or '0')
  totals[i] = value
  if limit >= 0 and value + amount > limit then over[#over + 1] = i - 1 end
end
if #over > 0 then return {0, totals, over} end
for i, key in ipairs(KEYS) do
  totals[i] = redis.call('INCRBY', key, ARGV[3*i-2])
  redis.call('EXPIRE', key, ARGV[3*i])
end
return {1, totals, over}
"""

_ADD = """
for i, key in ipairs(KEYS) do
  redis.call('INCRBY', key, ARGV[2*i-1])
  redis.call('EXPIRE', key, ARGV[2*i])
end
return 0
"""


def _admit_args(entries: Sequence[Entry]) -> list[int]:
    args: list[int] = []
    for entry in entries:
        args += [entry.amount, -1 if entry.limit is None else entry.limit, entry.ttl_s]
    return args


def _add_args(entries: Sequence[Entry]) -> list[int]:
    args: list[int] = []
    for entry in entries:
        args += [entry.amount, entry.ttl_s]
    return args


def _admission(reply: list) -> Admission:
    admitted, totals, over = reply
    return Admission(bool(admitted), tuple(int(t) for t in totals), tuple(int(i) for i in over))


class RedisCounters:
    """Counters in Redis for synchronous code."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self._admit = self.client.register_script(_ADMIT)
        self._add = self.client.register_script(_ADD)

    def admit(self, entries: Sequence[Entry]) -> Admission:
        if not entries:
            return Admission(True, (), ())
        return _admission(self._admit(keys=[e.key for e in entries], args=_admit_args(entries)))

    def add(self, entries: Sequence[Entry]) -> None:
        if entries:
            self._add(keys=[e.key for e in entries], args=_add_args(entries))

    def read(self, keys: Sequence[str]) -> list[int]:
        return [int(v or 0) for v in self.client.mget(keys)] if keys else []

    def close(self) -> None:
        self.client.close()


class AsyncRedisCounters:
    """Counters in Redis for the gateway's event loop."""

    def __init__(self, url: str) -> None:
        self.client = redis.asyncio.Redis.from_url(url)
        self._admit = self.client.register_script(_ADMIT)
        self._add = self.client.register_script(_ADD)

    async def admit(self, entries: Sequence[Entry]) -> Admission:
        if not entries:
            return Admission(True, (), ())
        return _admission(await self._admit(keys=[e.key for e in entries], args=_admit_args(entries)))

    async def add(self, entries: Sequence[Entry]) -> None:
        if entries:
            await self._add(keys=[e.key for e in entries], args=_add_args(entries))

    async def read(self, keys: Sequence[str]) -> list[int]:
        return [int(v or 0) for v in await self.client.mget(keys)] if keys else []

    async def shared_policy(self) -> bytes | None:
        """The budgets last set over a gateway's API (JSON), shared by every gateway."""
        return await self.client.get(POLICY_KEY)

    async def share_policy(self, text: bytes) -> None:
        await self.client.set(POLICY_KEY, text)

    async def ping(self) -> bool:
        return bool(await self.client.ping())

    async def close(self) -> None:
        await self.client.aclose()
