"""How dollar amounts read: a priced call never shows as free."""

from __future__ import annotations

import pytest

from tokentrace.pricing.amounts import usd


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "—"),
        (0, "$0.00"),
        (1234.5678, "$1,234.57"),
        (0.0123456, "$0.0123"),
        (0.00012345, "$0.00012"),  # a small call: two significant digits, not $0.0000
        (0.0000000012, "$0.0000000012"),
        (-0.5, "-$0.5000"),
    ],
)
def test_amounts_keep_significant_digits_below_a_cent(value, text):
    assert usd(value) == text


def test_a_change_has_its_sign():
    assert (usd(0.42, signed=True), usd(-0.0031, signed=True), usd(0, signed=True)) == (
        "+$0.4200",
        "-$0.0031",
        "+$0.00",
    )
