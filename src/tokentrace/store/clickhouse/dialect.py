"""ClickHouse's side of the shared compiler (store/sql.py): named, typed parameters
(`{name:Type}`), times as UTC text, positionCaseInsensitiveUTF8 for a substring,
toStartOfInterval for a bucket."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def time64(value: datetime) -> str:
    """A datetime (naive: UTC) as a DateTime64 parameter's text, to the microsecond."""
    return (value.astimezone(UTC) if value.tzinfo else value).strftime("%Y-%m-%d %H:%M:%S.%f")


def whole_seconds(value: datetime) -> str:
    """A datetime (naive: UTC) as a DateTime parameter's text; buckets are whole seconds."""
    return (value.astimezone(UTC) if value.tzinfo else value).strftime("%Y-%m-%d %H:%M:%S")


#: DuckDB's time_bucket counts buckets from 2000-01-03 00:00 UTC (a Monday); ClickHouse's
#: toStartOfInterval from the epoch (a Thursday). They agree on widths that divide a day.
_ORIGIN = 946_857_600


def bucket(time_column: str, seconds: int) -> str:
    """A row's time bucket as the select item `bucket`, the same as DuckDB's time_bucket: a
    7-day bucket starts on a Monday in both stores."""
    seconds = int(seconds)
    if 86_400 % seconds == 0:
        return f"toStartOfInterval({time_column}, INTERVAL {seconds} SECOND)::DateTime64(6) AS bucket"
    start = f"{_ORIGIN} + intDiv(toUnixTimestamp({time_column}) - {_ORIGIN}, {seconds}) * {seconds}"
    return f"toDateTime64({start}, 6) AS bucket"


class ClickHouseDialect(dict):
    """A ClickHouse query's parameters by name (pass it to the transport as the dict it is)."""

    span_time = "start_time"

    def param(self, name: str, value: Any, kind: str = "value") -> str:
        # One query may filter several parts of a range (a UNION): each value its own name.
        base, n = name, 1
        while name in self:
            name, n = f"{base}_{n}", n + 1
        if kind == "instant":
            self[name] = time64(value)
            return f"{{{name}:DateTime64(9, 'UTC')}}"
        if kind == "second":
            self[name] = whole_seconds(value)
            return f"{{{name}:DateTime('UTC')}}"
        self[name] = str(value)
        return f"{{{name}:String}}"

    def contains(self, column: str, text: str) -> str:
        return f"positionCaseInsensitiveUTF8(coalesce({column}, ''), {self.param('name', text)}) > 0"

    def bucket(self, time_column: str, seconds: int) -> str:
        return bucket(time_column, seconds)
