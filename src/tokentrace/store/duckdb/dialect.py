"""DuckDB's side of the shared compiler (store/sql.py): positional `?` parameters, times as
naive UTC TIMESTAMPs, ILIKE for a substring, time_bucket for a bucket."""

from __future__ import annotations

from typing import Any

from tokentrace.store.duckdb.connection import naive


class DuckDBDialect(list):
    """A DuckDB query's parameters, in placeholder order (pass it to execute as the list it is)."""

    span_time = "start_time::TIMESTAMP"

    def param(self, name: str, value: Any, kind: str = "value") -> str:
        self.append(value if kind == "value" else naive(value))
        return "?"

    def contains(self, column: str, text: str) -> str:
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"{column} ILIKE {self.param('name', f'%{escaped}%')} ESCAPE '\\'"

    def bucket(self, time_column: str, seconds: int) -> str:
        return f"time_bucket(INTERVAL '{int(seconds)} seconds', {time_column}) AS bucket"
