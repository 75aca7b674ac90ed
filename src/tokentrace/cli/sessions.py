"""`sessions`: conversations across requests, the most recently active first."""

from __future__ import annotations

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
@click.option("--since", default="24h", show_default=True)
@click.option("--until", default=None)
@click.option("--user", default=None)
@click.option("--tenant", default=None)
@click.option("--limit", type=int, default=50, show_default=True)
@json_option
@server_option
@key_option
def sessions(
    since: str,
    until: str | None,
    user: str | None,
    tenant: str | None,
    limit: int,
    as_json: bool,
    server: str | None,
    api_key: str | None,
) -> None:
    """Sessions active in the range, most recent first, each with its whole totals."""
    params = {"since": since, "until": until, "user_id": user, "tenant_id": tenant, "limit": limit}
    page = call_api(lambda: api_client(server, api_key).get("/api/v1/sessions", params))
    if as_json:
        echo_json(page)
        return
    # The session id whole: it is what opens the session (`/sessions/<id>`, the API).
    session = Column("session", no_wrap=True)
    table = Table(session, "user", "tenant", "traces", "LLM calls", "errors", "tokens", "cost", "last seen")
    for s in page["sessions"]:
        table.add_row(
            s["session_id"],
            s["user_id"] or "",
            s["tenant_id"] or "",
            f"{s['traces']:,}",
            f"{s['llm_calls']:,}",
            f"{s['errors']:,}",
            f"{s['total_tokens']:,}",
            usd(s["cost_usd"]),
            (s["last_seen"] or "")[:19],
        )
    console.print(table)
    if page["has_more"]:
        console.print(f"(more than {limit}; use --limit or narrow the range)")
