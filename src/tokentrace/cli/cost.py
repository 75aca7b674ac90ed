"""What the calls cost: `cost` groups the spend by any tag, `reprice` prices stored spans again."""

from __future__ import annotations

import click
from rich.table import Table

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
@click.option(
    "--by",
    "group_by",
    default="tenant_id",
    show_default=True,
    help="comma-separated fields, e.g. tenant_id,model",
)
@click.option("--since", default="24h", show_default=True, help="ISO 8601 instant or duration (15m, 24h, 7d)")
@click.option("--until", default=None)
@json_option
@server_option
@key_option
def cost(
    group_by: str, since: str, until: str | None, as_json: bool, server: str | None, api_key: str | None
) -> None:
    """Cost, tokens and requests grouped by any tag."""
    result = call_api(
        lambda: api_client(server, api_key).get(
            "/api/v1/rollups", {"group_by": group_by, "since": since, "until": until}
        )
    )
    if as_json:
        echo_json(result)
        return
    fields = result["group_by"]
    table = Table(
        *fields,
        "requests",
        "input tok",
        "output tok",
        "cached tok",
        "cost",
        "errors",
        "unpriced",
        title=f"Cost by {', '.join(fields)} since {since}",
    )
    total = 0.0
    for row in result["rows"]:
        if not row["requests"] and not row["cost_usd"] and not row["unpriced_spans"]:
            continue  # a group of other spans only (roots, tools): nothing to show in a cost table
        total += row["cost_usd"] or 0
        table.add_row(
            *[str(row[f]) if row[f] is not None else "—" for f in fields],
            f"{row['requests']:,}",
            f"{row['input_tokens']:,}",
            f"{row['output_tokens']:,}",
            f"{row['cache_read_tokens']:,}",
            usd(row["cost_usd"]),
            f"{row['errors']:,}",
            f"{row['unpriced_spans']:,}",
        )
    console.print(table)
    console.print(f"Total: {usd(total)}")


@click.command()
@click.option("--since", default="30d", show_default=True)
@click.option("--until", default=None)
@json_option
@server_option
@key_option
def reprice(since: str, until: str | None, as_json: bool, server: str | None, api_key: str | None) -> None:
    """Re-price stored spans with the current prices and overrides; report the difference."""
    report = call_api(
        lambda: api_client(server, api_key).post("/api/v1/reprice", params={"since": since, "until": until})
    )
    if as_json:
        echo_json(report)
        return
    table = Table(
        "spans checked", "changed", "before", "after", "difference", "newly priced", "newly unpriced"
    )
    table.add_row(
        f"{report['spans_checked']:,}",
        f"{report['spans_changed']:,}",
        usd(report["cost_before_usd"]),
        usd(report["cost_after_usd"]),
        usd(report["difference_usd"], signed=True),
        str(report["newly_priced"]),
        str(report["newly_unpriced"]),
    )
    console.print(table)
