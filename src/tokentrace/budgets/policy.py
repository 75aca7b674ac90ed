"""Budgets: what a budget limits, on whose spend, over which window, and what it does when crossed.

A budgets file (TOML) lists `[[budgets]]` tables:

    [[budgets]]
    tenant_id = "acme"         # the scope: tenant_id, user_id, feature or api_key ("*": each one)
    usd_per_day = 50.0         # the limit: usd_per_day, usd_per_month or tokens_per_minute
    action = "block"           # block (429), warn (header and alert), or downgrade
    # downgrade_to = "gpt-4o-mini"

An entry with several limits is several budgets. Windows are fixed and in UTC: a day, a calendar
month, a minute. Amounts are counted as integers: nano-dollars and tokens, so counters add exactly.
"""

from __future__ import annotations

import calendar
import hashlib
import math
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCOPES = ("tenant_id", "user_id", "feature", "api_key")
LIMITS = {"usd_per_day": "day", "usd_per_month": "month", "tokens_per_minute": "minute"}
ACTIONS = ("block", "warn", "downgrade")
NANO = 1_000_000_000  # counters hold USD in nano-dollars
#: How long a window's counter outlives the window (the key expires by itself).
_TTL_S = {"day": 2 * 86400, "month": 32 * 86400, "minute": 120}
_KEYS = {*SCOPES, *LIMITS, "action", "downgrade_to", "name"}


class BudgetError(ValueError):
    """A budget definition that cannot be used; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Budget:
    scope: str  # one of SCOPES
    value: str  # the tenant, user, feature or key it holds; "*" holds each one separately
    limit: str  # one of LIMITS
    amount: float  # USD or tokens, per window
    action: str = "block"
    downgrade_to: str | None = None
    name: str = ""  # shown in headers, alerts and the API; derived when not given

    @property
    def window(self) -> str:
        return LIMITS[self.limit]

    @property
    def in_usd(self) -> bool:
        return self.limit.startswith("usd")

    @property
    def units(self) -> int:
        """The limit in counter units (nano-dollars or tokens)."""
        return round(self.amount * NANO) if self.in_usd else round(self.amount)

    def holds(self, tags: Mapping[str, str | None]) -> str | None:
        """The value this budget counts a call under, or None when the call is not in its scope."""
        value = tags.get(self.scope)
        if not value or (self.value != "*" and value != self.value):
            return None
        return value

    @property
    def limit_text(self) -> str:
        """`50 USD per day (UTC)`, `6000 tokens per minute`."""
        unit = "USD" if self.in_usd else "tokens"
        per = {"day": "day (UTC)", "month": "month (UTC)", "minute": "minute"}[self.window]
        return f"{self.amount:g} {unit} per {per}"

    def describe(self, used_units: int | None = None) -> str:
        limit = self.limit_text
        if used_units is None:
            return f"budget {self.name!r}: {limit}"
        used = used_units / NANO if self.in_usd else used_units
        return f"budget {self.name!r}: {used:.6g} of {limit} used"


@dataclass(frozen=True, slots=True)
class Window:
    """The window a budget counts in now: its counter key's suffix and when it ends."""

    label: str  # 2026-11-22, 2026-11, or the minute as epoch seconds
    starts_at: float  # epoch seconds
    ends_at: float
    ttl_s: int


