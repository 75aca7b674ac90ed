"""How numbers read on the pages and in the CLI's tables."""

from __future__ import annotations

import pytest

from tokentrace.server.ui.formats import TIMES, amount, change


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "—"), (0.26, "+26%"), (-0.4, "-40%"), (0, "+0%"), (1.6, f"{TIMES}2.6"), (262.89, f"{TIMES}264")],
)
def test_a_change_past_doubling_reads_as_a_factor(value, text):
    assert change(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "—"), (561_823.94, "561,824"), (12.34, "12.3"), (1.054, "1.05"), (0.04213, "0.0421")],
)
def test_amounts_are_rounded_by_their_size(value, text):
    assert amount(value) == text
