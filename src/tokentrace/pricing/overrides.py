"""User price overrides: self-hosted and custom models, negotiated discounts (TOML).

```toml
[[models]]
model = "llama-3.1-70b-internal"   # fnmatch pattern on the span's model
provider = "vllm"                  # optional: only spans of this provider
input_mtok = 0.50                  # USD per million tokens
output_mtok = 1.00
cache_read_mtok = 0.10             # optional, default: input_mtok
cache_write_mtok = 0.60            # optional, default: input_mtok
input_audio_mtok = 40.0            # optional (also output_audio, cache_audio_read, input_image,
                                   # output_image, cache_image_read): default, the rate of the
                                   # count they are part of
valid_from = 2026-01-01T00:00:00Z  # optional: in force from this instant

[[deployments]]                    # self-hosted, paid by the hour: pricing/deployments.py
name = "llama-prod"
model = "llama-3.1-8b*"
usd_per_hour = 4.0

[[discounts]]
provider = "openai"
model = "gpt-4o*"                  # optional, default every model
multiplier = 0.8                   # 20% negotiated discount
```
"""

from __future__ import annotations

import fnmatch
import hashlib
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

from tokentrace.pricing import deployments
from tokentrace.pricing.amounts import is_amount
from tokentrace.pricing.deployments import Deployment
from tokentrace.pricing.rates import Rates, UnitPrice, flat
from tokentrace.tomlfile import line_of


class OverridesError(ValueError):
    """The overrides file is not valid; the message says where."""


@dataclass(frozen=True)
class ModelOverride:
    pattern: str
    provider: str | None
    rates: Rates
    valid_from_ns: int


@dataclass(frozen=True)
class Discount:
    pattern: str
    provider: str | None
    multiplier: float
    valid_from_ns: int


@dataclass(frozen=True)
class Overrides:
    models: tuple[ModelOverride, ...] = ()
    discounts: tuple[Discount, ...] = ()
    source: str = ""
    deployments: tuple[Deployment, ...] = ()

    def deployment(
        self, provider: str, model: str, server_address: str | None, at_ns: int
    ) -> Deployment | None:
        """The self-hosted deployment that served this call, if any (the first listed wins)."""
        for entry in self.deployments:
            if entry.serves(provider, model, server_address, at_ns):
                return entry
        return None

    def model_rates(self, provider: str, model: str, at_ns: int) -> Rates | None:
        """The override in force at `at_ns` for this model; the latest valid_from wins."""
        best: ModelOverride | None = None
        for entry in self.models:
            if entry.provider and entry.provider != provider:
                continue
            if entry.valid_from_ns > at_ns or not fnmatch.fnmatchcase(model, entry.pattern):
                continue
            if best is None or entry.valid_from_ns >= best.valid_from_ns:
                best = entry
        return best.rates if best else None

    def multiplier(self, provider: str, model: str, at_ns: int) -> float:
        """The discount multiplier in force; 1.0 when none applies."""
        best: Discount | None = None
        for entry in self.discounts:
            if entry.provider and entry.provider != provider:
                continue
            if entry.valid_from_ns > at_ns or not fnmatch.fnmatchcase(model, entry.pattern):
                continue
            if best is None or entry.valid_from_ns >= best.valid_from_ns:
                best = entry
        return best.multiplier if best else 1.0


def _instant_ns(value: object, where: str) -> int:
    if value is None:
        return 0
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    elif isinstance(value, date):
        moment = datetime.combine(value, time(), tzinfo=UTC)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise OverridesError(f"{where}: valid_from {value!r} is not an ISO 8601 instant") from exc
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    else:
        raise OverridesError(f"{where}: valid_from must be a date or datetime")
    return int(moment.timestamp() * 1_000_000) * 1000


def _price(entry: dict, key: str, where: str, required: bool) -> UnitPrice | None:
    value = entry.get(key)
    if value is None:
        if required:
            raise OverridesError(f"{where}: {key} is required")
        return None
    if not is_amount(value):
        raise OverridesError(f"{where}: {key} must be a non-negative number, got {value!r}")
    return flat(float(value))


