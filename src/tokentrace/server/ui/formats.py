"""How numbers, times and links look on the pages (Jinja filters and globals)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from tokentrace.pricing.amounts import usd

DASH = "—"
TIMES = "\N{MULTIPLICATION SIGN}"


def money(value: float | None) -> str:
    """US dollars, with significant digits below a cent (pricing/amounts.py)."""
    return usd(value)


def count(value: float | None) -> str:
    return DASH if value is None else f"{value:,.0f}"


def number(value: float | None, digits: int = 2) -> str:
    return DASH if value is None else f"{value:,.{digits}f}"


def ms(value: float | None) -> str:
    if value is None:
        return DASH
    return f"{value:,.1f} ms" if value < 10 else f"{value:,.0f} ms"


def pct(value: float | None) -> str:
    return DASH if value is None else f"{value:.2%}"


def amount(value: float | None) -> str:
    """A measured quantity rounded by its size: `561,824`, `12.3`, `1.05`, `0.0421`."""
    if value is None:
        return DASH
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if magnitude >= 1 else f"{value:.3g}"


def change(value: float | None) -> str:
    """A relative change (after / before - 1) as people say it: `+26%`, `-40%`, and past doubling
    a factor (the multiplication sign and 2.6, or 263), not `+26289%`."""
    if value is None:
        return DASH
    if value >= 1:
        factor = value + 1
        return f"{TIMES}{factor:,.0f}" if factor >= 10 else f"{TIMES}{factor:.1f}"
    return f"{value:+.0%}"


def when(value: str | datetime | None) -> str:
    """An instant as `2026-11-22 12:03:04` (UTC, to the second)."""
    if value is None:
        return DASH
    text = value.isoformat() if isinstance(value, datetime) else value
    return text[:19].replace("T", " ")


def query(params: Mapping[str, str], **changes: Any) -> str:
    """`?…` for the current query string with `changes` applied (None or "" removes a key)."""
    merged = {k: v for k, v in params.items() if v not in (None, "")}
    for key, value in changes.items():
        if value in (None, ""):
            merged.pop(key, None)
        else:
            merged[key] = str(value)
    return "?" + urlencode(merged) if merged else "?"


FILTERS = {"money": money, "count": count, "number": number, "ms": ms, "pct": pct, "when": when}
FILTERS |= {"amount": amount, "change": change}


def pretty(value: Any) -> str:
    """Text as itself, anything else as indented JSON (plain text: the template escapes it)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def shown(value: Any, fmt: str) -> str:
    """`value` in the format a column names (one of FILTERS)."""
    return FILTERS[fmt](value)


FILTERS |= {"shown": shown, "pretty": pretty}
GLOBALS = {"query": query}