def window_at(window: str, now: float | None = None) -> Window:
    now = time.time() if now is None else now
    if window == "minute":
        start = int(now // 60 * 60)
        return Window(str(start), float(start), start + 60.0, _TTL_S[window])
    day = time.gmtime(now)
    if window == "day":
        midnight = calendar.timegm((day.tm_year, day.tm_mon, day.tm_mday, 0, 0, 0))
        return Window(time.strftime("%Y-%m-%d", day), float(midnight), midnight + 86400.0, _TTL_S[window])
    first = calendar.timegm((day.tm_year, day.tm_mon, 1, 0, 0, 0))
    year, month = (day.tm_year + 1, 1) if day.tm_mon == 12 else (day.tm_year, day.tm_mon + 1)
    ends = calendar.timegm((year, month, 1, 0, 0, 0))
    return Window(time.strftime("%Y-%m", day), float(first), float(ends), _TTL_S[window])


def key_label(key: str) -> str:
    """How an API key appears in budget names and counters: a digest, never the key."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def counter_key(budget: Budget, value: str, window: Window) -> str:
    """The counter's name. API keys appear hashed, never as themselves."""
    if budget.scope == "api_key":
        value = key_label(value)
    return f"tokentrace:budget:{budget.name}:{value}:{window.label}"


@dataclass(frozen=True, slots=True)
class Policy:
    """The budgets in force, plus how calls without a max_tokens are reserved for."""

    budgets: tuple[Budget, ...] = ()
    default_max_tokens: int = 4096
    webhooks: tuple[str, ...] = field(default=())

    def applying(self, tags: Mapping[str, str | None]) -> list[tuple[Budget, str]]:
        """The budgets a call with these tags counts against, each with the value it counts under."""
        found = []
        for budget in self.budgets:
            value = budget.holds(tags)
            if value is not None:
                found.append((budget, value))
        return found


def _budget(entry: Mapping[str, Any], where: str) -> list[Budget]:
    unknown = set(entry) - _KEYS
    if unknown:
        raise BudgetError(f"{where}: unknown keys {sorted(unknown)}; use {sorted(_KEYS)}")
    scopes = [s for s in SCOPES if s in entry]
    if len(scopes) != 1:
        raise BudgetError(f"{where}: give exactly one of {', '.join(SCOPES)} (found {scopes or 'none'})")
    scope = scopes[0]
    value = entry[scope]
    if not isinstance(value, str) or not value:
        raise BudgetError(f"{where}: {scope} must be a non-empty string")
    limits = [k for k in LIMITS if k in entry]
    if not limits:
        raise BudgetError(f"{where}: give a limit: {', '.join(LIMITS)}")
    action = entry.get("action", "block")
    if action not in ACTIONS:
        raise BudgetError(f"{where}: action must be one of {', '.join(ACTIONS)}, not {action!r}")
    downgrade_to = entry.get("downgrade_to")
    if (action == "downgrade") != (downgrade_to is not None):
        raise BudgetError(f"{where}: downgrade_to goes with action = 'downgrade', and only with it")
    if downgrade_to is not None and (not isinstance(downgrade_to, str) or not downgrade_to):
        raise BudgetError(f"{where}: downgrade_to must be a model name")
    name = entry.get("name")
    if name is not None and (not isinstance(name, str) or not name or ":" in name):
        raise BudgetError(f"{where}: name must be a non-empty string without ':'")
    budgets = []
    for limit in limits:
        amount = entry[limit]
        if isinstance(amount, bool) or not isinstance(amount, int | float) or not 0 < amount < math.inf:
            raise BudgetError(f"{where}: {limit} must be a positive number, not {amount!r}")
        if limit == "tokens_per_minute" and amount != int(amount):
            raise BudgetError(f"{where}: tokens_per_minute must be a whole number")
        if name is None:
            budget_name = f"{scope}={value if scope != 'api_key' else key_label(value)}/{limit}"
        else:
            budget_name = f"{name}/{limit}" if len(limits) > 1 else name
        budgets.append(
            Budget(
                scope,
                value,
                limit,
                float(amount),
                action,
                downgrade_to,
                budget_name,
            )
        )
    return budgets


def parse_budgets(entries: Sequence[Mapping[str, Any]], source: str = "budgets") -> tuple[Budget, ...]:
    """Budgets from already-parsed entries (the TOML file's `[[budgets]]`, or the API's JSON)."""
    budgets: list[Budget] = []
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, Mapping):
            raise BudgetError(f"{source}: budget {number} must be a table")
        budgets.extend(_budget(entry, f"{source}: budget {number}"))
    names = [b.name for b in budgets]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise BudgetError(f"{source}: budget names repeat: {repeated} (give each a distinct `name`)")
    return tuple(budgets)


def parse_policy(text: str, source: str) -> Policy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BudgetError(f"{source}: not valid TOML: {exc}") from None
    unknown = set(data) - {"budgets", "default_max_tokens", "alerts"}
    if unknown:
        raise BudgetError(
            f"{source}: unknown keys {sorted(unknown)}; use budgets, default_max_tokens, alerts"
        )
    entries = data.get("budgets", [])
    if not isinstance(entries, list):
        raise BudgetError(f"{source}: budgets must be an array of tables ([[budgets]])")
    default_max = data.get("default_max_tokens", 4096)
    if isinstance(default_max, bool) or not isinstance(default_max, int) or default_max <= 0:
        raise BudgetError(f"{source}: default_max_tokens must be a positive integer")
    alerts = data.get("alerts", {})
    webhooks = alerts.get("webhooks", []) if isinstance(alerts, dict) else None
    if not isinstance(webhooks, list) or not all(isinstance(w, str) and w for w in webhooks):
        raise BudgetError(f"{source}: alerts.webhooks must be a list of URLs")
    return Policy(parse_budgets(entries, source), default_max, tuple(webhooks))


def load_policy(path: str | Path) -> Policy:
    """The budgets file at `path`; BudgetError says what is wrong with it."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise BudgetError(f"{path}: cannot read the budgets file: {exc.strerror}") from None
    return parse_policy(text, str(path))
