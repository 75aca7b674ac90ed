"""A provider's own record of what it billed, read from its documented exports: the lines that
`reconcile` compares with what was traced.

- OpenAI: the organization Costs API (`GET /v1/organization/costs`, dollars per day, by
  `line_item` when grouped so: `"gpt-4o-2024-08-06, input"`) and Usage API for completions
  (`GET /v1/organization/usage/completions`, tokens and requests per day, by model when grouped
  so, with `batch` and `service_tier`).
- Anthropic: the Admin API's cost report (`GET /v1/organizations/cost_report`, amounts in cents as
  decimal strings, by model, token type and service tier when grouped by description) and usage
  report (`GET /v1/organizations/usage_report/messages`, tokens by kind).

A file holds one response page, a JSON array of pages, or one page per line (what paging through
the API and saving each answer gives). Its pages may mix costs and usage. Anything else is an
`InvoiceError` naming the page, bucket and result at fault; nothing is half read.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson

PROVIDERS = ("openai", "anthropic")


class InvoiceError(ValueError):
    """The export is not in a shape this reads; the message says where."""


@dataclass(frozen=True)
class Billed:
    """One line of the provider's record for one UTC day: dollars (a costs export) or tokens and
    requests (a usage export), of a model (None: a line that is no model's, as tool calls or
    storage), at a service tier when the export says it."""

    day: date
    model: str | None
    item: str  # the provider's own words for the line
    usd: float | None = None
    input_tokens: int | None = None  # cached and cache-write tokens included, as spans count them
    output_tokens: int | None = None
    requests: int | None = None
    tier: str | None = None


def read_export(provider: str, text: str | bytes) -> list[Billed]:
    """The billed lines of an export file of `provider` (see the module's list of formats)."""
    if provider not in PROVIDERS:
        raise InvoiceError(f"provider must be one of: {', '.join(PROVIDERS)}")
    pages = _pages(text)
    read = _openai if provider == "openai" else _anthropic
    lines: list[Billed] = []
    for p, page in enumerate(pages):
        where = f"page {p + 1}"
        if not isinstance(page, dict) or not isinstance(page.get("data"), list):
            raise InvoiceError(f"{where}: not a {provider} cost or usage page (no `data` list)")
        for b, bucket in enumerate(page["data"]):
            lines += read(bucket, f"{where}, data[{b}]")
    return lines


def _pages(text: str | bytes) -> list[Any]:
    raw = text.encode() if isinstance(text, str) else text
    try:
        found = orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass  # one page per line
    else:
        return found if isinstance(found, list) else [found]
    pages = []
    for n, line in enumerate(raw.splitlines()):
        if not line.strip():
            continue
        try:
            pages.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise InvoiceError(f"line {n + 1}: not JSON ({exc})") from None
    if not pages:
        raise InvoiceError("the export is empty")
    return pages


def _results(bucket: Any, where: str) -> tuple[date, list[Any]]:
    if not isinstance(bucket, dict):
        raise InvoiceError(f"{where}: not a time bucket")
    start = bucket.get("start_time", bucket.get("starting_at"))
    results = bucket.get("results", bucket.get("result"))
    if start is None or not isinstance(results, list):
        raise InvoiceError(f"{where}: a time bucket needs its start and its results")
    try:
        if isinstance(start, int | float) and not isinstance(start, bool):
            day = datetime.fromtimestamp(start, UTC).date()
        else:
            day = datetime.fromisoformat(str(start).replace("Z", "+00:00")).astimezone(UTC).date()
    except (ValueError, OverflowError, OSError):
        raise InvoiceError(f"{where}: {start!r} is not a time") from None
    return day, results


def _finite(value: Any) -> float | int | None:
    """A number, or its text (exports write some amounts as strings), if finite; else None.
    float() reads "NaN" and "Infinity" in text: no bill has them."""
    try:
        number = float(value) if isinstance(value, str) else value
    except ValueError:
        return None
    if not isinstance(number, int | float) or isinstance(number, bool) or not math.isfinite(number):
        return None
    return number


def _number(result: dict[str, Any], key: str, where: str) -> float | None:
    value = result.get(key)
    if value is None:
        return None
    number = _finite(value)
    if number is None:
        raise InvoiceError(f"{where}: {key} is {value!r}, not a number")
    return number


def _count(result: dict[str, Any], where: str, *path: str) -> int:
    """A token or request count at `path` (0 when absent): a whole number, not below 0."""
    value: Any = result
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if value is None:
        return 0
    number = _finite(value)
    if number is None or number < 0 or number != int(number):
        raise InvoiceError(f"{where}: {'.'.join(path)} is {value!r}, not a count")
    return int(number)


#: `"gpt-4o-2024-08-06, cached input"` → the model and what of it was billed.
_LINE_ITEM = re.compile(r"^(?P<model>[^,\s]+), (?P<kind>.+)$")


def _openai(bucket: Any, where: str) -> list[Billed]:
    day, results = _results(bucket, where)
    lines = []
    for r, result in enumerate(results):
        at = f"{where}.results[{r}]"
        if not isinstance(result, dict):
            raise InvoiceError(f"{at}: not an object")
        kind = result.get("object")
        if kind == "organization.costs.result" or "amount" in result:
            amount = result.get("amount") or {}
            if not isinstance(amount, dict):
                raise InvoiceError(f"{at}: amount must be an object of value and currency")
            if str(amount.get("currency", "usd")).lower() != "usd":
                raise InvoiceError(f"{at}: only USD amounts are read (got {amount.get('currency')!r})")
            item = result.get("line_item") or "(all line items)"
            matched = _LINE_ITEM.match(item) if result.get("line_item") else None
            lines.append(
                Billed(
                    day,
                    matched["model"] if matched else None,
                    item,
                    usd=_number(amount, "value", at) or 0.0,
                    tier="batch" if matched and "batch" in matched["kind"].lower() else None,
                )
            )
        elif kind == "organization.usage.completions.result" or "num_model_requests" in result:
            tier = "batch" if result.get("batch") else result.get("service_tier")
            lines.append(
                Billed(
                    day,
                    result.get("model"),
                    result.get("model") or "(all models)",
                    input_tokens=_count(result, at, "input_tokens"),
                    output_tokens=_count(result, at, "output_tokens"),
                    requests=_count(result, at, "num_model_requests"),
                    tier=tier,
                )
            )
        else:
            raise InvoiceError(f"{at}: neither a costs result nor a completions usage result")
    return lines


def _anthropic(bucket: Any, where: str) -> list[Billed]:
    day, results = _results(bucket, where)
    lines = []
    for r, result in enumerate(results):
        at = f"{where}.results[{r}]"
        if not isinstance(result, dict):
            raise InvoiceError(f"{at}: not an object")
        tier = result.get("service_tier")
        if "amount" in result:
            if str(result.get("currency") or "USD").upper() != "USD":
                raise InvoiceError(f"{at}: only USD amounts are read (got {result.get('currency')!r})")
            cents = _number(result, "amount", at) or 0.0
            token = result.get("token_type")
            item = result.get("description") or token or result.get("cost_type") or "(all costs)"
            model = result.get("model") if result.get("cost_type") in (None, "tokens") else None
            lines.append(Billed(day, model, item, usd=cents / 100, tier=tier))
        elif "uncached_input_tokens" in result or "output_tokens" in result:
            inputs = (
                _count(result, at, "uncached_input_tokens")
                + _count(result, at, "cache_read_input_tokens")
                + _count(result, at, "cache_creation", "ephemeral_5m_input_tokens")
                + _count(result, at, "cache_creation", "ephemeral_1h_input_tokens")
            )
            lines.append(
                Billed(
                    day,
                    result.get("model"),
                    result.get("model") or "(all models)",
                    input_tokens=inputs,
                    output_tokens=_count(result, at, "output_tokens"),
                    tier=tier,
                )
            )
        else:
            raise InvoiceError(f"{at}: neither a cost report result nor a messages usage result")
    return lines
