"""`tokentrace.budget`: hold calls to their budgets from the app itself, for apps that call
providers directly instead of through the gateway.

    tokentrace.budget.configure("budgets.toml", redis="redis://…")   # the gateway's file
    with tokentrace.budget.check(model="gpt-4o", max_tokens=300, input=messages) as grant:
        client.chat.completions.create(model=grant.model, max_tokens=300, messages=messages)

`check` reserves the call's worst case on every budget it counts against (the same decisions as
the gateway: block raises `BudgetExceeded`, warn adds to `grant.warnings`, downgrade changes
`grant.model`). Leaving the `with` block settles the reservation to what the instrumented calls
inside it really used; without `tokentrace.init()`, pass the response's usage to
`grant.settle(...)`. With Redis, the app and every gateway on that Redis share one set of counters.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson
from opentelemetry import baggage, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from tokentrace.sdk.instrumentors.calls import usage_sink
from tokentrace.semconv import TAG_ATTRIBUTES

if TYPE_CHECKING:
    from tokentrace.budgets import Counters, Decision, Policy, Usage
    from tokentrace.budgets.webhooks import BudgetAlerts
    from tokentrace.pricing import PriceBook

log = logging.getLogger("tokentrace.budgets")
_tracer = trace.get_tracer("tokentrace.sdk")
#: The tags a budget can hold calls to; api_key is the app's own name for a caller.
_BUDGET_TAGS = ("tenant_id", "user_id", "feature", "api_key")
#: The span attributes an instrumented call's usage is read from, in `budgets.Usage` order.
_SPAN_USAGE = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
)
_FROM_BAGGAGE = {attribute: tag for tag, attribute in TAG_ATTRIBUTES.items() if tag in _BUDGET_TAGS}


class BudgetExceeded(Exception):
    """A blocking budget refuses the call; nothing was reserved. `retry_after_s` says when the
    refusing window ends."""

    def __init__(self, message: str, budget: str, retry_after_s: float | None) -> None:
        super().__init__(message)
        self.budget = budget
        self.retry_after_s = retry_after_s


@dataclass
class _Setup:
    policy: Policy
    counters: Counters
    book: PriceBook
    alerts: BudgetAlerts


_setup: _Setup | None = None
_unreported_warned = threading.Event()


def configure(
    path: str | Path | None = None,
    *,
    policy: Policy | None = None,
    redis: str | None = None,
    book: PriceBook | None = None,
) -> None:
    """Load the budgets (a budgets file, the gateway's format, or a `Policy`) and pick the
    counters: this process's memory, or Redis shared with other apps and gateways."""
    from tokentrace.budgets import MemoryCounters, load_policy
    from tokentrace.budgets.webhooks import BudgetAlerts
    from tokentrace.pricing import PriceBook

    global _setup
    if (path is None) == (policy is None):
        raise TypeError("give the budgets file or a Policy, one of them")
    loaded = load_policy(path) if path is not None else policy
    assert loaded is not None
    if redis:
        from tokentrace.budgets.redis_counters import RedisCounters

        counters: Counters = RedisCounters(redis)
    else:
        counters = MemoryCounters()
    alerts = BudgetAlerts(loaded.webhooks)
    previous, _setup = _setup, _Setup(loaded, counters, book or PriceBook(), alerts)
    if previous is not None:
        _close(previous.counters)


def reset() -> None:
    """Forget the budgets: `check` refuses to run until `configure` is called again."""
    global _setup
    previous, _setup = _setup, None
    if previous is not None:
        _close(previous.counters)


def _close(counters: Counters) -> None:
    close = getattr(counters, "close", None)
    if close is not None:
        close()


def _tags(given: Mapping[str, str | None]) -> dict[str, str | None]:
    """The call's budget tags: those given, else the enclosing `tokentrace.context()`'s."""
    tags: dict[str, str | None] = {}
    for attribute, value in baggage.get_all().items():
        tag = _FROM_BAGGAGE.get(attribute)
        if tag is not None:
            tags[tag] = str(value)
    tags.update({k: v for k, v in given.items() if v is not None})
    return tags


def check(
    *,
    model: str,
    provider: str = "openai",
    max_tokens: int | None = None,
    input: Any = None,
    input_tokens: int | None = None,
    operation: str = "chat",
    tenant_id: str | None = None,
    user_id: str | None = None,
    feature: str | None = None,
    api_key: str | None = None,
) -> Grant:
    """Reserve a call's worst case on its budgets, or raise `BudgetExceeded`.

    The input is counted from `input_tokens`, else from the size of `input` (the messages or
    prompt, about four bytes a token, as the gateway counts a request), and the output as
    `max_tokens` (the budgets file's `default_max_tokens` when None). Tags not given come from
    the enclosing `tokentrace.context()`.
    """
    from tokentrace.budgets import Usage, decide
    from tokentrace.budgets.decisions import estimate

    setup = _setup
    if setup is None:
        raise RuntimeError("call tokentrace.budget.configure(...) before tokentrace.budget.check()")
    tags = _tags({"tenant_id": tenant_id, "user_id": user_id, "feature": feature, "api_key": api_key})
    if input_tokens is None:
        size = 0 if input is None else len(input.encode() if isinstance(input, str) else orjson.dumps(input))
        reserve = estimate(size, max_tokens, setup.policy)
    else:
        reserve = Usage(input_tokens, max_tokens or setup.policy.default_max_tokens)
    decision = decide(setup.counters, setup.policy, setup.book, tags, provider, model, reserve)
    _alert(setup, decision)
    if not decision.allowed:
        _record_refusal(decision, tags, operation, model)
        assert decision.blocked_by is not None
        raise BudgetExceeded(
            decision.refusal,
            decision.crossed[0][0].budget.name,
            decision.retry_after_s,
        )
    for warning in decision.warnings:
        log.warning("tokentrace %s", warning)
    return Grant(decision, model, setup)


def _record_refusal(decision: Decision, tags: Mapping[str, str | None], operation: str, model: str) -> None:
    """A refused call is a span too (error.type budget), so refusals show beside the calls."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": decision.provider,
        "gen_ai.request.model": model,
        "error.type": "budget",
        **decision.span_attributes(model),
    }
    for tag, value in tags.items():
        if value is not None and tag in TAG_ATTRIBUTES:
            attributes[TAG_ATTRIBUTES[tag]] = value
    span = _tracer.start_span(f"{operation} {model}", kind=SpanKind.CLIENT, attributes=attributes)
    span.set_status(Status(StatusCode.ERROR, decision.refusal[:500]))
    span.end()


def _alert(setup: _Setup, decision: Decision) -> None:
    """The budgets file's webhooks hear, once per window in this process, that a budget acted."""
    alerts = setup.alerts.due(decision)
    if alerts:
        threading.Thread(
            target=_post, args=(alerts, setup.policy.webhooks), name="tokentrace-budget-alert", daemon=True
        ).start()


def _post(alerts: list[dict[str, object]], webhooks: Sequence[str]) -> None:
    for alert in alerts:
        for url in webhooks:
            request = urllib.request.Request(
                url, orjson.dumps(alert), {"Content-Type": "application/json"}, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=10):
                    pass
            except OSError as exc:
                log.warning("budget alert to %s failed: %s", url, exc)


def _get(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, Mapping) else getattr(value, name, None)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_of(response_usage: Any) -> Usage:
    """A provider SDK's `usage` (openai chat or Responses, anthropic messages) or a dict of it,
    in budget terms: input counts cached and cache-write tokens, as OTel does."""
    from tokentrace.budgets import Usage

    if isinstance(response_usage, Usage):
        return response_usage

    def read(name: str, inner: str | None = None) -> int:
        value = _get(response_usage, name)
        return _count(_get(value, inner) if inner and value is not None else value)

    if _get(response_usage, "prompt_tokens") is not None:  # openai chat completions
        return Usage(
            read("prompt_tokens"),
            read("completion_tokens"),
            read("prompt_tokens_details", "cached_tokens"),
            read("prompt_tokens_details", "cache_write_tokens"),
        )
    cache_read, cache_write = read("cache_read_input_tokens"), read("cache_creation_input_tokens")
    if cache_read or cache_write:  # anthropic's input_tokens leaves the cached ones out
        total_input = read("input_tokens") + cache_read + cache_write
        return Usage(total_input, read("output_tokens"), cache_read, cache_write)
    # openai Responses (its input_tokens already include the cached ones), or anthropic without cache
    return Usage(
        read("input_tokens"),
        read("output_tokens"),
        read("input_tokens_details", "cached_tokens"),
        read("input_tokens_details", "cache_write_tokens"),
    )


class Grant:
    """A call admitted by its budgets: the model to call (a downgrade may have changed it), the
    warnings of budgets past their limit, and the reservation until it is settled."""

    def __init__(self, decision: Decision, requested: str, setup: _Setup) -> None:
        self.decision = decision
        self.requested_model = requested
        self._setup = setup
        self._used = [0] * len(_SPAN_USAGE)  # summed over the instrumented calls, in Usage order
        self._calls = 0
        self._settled = False
        self._token: contextvars.Token | None = None

    @property
    def model(self) -> str:
        """The model to call: the one asked for, or the one a downgrade budget chose."""
        return self.decision.model

    @property
    def warnings(self) -> list[str]:
        return self.decision.warnings

    @property
    def downgraded_by(self) -> str | None:
        return self.decision.downgraded_by

    def settle(self, usage: Any = None) -> None:
        """Replace the reservation by what the call used: the provider's `usage` object (or a
        dict, or `budgets.Usage`); None means what the instrumented calls inside the `with`
        block reported (nothing, for a call that failed). Settling twice does nothing."""
        from tokentrace.budgets import Usage, settlement

        if self._settled:
            return
        self._settled = True
        used = Usage(*self._used) if usage is None else usage_of(usage)
        # Priced as the model called, like the gateway: a dated snapshot name in the answer
        # may have no price of its own.
        changes = settlement(self.decision, self._setup.book, self.model, used)
        if changes:
            self._setup.counters.add(changes)

    def record(self, span: Any) -> None:
        """Add an instrumented call's usage (read from its span as it ends) to this grant, and
        say on the span what the budgets did to it."""
        attributes = getattr(span, "attributes", None) or {}
        self._calls += 1
        for i, name in enumerate(_SPAN_USAGE):
            self._used[i] += _count(attributes.get(name))
        span.set_attributes(self.decision.span_attributes(self.requested_model))

    def __enter__(self) -> Grant:
        self._token = usage_sink.set(self.record)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._token is not None:
            usage_sink.reset(self._token)
            self._token = None
        if self._settled:
            return
        if self._calls or exc is not None:
            self.settle()  # what the calls reported; a block that failed before any call used nothing
        elif not _unreported_warned.is_set():
            # No instrumented call reported (no tokentrace.init(), or a provider it does not
            # instrument): the worst case stays counted rather than nothing.
            _unreported_warned.set()
            log.warning(
                "tokentrace.budget: no instrumented call ended inside the grant, so its reservation "
                "stays counted; call tokentrace.init() or grant.settle(response.usage)"
            )
