"""The `triage` command: what changed in a window against its baseline, and why."""

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
from tokentrace.server.ui.formats import amount, change


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


@click.command()
@click.option("--since", default="1h", show_default=True, help="the window: a duration back from --until")
@click.option("--baseline", default="24h", show_default=True, help="the period just before the window")
@click.option("--until", default=None, help="the window's end (ISO 8601) [default: now]")
@json_option
@server_option
@key_option
def triage(
    since: str, baseline: str, until: str | None, as_json: bool, server: str | None, api_key: str | None
) -> None:
    """What changed: the window against its baseline, and the causes of a move in cost, latency or errors."""
    result = call_api(
        lambda: api_client(server, api_key).get(
            "/api/v1/triage", {"since": since, "baseline": baseline, "until": until}
        )
    )
    if as_json:
        echo_json(result)
        return
    window, base = result["window"], result["baseline"]
    console.print(
        f"Window {since} vs the {baseline} before it: cost {usd(base['cost_per_hour'])}/h → "
        f"{usd(window['cost_per_hour'])}/h, requests {base['requests']:,} → {window['requests']:,}, "
        f"p95 {_ms(base['p95_latency_ms'])} → {_ms(window['p95_latency_ms'])}"
    )
    checks = Table("check", "before", "after", "change", title="The playbook's checks")
    for check in result["checks"]:
        if "before" in check:
            moved = "" if check["change"] is None else change(check["change"])
            checks.add_row(check["step"], amount(check["before"]), amount(check["after"]), moved)
        elif "shift" in check and check.get("biggest_mover"):
            mover = check["biggest_mover"]
            checks.add_row(
                check["step"],
                f"{mover['value']} {mover['before']:.0%}",
                f"{mover['value']} {mover['after']:.0%}",
                f"shift {check['shift']:.0%}",
            )
    console.print(checks)
    sections = (
        ("Cost", result["causes"]),
        ("p95 latency", result["latency"]["causes"]),
        ("Errors", (result.get("errors") or {}).get("causes") or []),  # (a server before session 35)
    )
    for title, causes in sections:
        if not causes:
            console.print(f"{title}: no cause stands out.")
            continue
        console.print(f"[bold]{title}: causes, most likely first[/bold]")
        for rank, cause in enumerate(causes, 1):
            console.print(f" {rank}. {cause['evidence']}")
            if cause["example_trace_ids"]:
                console.print(f"    e.g. traces {', '.join(cause['example_trace_ids'])}")
    if result.get("quality"):
        console.print("[bold]Quality: scores that moved[/bold]")
        for moved in result["quality"]:
            console.print(f" - {moved['evidence']}")
