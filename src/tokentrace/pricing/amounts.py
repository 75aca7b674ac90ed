"""How an amount of US dollars reads. LLM calls cost fractions of a cent: an amount under a cent
keeps two significant digits (`$0.00012`), so a priced call never reads as `$0.0000`, free."""

from __future__ import annotations

import math

DASH = "—"


def is_amount(value: object) -> bool:
    """A price, rate or multiplier a user may set: a finite number, not negative. TOML reads
    `nan` and `inf` as floats, and a NaN price would make every sum it joins NaN."""
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    )


def usd(value: float | None, signed: bool = False) -> str:
    """`$1,234.56`, `$0.0123`, `$0.00012`, `$0.00`; `—` when unknown (unpriced). `signed` gives
    a change its sign (`+$0.42`, `-$0.0031`)."""
    if value is None:
        return DASH
    magnitude = abs(value)
    if magnitude >= 1 or magnitude == 0:
        digits = 2
    elif magnitude >= 0.01:
        digits = 4
    else:
        # two significant digits, down to a nano-dollar (prices are kept to 1e-9 per token)
        digits = min(1 - math.floor(math.log10(magnitude)), 10)
    sign = ("+" if value >= 0 else "-") if signed else ("-" if value < 0 else "")
    return f"{sign}${magnitude:,.{digits}f}"
