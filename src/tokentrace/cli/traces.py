"""The stored traces: `traces` lists the recent ones, `export` writes their spans to a file."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Column, Table

from tokentrace.cli.options import (
    api_client,
    call_api,
    console,
    echo_json,
    json_option,
    key_option,
    server_option,
)
from tokentrace.pricing.amounts import usd


@click.command()
@click.option("--since", default="1h", show_default=True)
@click.option("--until", default=None)
@click.option("--user", default=None)
@click.option("--tenant", default=None)
@click.option("--session", default=None)
@click.option("--model", default=None)
@click.option("--status", default=None, type=click.Choice(["ok", "error", "unset"]))
@click.option("--min-cost", type=float, default=None)
@click.option("--limit", type=int, default=50, show_default=True)
@json_option
@server_option
@key_option
def traces(
    since: str,
    until: str | None,
    user: str | None,
    tenant: str | None,
    session: str | None,
    model: str | None,
    status: str | None,
    min_cost: float | None,
    limit: int,
    as_json: bool,
    server: str | None,
    api_key: str | None,
) -> None:
    """Recent traces, newest first."""
    page = call_api(
        lambda: api_client(server, api_key).get(
            "/api/v1/traces",
            {
                "since": since,
                "until": until,
                "user_id": user,
                "tenant_id": tenant,
                "session_id": session,
                "request_model": model,
                "status": status,
                "min_cost": min_cost,
                "limit": limit,
            },
        )
    )
    if as_json:
        echo_json(page)
        return
    # The trace id whole, never cut: it is what opens the trace (`/traces/<id>`, the API).
    trace = Column("trace", no_wrap=True, min_width=32)
    table = Table("start", trace, "root", "spans", "ms", "tokens", "cost", "models", "user", "status")
    for t in page["traces"]:
        table.add_row(
            t["start_time"][:23],
            t["trace_id"],
            t["root_name"] or "",
            str(t["spans"]),
            f"{t['duration_ms']:,.0f}",
            f"{t['total_tokens'] or 0:,}",
            usd(t["cost_usd"]),
            ", ".join(t["models"] or []),
            t["user_id"] or "",
            "[red]error[/red]" if t["status"] == "error" else "ok",
        )
    console.print(table)
    if page["has_more"]:
        console.print(f"(more than {limit}; use --limit or narrow the range)")


@click.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl", "parquet"]), default="jsonl", show_default=True)
@click.option("--since", default=None, help="default: everything")
@click.option("--until", default=None)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@server_option
@key_option
def export(
    fmt: str, since: str | None, until: str | None, output: Path, server: str | None, api_key: str | None
) -> None:
    """Export canonical spans to a file (JSON Lines or Parquet)."""
    client = api_client(server, api_key)
    params = {"format": fmt, "since": since, "until": until}

    def download() -> int:
        size = 0
        with output.open("wb") as f:
            for chunk in client.stream("/api/v1/spans/export", params):
                f.write(chunk)
                size += len(chunk)
        return size

    size = call_api(download)
    click.echo(f"wrote {size:,} bytes to {output}", err=True)
