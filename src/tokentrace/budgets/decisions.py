"""Whether a call may start, on which model, and what it reserved; then what it really spent.

Before a call, its worst case is reserved on every budget it counts against: its input tokens
(estimated from the request's size) plus `max_tokens` of output, priced at its model's rates.
The reservation is admitted only if every blocking budget stays within its limit, so calls in
flight can never together pass a limit by more than their inputs were under-estimated. When the
call ends, the reservation is replaced by the actual usage (`settle`).

The decision logic is written once, as a generator of counter steps (`_steps`); `decide` runs it
on synchronous counters and `decide_async` on the gateway's asynchronous ones.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tokentrace.budgets.counters import Admission, Counters, Entry
from tokentrace.budgets.policy import NANO, Budget, Policy, counter_key, window_at
from tokentrace.pricing import PriceBook

log = logging.getLogger("tokentrace.budgets")
_unpriced_warned: set[tuple[str, str]] = set()


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0  # includes cached and cache-write tokens
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    service_tier: str | None = None  # what the call is billed at (None: the list price)


def estimate(request_bytes: int, max_tokens: int | None, policy: Policy) -> Usage:
    """A call's worst case before it runs: about four bytes of request per input token (the
    settle step corrects it), and all the output it may ask for."""
    return Usage(math.ceil(request_bytes / 4), max_tokens or policy.default_max_tokens)


@dataclass(frozen=True, slots=True)
class Line:
    """One budget a call counts against, and what the call has added to its counter."""

    budget: Budget
    value: str
    key: str
    amount: int
    ttl_s: int


@dataclass(slots=True)
class Decision:
    allowed: bool
    model: str  # the model to call: the requested one, or a downgrade
    lines: list[Line] = field(default_factory=list)  # what was reserved (empty when refused)
    provider: str = ""
    warnings: list[str] = field(default_factory=list)  # warn budgets over their limit
    crossed: list[tuple[Line, int]] = field(default_factory=list)  # budgets that acted, and their use
    downgraded_by: str | None = None  # the budget that switched the model
    blocked_by: str | None = None  # why the call is refused
    retry_after_s: float | None = None  # when the refusing window ends

    @property
    def refusal(self) -> str:
        """What a refused call is told (the gateway's 429, the SDK's BudgetExceeded)."""
        return f"tokentrace budget exceeded: {self.blocked_by}"

    def span_attributes(self, requested: str | None) -> dict[str, Any]:
        """What the budgets did to the call, as its span says it (gateway and SDK alike)."""
        if not self.allowed:
            acted = ["block"]
        else:
            acted = (["warn"] if self.warnings else []) + (["downgrade"] if self.downgraded_by else [])
        if not acted:
            return {}
        attributes: dict[str, Any] = {
            "tokentrace.budget.action": acted,
            "tokentrace.budget.name": [line.budget.name for line, _ in self.crossed],
        }
        if self.downgraded_by:
            attributes["tokentrace.budget.requested_model"] = requested or ""
        return attributes


def cost_units(book: PriceBook, provider: str, model: str, usage: Usage) -> int | None:
    """The call's cost in nano-dollars, or None when the model has no known price."""
    rates = book.rates(provider, model, time.time_ns(), usage.service_tier)
    if rates is None:
        if (provider, model) not in _unpriced_warned:
            _unpriced_warned.add((provider, model))
            log.warning("no price for %s/%s: USD budgets cannot count its calls", provider, model)
        return None
    usd = rates.cost(
        usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens
    )
    return math.ceil(usd * NANO)


def _amount(budget: Budget, book: PriceBook, provider: str, model: str, usage: Usage) -> int:
    if budget.in_usd:
        return cost_units(book, provider, model, usage) or 0
    return usage.input_tokens + usage.output_tokens


def _lines(
    policy: Policy, book: PriceBook, tags: Mapping[str, str | None], provider: str, model: str, usage: Usage
) -> list[Line]:
    lines = []
    now = time.time()
    for budget, value in policy.applying(tags):
        window = window_at(budget.window, now)
        amount = _amount(budget, book, provider, model, usage)
        lines.append(Line(budget, value, counter_key(budget, value, window), amount, window.ttl_s))
    return lines


def _steps(
    policy: Policy, book: PriceBook, tags: Mapping[str, str | None], provider: str, model: str, usage: Usage
) -> Generator[list[Entry], Admission, Decision]:
    soft: set[str] = set()  # downgrade budgets already acted on: counted, no longer refusing
    downgraded_by = None
    while True:
        lines = _lines(policy, book, tags, provider, model, usage)
        entries = [
            Entry(
                line.key,
                line.amount,
                None if line.budget.action == "warn" or line.budget.name in soft else line.budget.units,
                line.ttl_s,
            )
            for line in lines
        ]
        admission = yield entries
        if admission.admitted:
            decision = Decision(True, model, lines, provider, downgraded_by=downgraded_by)
            for line, total in zip(lines, admission.totals, strict=True):
                if line.budget.action == "warn" and total > line.budget.units:
                    decision.warnings.append(line.budget.describe(total))
                    decision.crossed.append((line, total))
                elif line.budget.name in soft:
                    decision.crossed.append((line, total))
            return decision
        over = [lines[i] for i in admission.over]
        blocking = [line for line in over if line.budget.action == "block"]
        if blocking:
            line = blocking[0]
            total = admission.totals[lines.index(line)]
            window = window_at(line.budget.window)
            return Decision(
                False,
                model,
                provider=provider,
                crossed=[(line, total)],
                blocked_by=f"{line.budget.describe(total)}; this call needs up to "
                f"{_shown(line.budget, line.amount)} more",
                retry_after_s=max(window.ends_at - time.time(), 0.0),
            )
        # Only downgrade budgets are over: from now on they count without refusing, and the
        # call moves to the first cheaper model they name (one already on it simply goes on).
        soft.update(line.budget.name for line in over)
        target = next((line for line in over if line.budget.downgrade_to != model), None)
        if target is not None:
            model = target.budget.downgrade_to or model
            downgraded_by = target.budget.name


def _shown(budget: Budget, units: int) -> str:
    return f"{units / NANO:.6g} USD" if budget.in_usd else f"{units} tokens"


def decide(
    counters: Counters,
    policy: Policy,
    book: PriceBook,
    tags: Mapping[str, str | None],
    provider: str,
    model: str,
    reserve: Usage,
) -> Decision:
    """Admit a call (reserving `reserve`), downgrade it, or refuse it; synchronous counters."""
    steps = _steps(policy, book, tags, provider, model, reserve)
    entries = next(steps)
    while True:
        try:
            entries = steps.send(counters.admit(entries))
        except StopIteration as done:
            return done.value


async def decide_async(
    counters,
    policy: Policy,
    book: PriceBook,
    tags: Mapping[str, str | None],
    provider: str,
    model: str,
    reserve: Usage,
) -> Decision:
    """`decide` for counters whose steps are awaited (the gateway's)."""
    steps = _steps(policy, book, tags, provider, model, reserve)
    entries = next(steps)
    while True:
        try:
            entries = steps.send(await counters.admit(entries))
        except StopIteration as done:
            return done.value


def settlement(decision: Decision, book: PriceBook, model: str, actual: Usage) -> list[Entry]:
    """The counter changes that replace the reservation by what the call really used (`model`
    is the one that answered; a failed call used nothing)."""
    changes = []
    for line in decision.lines:
        spent = _amount(line.budget, book, decision.provider, model, actual)
        if spent != line.amount:
            changes.append(Entry(line.key, spent - line.amount, None, line.ttl_s))
    return changes
