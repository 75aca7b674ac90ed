"""Self-hosted deployments: a GPU (or a fleet) paid by the hour, busy or idle, whose cost is
amortized over the calls it served (jobs/amortize.py splits each UTC hour).

```toml
[[deployments]]
name = "llama-prod"
model = "llama-3.1-8b*"            # fnmatch pattern on the span's model
provider = "vllm"                  # optional: only spans of this provider
server_address = "gpu-node-*"      # optional: fnmatch on the span's server.address
usd_per_hour = 4.0                 # what the deployment costs an hour, busy or idle
valid_from = 2026-11-01T00:00:00Z  # optional: in service from this instant (its idle hours count
                                   # from here; without it, from its first traced call)
```

A call that matches a deployment is not priced per token: its cost is its share of its hour.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tokentrace import semconv
from tokentrace.pricing.amounts import is_amount

#: The keys of a [[deployments]] entry.
KEYS = ("name", "model", "provider", "server_address", "usd_per_hour", "valid_from")

#: Price provenance of an amortized share: `estimated` while its hour is open (its share of
#: what the hour has cost so far), `final` once the hour has closed and was split whole.
PENDING, ESTIMATED, FINAL = "pending", "estimated", "final"


@dataclass(frozen=True)
class Deployment:
    """One self-hosted deployment and what it costs an hour."""

    name: str
    pattern: str  # fnmatch on the span's model
    provider: str | None
    server_address: str | None  # fnmatch on the span's server.address
    usd_per_hour: float
    valid_from_ns: int = 0  # 0: in service since its first traced call

    @property
    def source(self) -> str:
        """What the price provenance names as the price's source."""
        return f"deployment {self.name} (${self.usd_per_hour:g}/hour, amortized)"

    def serves(self, provider: str, model: str, server_address: str | None, at_ns: int) -> bool:
        """Whether a call to `model` of `provider` at `server_address`, started at `at_ns`,
        is one of this deployment's."""
        if at_ns < self.valid_from_ns or (self.provider and self.provider != provider):
            return False
        if self.server_address and not fnmatch.fnmatchcase(server_address or "", self.server_address):
            return False
        return fnmatch.fnmatchcase(model, self.pattern)

    def provenance(self, settled: str) -> dict[str, str]:
        """The span attributes that say a share of this deployment's hour costed the span."""
        return {
            semconv.PRICE_MODEL: self.pattern,
            semconv.PRICE_PROVIDER: self.provider or "",
            semconv.PRICE_SOURCE: self.source,
            semconv.PRICE_AMORTIZED: settled,
        }


def parse_deployments(
    entries: list[dict[str, Any]],
    source: str,
    error: Callable[[str], Exception],
    instant: Callable[[Any, str], int],
) -> tuple[Deployment, ...]:
    """The [[deployments]] of a prices file (keys already checked); `error` builds the exception
    naming a bad entry, `instant` reads a valid_from."""
    found: list[Deployment] = []
    for i, entry in enumerate(entries):
        where = f"{source}: deployments[{i}]"
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise error(f"{where}: name is required")
        if any(d.name == name for d in found):
            raise error(f"{where}: a deployment named {name!r} is already defined")
        pattern = entry.get("model")
        if not isinstance(pattern, str) or not pattern:
            raise error(f"{where}: model is required (an fnmatch pattern on the span's model)")
        for key in ("provider", "server_address"):
            if entry.get(key) is not None and not isinstance(entry[key], str):
                raise error(f"{where}: {key} must be a string")
        rate = entry.get("usd_per_hour")
        if not is_amount(rate):
            raise error(f"{where}: usd_per_hour must be a non-negative number, got {rate!r}")
        found.append(
            Deployment(
                name,
                pattern,
                entry.get("provider") or None,
                entry.get("server_address") or None,
                float(rate),
                instant(entry.get("valid_from"), where),
            )
        )
    return tuple(found)


def hour_start(moment: datetime) -> datetime:
    """The start of the UTC hour `moment` falls in: a deployment's unit of cost."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def split_hour(usd: float, tokens: list[int], counted: list[bool]) -> list[float]:
    """`usd` split over calls in proportion to their tokens (evenly when none has any): the
    counted calls' shares sum to `usd`; a duplicate (not counted) gets the share its tokens
    would have, so it shows what the call it repeats cost."""
    weight = sum(t for t, c in zip(tokens, counted, strict=True) if c)
    if weight > 0:
        return [usd * t / weight for t in tokens]
    calls = sum(counted)
    return [usd / calls if calls else 0.0 for _ in tokens]
