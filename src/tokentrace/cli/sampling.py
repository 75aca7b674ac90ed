"""The `sampling` commands: simulate, show, set and apply the tail-sampling policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


@click.group()
def sampling() -> None:
    """Tail sampling by retention: which traces keep their detail past the recent window."""


def _policy_file(path: Path | None) -> dict[str, Any] | None:
    """A TOML policy (the top-level table of a --sampling file) as the API's JSON."""
    if path is None:
        return None
    from tokentrace.jobs.sampler import PolicyError, load, policy_spec

    try:
        found = load(path)
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from exc
    if found.default is None:
        raise click.ClickException(f"{path}: no top-level policy (per-project tables are for the server)")
    return policy_spec(found.default)


@sampling.command("simulate")
@click.option("--since", default="7d", show_default=True, help="judge the traces with a span since then")
@click.option("--until", default=None, help="ISO 8601 instant or duration [default: now]")
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="a TOML policy to try [default: the project's]",
)
@json_option
@server_option
@key_option
def sampling_simulate(
    since: str,
    until: str | None,
    policy_path: Path | None,
    as_json: bool,
    server: str | None,
    api_key: str | None,
) -> None:
    """What a policy would keep of the stored traces (changes nothing)."""
    body = {"since": since, "until": until, "policy": _policy_file(policy_path)}
    result = call_api(lambda: api_client(server, api_key).post("/api/v1/sampling/simulate", body))
    if as_json:
        echo_json(result)
        return
    table = Table("", "total", "kept", "share", title=f"Policy simulated on the traces since {since}")
    for name, label, fmt in (
        ("traces", "traces", "{:,}".format),
        ("spans", "spans", "{:,}".format),
        ("detail_bytes", "detail (bytes of attributes and content)", "{:,}".format),
        ("error_traces", "traces with errors", "{:,}".format),
        ("cost_usd", "cost in those traces", usd),
    ):
        row = result[name]
        share = "—" if row["share"] is None else f"{row['share']:.1%}"
        table.add_row(label, fmt(row["total"]), fmt(row["kept"]), share)
    console.print(table)
    reasons = ", ".join(f"{n:,} {reason}" for reason, n in result["kept_because"].items()) or "none"
    console.print(f"Kept because: {reasons}. Totals (cost, tokens, calls) stay whole in the rollups.")


@sampling.command("policy")
@click.option(
    "--set",
    "set_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="set the project's policy from a TOML file (replaces the server's --sampling file for it)",
)
@click.option("--clear", is_flag=True, help="remove the policy set here (the file's applies again)")
@server_option
@key_option
def sampling_policy(set_path: Path | None, clear: bool, server: str | None, api_key: str | None) -> None:
    """Show (or set, or clear) the project's sampling policy."""
    client = api_client(server, api_key)
    if set_path is not None:
        body = _policy_file(set_path)
        result = call_api(lambda: client.put("/api/v1/sampling/policy", body))
    elif clear:
        result = call_api(lambda: client.delete("/api/v1/sampling/policy"))
    else:
        result = call_api(lambda: client.get("/api/v1/sampling/policy"))
    echo_json(result)


@sampling.command("apply")
@server_option
@key_option
def sampling_apply(server: str | None, api_key: str | None) -> None:
    """Judge the project's due traces now (the server also does every --sampling-interval)."""
    result = call_api(lambda: api_client(server, api_key).post("/api/v1/sampling/apply"))
    echo_json(result)
