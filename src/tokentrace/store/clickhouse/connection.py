"""The ClickHouse connection: a transport (chDB in-process, or a server over HTTP) and the
schema's migrations."""

from __future__ import annotations

from tokentrace.store.migrations import migrations

SPANS = "spans FINAL"


def _statements(sql: str) -> list[str]:
    """A migration's statements: split at a `;` that ends a line, comments dropped."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    statements = (s.strip().rstrip(";").strip() for s in "\n".join(lines).split(";\n"))
    return [s for s in statements if s]


class ClickHouseConnection:
    """The transport and the schema's migrations."""

    def _migrate(self) -> None:
        self._ch.command(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, "
            "applied_at DateTime64(6, 'UTC')) ENGINE = ReplacingMergeTree ORDER BY version"
        )
        applied = set(self._ch.query("SELECT version FROM schema_migrations FINAL")["version"].to_pylist())
        for version, name, sql in migrations("clickhouse"):
            if version in applied:
                continue
            # No transactions: every statement is IF NOT EXISTS or guarded, so a migration cut
            # short runs again whole.
            for statement in _statements(sql):
                self._ch.command(statement)
            self._ch.command(
                "INSERT INTO schema_migrations VALUES ({v:UInt32}, {n:String}, now64(6))",
                {"v": version, "n": name},
            )

    def schema_version(self) -> int:
        return int(self._ch.query("SELECT max(version) AS v FROM schema_migrations")["v"][0].as_py())

    def close(self) -> None:
        self._ch.close()
