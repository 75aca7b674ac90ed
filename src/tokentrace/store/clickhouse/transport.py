"""How the ClickHouse store reaches ClickHouse: the engine in-process (chDB: tests, and one
machine without a server) or a server over HTTP (clickhouse-connect). Both take the same SQL
with ClickHouse's own query parameters (`{name:Type}`), bound by the server, never spliced into
the text; values are formatted by clickhouse-connect's rules on both.

    chdb:///var/lib/tokentrace/ch?database=db  an in-process engine over that directory
    clickhouse://user:password@host:8123/db    a server (https: clickhouses://)

chDB runs one engine per process over one directory: a second path can be opened only once the
first is closed, so separate stores in one process are databases of one path.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import parse_qs, urlparse

import pyarrow as pa

Params = Mapping[str, Any] | None


class TransportError(RuntimeError):
    """ClickHouse refused a statement, or could not be reached."""


class Transport(Protocol):
    """What the store needs from a connection to ClickHouse."""

    def command(self, sql: str, params: Params = None) -> None:
        """Run a statement that returns nothing (DDL, INSERT … SELECT, DELETE)."""

    def query(self, sql: str, params: Params = None) -> pa.Table:
        """Run a query; its rows as an Arrow table."""

    def insert(self, table: str, data: pa.Table) -> None:
        """Append an Arrow table's rows to `table` (columns by name)."""

    def close(self) -> None: ...


class ChdbTransport:
    """The ClickHouse engine in this process, its data in `path`, tables in `database`."""

    def __init__(self, path: str, database: str = "default") -> None:
        from chdb import session

        self._session = session.Session(path)
        # A chDB session runs one statement at a time: the server's threads take turns.
        self._lock = threading.Lock()
        if database != "default":
            self.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
            self.command(f"USE `{database}`")  # a session keeps it

    def _bound(self, params: Params) -> dict[str, str] | None:
        from clickhouse_connect.driver.binding import format_bind_value

        return {k: format_bind_value(v) for k, v in params.items()} if params else None

    def command(self, sql: str, params: Params = None) -> None:
        self._run(sql, "Null", params)

    def query(self, sql: str, params: Params = None) -> pa.Table:
        return self._run(sql, "ArrowTable", params)

    def insert(self, table: str, data: pa.Table) -> None:
        rows = data  # noqa: F841 - chDB's Python() table function finds the table by this name
        columns = ", ".join(f"`{name}`" for name in data.column_names)
        sql = f"INSERT INTO {table} ({columns}) SELECT {columns} FROM Python(rows)"
        try:
            with self._lock:
                self._session.query(sql, "Null")
        except Exception as exc:
            raise TransportError(str(exc)) from exc

    def _run(self, sql: str, fmt: str, params: Params) -> Any:
        try:
            with self._lock:
                return self._session.query(sql, fmt, params=self._bound(params))
        except Exception as exc:  # chDB raises its own error types (and RuntimeError)
            raise TransportError(str(exc)) from exc

    def close(self) -> None:
        self._session.close()


class HttpTransport:
    """A ClickHouse server over HTTP(S) through clickhouse-connect."""

    def __init__(self, url: str) -> None:
        import clickhouse_connect

        parsed = urlparse(url)
        try:
            self._client = clickhouse_connect.get_client(
                host=parsed.hostname or "127.0.0.1",
                port=parsed.port or (8443 if parsed.scheme == "clickhouses" else 8123),
                username=parsed.username or "default",
                password=parsed.password or "",
                database=parsed.path.lstrip("/") or "default",
                secure=parsed.scheme == "clickhouses",
                # No session: the server's threads (the writer, roll-ups, API requests) query at
                # once, and ClickHouse refuses a second query in a session one is running in
                # (SESSION_IS_LOCKED). Nothing here keeps state in a session.
                autogenerate_session_id=False,
            )
        except Exception as exc:
            raise TransportError(
                f"cannot reach ClickHouse at {parsed.hostname}:{parsed.port}: {exc}"
            ) from exc

    def command(self, sql: str, params: Params = None) -> None:
        self._call(self._client.command, sql, parameters=dict(params or {}))

    def query(self, sql: str, params: Params = None) -> pa.Table:
        return self._call(self._client.query_arrow, sql, parameters=dict(params or {}))

    def insert(self, table: str, data: pa.Table) -> None:
        self._call(self._client.insert_arrow, table, data)

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except Exception as exc:  # clickhouse-connect's DatabaseError, OperationalError, …
            raise TransportError(str(exc)) from exc

    def close(self) -> None:
        self._client.close()


def connect(url: str) -> Transport:
    """A transport for a `chdb://PATH` or `clickhouse[s]://…` URL."""
    parsed = urlparse(url)
    if parsed.scheme == "chdb":
        path = (parsed.netloc + parsed.path) or "."
        database = parse_qs(parsed.query).get("database", ["default"])[0]
        return ChdbTransport(path, database)
    if parsed.scheme in ("clickhouse", "clickhouses"):
        return HttpTransport(url)
    raise ValueError(f"not a ClickHouse URL: {url!r} (chdb:///path or clickhouse://host:8123/db)")
