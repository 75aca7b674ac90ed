"""The one filter and group compiler (store/sql.py), as each dialect writes it. Behaviour over real
data is the both-store tests' (tests/store/, tests/query/); here: names that may not reach SQL do
not, and what each dialect is handed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tokentrace.canonical import MINUTE, USER_HOUR
from tokentrace.store.clickhouse.dialect import ClickHouseDialect
from tokentrace.store.duckdb.dialect import DuckDBDialect
from tokentrace.store.filters import SpanFilter
from tokentrace.store.sql import select_groups, where_clause

SINCE = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
UNTIL = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)


def test_a_span_filter_in_both_dialects_names_the_same_conditions():
    f = SpanFilter("p1", SINCE, UNTIL, {"request_model": "gpt-4o", "user_id": None}, name_contains="50%_off")
    duck, ch = DuckDBDialect(), ClickHouseDialect()
    duck_sql, ch_sql = where_clause(f, duck), where_clause(f, ch)
    assert duck_sql.count(" AND ") == ch_sql.count(" AND ") == 5
    assert "user_id IS NULL" in duck_sql and "user_id IS NULL" in ch_sql
    # DuckDB: values in placeholder order, times naive UTC, LIKE's wildcards escaped.
    assert duck == ["p1", SINCE.replace(tzinfo=None), UNTIL.replace(tzinfo=None), "gpt-4o", "%50\\%\\_off%"]
    # ClickHouse: by name, times as UTC text, the substring as it is.
    assert ch == {
        "project": "p1",
        "since": "2026-12-01 10:00:00.000000",
        "until": "2026-12-01 11:00:00.000000",
        "eq0": "gpt-4o",
        "name": "50%_off",
    }


def test_an_alias_prefixes_every_column():
    sql = where_clause(SpanFilter("p1", SINCE, equals={"input_bucket": "1k-4k"}), DuckDBDialect(), alias="sp")
    assert sql.startswith("sp.project_id = ? AND sp.start_time >= ?")
    assert "sp.input_tokens" in sql  # the derived field's expression, over the alias


def test_a_rollup_filters_and_groups_by_its_keys_only():
    f = SpanFilter("p1", SINCE, UNTIL, {"tenant_id": "acme"})
    assert "minute >= ?" in where_clause(f, DuckDBDialect(), grain=MINUTE)
    with pytest.raises(ValueError, match="not kept by 'session_id'"):
        where_clause(SpanFilter("p1", equals={"session_id": "s"}), DuckDBDialect(), grain=MINUTE)
    with pytest.raises(ValueError, match="span name"):
        where_clause(SpanFilter("p1", name_contains="chat"), ClickHouseDialect(), grain=MINUTE)
    with pytest.raises(ValueError, match="not kept by 'request_model'"):
        select_groups(("request_model",), DuckDBDialect(), grain=USER_HOUR)
    with pytest.raises(ValueError, match="multiples of 3600"):
        select_groups((), ClickHouseDialect(), bucket_seconds=60, grain=USER_HOUR)


def test_times_only_stops_at_the_project_and_the_range():
    f = SpanFilter("p1", SINCE, equals={"tenant_id": "acme"})
    assert where_clause(f, ClickHouseDialect(), grain=MINUTE, times_only=True) == (
        "project_id = {project:String} AND minute >= {since:DateTime('UTC')}"
    )


def test_a_name_that_is_not_a_groupable_field_never_reaches_sql():
    with pytest.raises(ValueError, match="not allowed"):
        select_groups(("user_id; DROP TABLE spans",), DuckDBDialect())
    with pytest.raises(ValueError):
        SpanFilter("p1", equals={"1=1 OR project_id": "x"})  # the filter itself refuses it


def test_groups_put_the_time_bucket_first_in_each_dialect():
    assert select_groups(("request_model",), DuckDBDialect(), 300) == [
        "time_bucket(INTERVAL '300 seconds', start_time::TIMESTAMP) AS bucket",
        "request_model AS request_model",
    ]
    assert select_groups(("request_model",), ClickHouseDialect(), 300)[0] == (
        "toStartOfInterval(start_time, INTERVAL 300 SECOND)::DateTime64(6) AS bucket"
    )
