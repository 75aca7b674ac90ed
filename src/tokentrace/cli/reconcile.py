"""`tokentrace reconcile`: the provider's bill against what was traced, per day and model."""

from __future__ import annotations

from pathlib import Path

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


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1%}"


@click.command()
@click.option("--provider", type=click.Choice(["openai", "anthropic"]), required=True)
@click.option(
    "--costs",
    "export",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="the provider's cost or usage export: OpenAI's Costs or Usage API pages, Anthropic's "
    "cost or usage report (one page, a JSON array of pages, or a page per line)",
)
@click.option("--all", "show_all", is_flag=True, help="list the rows that match too")
@json_option
@server_option
@key_option
def reconcile(
    provider: str, export: Path, show_all: bool, as_json: bool, server: str | None, api_key: str | None
) -> None:
    """Compare the provider's bill with the traced calls: per day and model, billed, traced, the
    gap and its likely reasons (unpriced models, calls never traced, tiers, discounts)."""
    body = {"provider": provider, "export": export.read_text()}
    result = call_api(lambda: api_client(server, api_key).post("/api/v1/reconcile", json=body))
    if as_json:
        echo_json(result)
        return
    table = Table("day", "model", "billed", "traced", "gap", "gap %", "calls billed/traced", "why")
    shown = [r for r in result["rows"] if show_all or not r["matches"]]
    for r in shown:
        billed_calls = "—" if r["billed_requests"] is None else f"{r['billed_requests']:,}"
        table.add_row(
            r["day"],
            r["model"],
            usd(r["billed_usd"]),
            usd(r["traced_usd"]),
            usd(r["gap_usd"], signed=True),
            _pct(r["gap_pct"]),
            f"{billed_calls} / {r['traced_requests']:,}",
            "matches" if r["matches"] else "; ".join(r["reasons"]),
        )
    console.print(table)
    matching = len(result["rows"]) - sum(1 for r in result["rows"] if not r["matches"])
    console.print(
        f"{result['since'][:10]} to {result['until'][:10]}: billed {usd(result['billed_usd'])}, traced "
        f"{usd(result['traced_usd'])}, gap {usd(result['gap_usd'], signed=True)}"
        f" ({_pct(result['gap_pct'])}); {matching} of {len(result['rows'])} rows match"
        + ("" if show_all else " (--all lists them)")
    )