#: Rates of audio and image tokens a model entry may set (`input_audio_mtok` …), as genai-prices
#: names them; each optional, default: the rate of the count the tokens are part of.
_MODAL_RATES = (
    "input_audio",
    "output_audio",
    "cache_audio_read",
    "input_image",
    "output_image",
    "cache_image_read",
)

#: The tables a prices file holds, and the keys of each entry.
TABLES = {
    "models": (
        "model",
        "provider",
        "input_mtok",
        "output_mtok",
        "cache_read_mtok",
        "cache_write_mtok",
        *(f"{kind}_mtok" for kind in _MODAL_RATES),
        "valid_from",
    ),
    "discounts": ("provider", "model", "multiplier", "valid_from"),
    "deployments": deployments.KEYS,
}


def _check_names(data: dict, text: str, source: str) -> None:
    """Every table and key one this version knows: a typo, or a section from a newer version,
    would otherwise be priced as if it were not there."""
    for name, value in data.items():
        if name not in TABLES:
            raise OverridesError(
                f"{source}{line_of(text, name)}: unknown table {name!r} (a prices file holds "
                f"{', '.join(f'[[{t}]]' for t in TABLES)})"
            )
        if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
            raise OverridesError(f"{source}{line_of(text, name)}: {name} must be tables: [[{name}]]")
        for i, entry in enumerate(value):
            for key in entry:
                if key not in TABLES[name]:
                    raise OverridesError(
                        f"{source}{line_of(text, name, i, key)}: {name}[{i}]: unknown key {key!r} "
                        f"(known: {', '.join(TABLES[name])})"
                    )


def parse_overrides(text: str, source: str) -> Overrides:
    """Parse overrides TOML text; raises OverridesError naming the bad entry (and its line when
    it is an unknown table or key)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise OverridesError(f"{source}: {exc}") from exc
    _check_names(data, text, source)
    models = []
    for i, entry in enumerate(data.get("models", [])):
        where = f"{source}: models[{i}]"
        pattern = entry.get("model")
        if not isinstance(pattern, str) or not pattern:
            raise OverridesError(f"{where}: model is required")
        provider = entry.get("provider")
        rates = Rates(
            model=pattern,
            provider=provider or "",
            source=source,
            input=_price(entry, "input_mtok", where, True),  # type: ignore[arg-type]
            output=_price(entry, "output_mtok", where, True),  # type: ignore[arg-type]
            cache_read=_price(entry, "cache_read_mtok", where, False),
            cache_write=_price(entry, "cache_write_mtok", where, False),
            **{kind: _price(entry, f"{kind}_mtok", where, False) for kind in _MODAL_RATES},
        )
        models.append(ModelOverride(pattern, provider, rates, _instant_ns(entry.get("valid_from"), where)))
    discounts = []
    for i, entry in enumerate(data.get("discounts", [])):
        where = f"{source}: discounts[{i}]"
        multiplier = entry.get("multiplier")
        if not is_amount(multiplier):
            raise OverridesError(f"{where}: multiplier must be a non-negative number, got {multiplier!r}")
        discounts.append(
            Discount(
                entry.get("model", "*"),
                entry.get("provider"),
                float(multiplier),
                _instant_ns(entry.get("valid_from"), where),
            )
        )
    served = deployments.parse_deployments(data.get("deployments", []), source, OverridesError, _instant_ns)
    return Overrides(tuple(models), tuple(discounts), source, served)


def load_overrides(path: str | Path) -> Overrides:
    """Read an overrides file; its source label carries a content hash so reprices are traceable."""
    raw = Path(path).read_bytes()
    digest = hashlib.sha256(raw).hexdigest()[:8]
    return parse_overrides(raw.decode("utf-8"), f"overrides {Path(path).name}@{digest}")
