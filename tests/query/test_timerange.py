from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tokentrace.timerange import TimeRangeError, parse_instant, parse_range

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("15m", NOW - timedelta(minutes=15)),
        ("24h", NOW - timedelta(hours=24)),
        ("7d", NOW - timedelta(days=7)),
        ("90s", NOW - timedelta(seconds=90)),
        ("2026-11-21T10:00:00Z", datetime(2026, 11, 21, 10, tzinfo=UTC)),
        ("2026-11-21T10:00:00+02:00", datetime(2026, 11, 21, 8, tzinfo=UTC)),
        ("2026-11-21", datetime(2026, 11, 21, tzinfo=UTC)),
    ],
)
def test_instants_and_durations(text, expected):
    assert parse_instant(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "15 minutes", "-5m"])
def test_bad_times_say_what_is_expected(text):
    with pytest.raises(TimeRangeError, match=r"ISO 8601|duration"):
        parse_instant(text, NOW)


def test_range_must_be_ordered():
    with pytest.raises(TimeRangeError, match="after"):
        parse_range("1h", "2h", NOW)
    assert parse_range(None, None, NOW) == (None, None)
