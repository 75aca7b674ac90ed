"""The simulated provider's memory: prompt prefixes seen (for caching), attempts (for retries),
and the ledger of every answer it gave (the truth a test compares a tracing backend with)."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson

from tokentrace.simulate import faults
from tokentrace.simulate.models import ModelProfile

LEDGER_SIZE = 100_000


@dataclass
class ProviderState:
    seed: int = 0
    realistic_latency: bool = False  # off: answers as fast as possible (tests, benchmarks)
    # Answer chat completions with short ids that repeat (`chatcmpl-<0..999>`), as Ollama and
    # other OpenAI-compatible servers do: a response id is then no identity.
    short_ids: bool = False
    # The newest answers (bounded: a demo runs for days).
    ledger: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=LEDGER_SIZE))
    # The Batch APIs' files and batches (simulate/batches.py), by id.
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    _prefixes: set[str] = field(default_factory=set)
    _attempts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rng: random.Random = field(default_factory=lambda: random.Random(0))
    _responses: itertools.count = field(default_factory=itertools.count)

    def response_id(self, prefix: str) -> str:
        """A new id for each response, as providers give (the same prompt twice is two answers)."""
        number = next(self._responses)
        if self.short_ids and prefix == "chatcmpl-":
            with self._lock:
                return f"{prefix}{self._rng.randint(0, 999)}"
        digest = hashlib.sha256(f"{self.seed}:{prefix}:{number}".encode()).hexdigest()[:24]
        return f"{prefix}{digest}"

    def record(self, api: str, model: str, status: int, **facts: Any) -> None:
        """Add one answer to the ledger: its API, model, HTTP status and, for a success, its id,
        usage (as the API reports it), whether it streamed and whether it called a tool."""
        with self._lock:
            self.ledger.append({"api": api, "model": model, "status": status, **facts})

    def seen_before(self, prefix: object) -> bool:
        """Record a cacheable prefix; True if an earlier request already wrote it to the cache."""
        key = hashlib.sha256(orjson.dumps(prefix, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()
        with self._lock:
            if key in self._prefixes:
                return True
            self._prefixes.add(key)
            return False

    def forced_error(self, directives: faults.Directives, body: bytes) -> int | None:
        """The HTTP status this attempt must fail with, if any."""
        if directives.error is not None:
            return directives.error
        if directives.rate_limit_rate:
            with self._lock:
                if self._rng.random() < directives.rate_limit_rate:
                    return 429
        if directives.fail_first:
            key = hashlib.sha256(body).hexdigest()
            with self._lock:
                attempt = self._attempts.get(key, 0) + 1
                self._attempts[key] = attempt
            if attempt <= directives.fail_first:
                return 429
        return None

    def first_token_delay_s(self, d: faults.Directives, model: ModelProfile, input_tokens: int) -> float:
        if d.ttft_ms is not None:
            return d.ttft_ms / 1000
        if not self.realistic_latency:
            return 0.0
        return (model.ttft_ms + model.per_input_ms * input_tokens) / 1000

    def token_delay_s(self, d: faults.Directives, model: ModelProfile) -> float:
        if d.tpot_ms is not None:
            return d.tpot_ms / 1000
        return model.per_output_ms / 1000 if self.realistic_latency else 0.0


async def pause(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)
