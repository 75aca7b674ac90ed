"""The `tokentrace` command line."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from tokentrace.client import ApiClient, ApiError

# Piped output (files, CI logs) gets wide tables instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 160)

_server_option = click.option(
    "--server", default=None, help="tokentrace URL [default: $TOKENTRACE_SERVER or http://127.0.0.1:4318]"
)
_key_option = click.option("--api-key", default=None, help="project API key [default: $TOKENTRACE_API_KEY]")


def _client(server: str | None, api_key: str | None) -> ApiClient:
    return ApiClient(server, api_key)


def _run(call):
    try:
        return call()
    except ApiError as exc:
        raise click.ClickException(str(exc)) from exc


def _usd(value: Any) -> str:
    return "—" if value is None else f"${value:,.4f}"


def _interval(text: str, option: str = "--alert-interval") -> float:
    from tokentrace.timerange import TimeRangeError, parse_duration

    try:
        seconds = parse_duration(text).total_seconds()
    except TimeRangeError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from exc
    if seconds < 1:
        raise click.BadParameter("must be at least 1s", param_hint=option)
    return seconds


def _labels(text: str) -> tuple[str, ...]:
    from tokentrace.query.filters import FilterError, group_fields

    try:
        return group_fields(text)
    except FilterError as exc:
        raise click.BadParameter(str(exc), param_hint="--metric-labels") from exc


@click.group()
@click.version_option(package_name="tokentrace")
def main() -> None:
    """tokentrace: trace, count, price and explain every LLM call."""


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path(".tokentrace"), show_default=True)
@click.option(
    "--store",
    "store_url",
    default=None,
    help="ClickHouse: chdb:///dir?database=db or clickhouse://user:pass@host:8123/db "
    "[default: a DuckDB file in --data-dir]",
)
@click.option(
    "--node",
    default=None,
    help="this ingest node's name on a shared ClickHouse [default: host name and spool directory]",
)
@click.option(
    "--ingest-only",
    is_flag=True,
    help="one of several nodes: serve OTLP, the API and the UI, and leave alert evaluation and "
    "sampling sweeps to the node that runs without this flag",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=4318, show_default=True, help="OTLP/HTTP, REST API and UI")
@click.option("--grpc-port", type=int, default=4317, show_default=True, help="OTLP/gRPC; 0 disables it")
@click.option(
    "--prices",
    "prices_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="TOML price overrides (custom models, discounts)",
)
@click.option(
    "--max-body-mb", type=float, default=16, show_default=True, help="largest OTLP body, decompressed"
)
@click.option(
    "--max-pending-mb",
    type=float,
    default=256,
    show_default=True,
    help="memory for data acked but not yet stored; past it ingest answers 503 with Retry-After",
)
@click.option(
    "--max-inflight-mb",
    type=float,
    default=64,
    show_default=True,
    help="memory for OTLP request bodies in flight; past it a new export is answered 429",
)
@click.option(
    "--store-memory-mb",
    type=int,
    default=1024,
    show_default=True,
    help="DuckDB's memory limit (it spills to disk past it)",
)
@click.option(
    "--no-redact",
    is_flag=True,
    help="keep emails, API keys and card numbers in what is sent (redacted before the spool by default)",
)
@click.option("--require-key", is_flag=True, help="refuse requests without an API key, even on loopback")
@click.option("--admin-token", envvar="TOKENTRACE_ADMIN_TOKEN", default=None, help="token for project admin")
@click.option(
    "--alerts",
    "alerts_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="TOML alert rules and notifiers",
)
@click.option("--alert-interval", default="30s", show_default=True, help="how often alert rules are checked")
@click.option(
    "--budgets",
    "budgets_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="the gateway's budgets file: /budgets shows each budget against the traced spend",
)
@click.option(
    "--sampling",
    "sampling_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="TOML tail-sampling policy: which traces keep their detail past the recent window",
)
@click.option("--sampling-interval", default="10m", show_default=True, help="how often traces are judged")
@click.option(
    "--retention",
    default=None,
    help="delete spans, content, scores and rollups older than this (e.g. 30d), checked hourly "
    "[default: keep everything]",
)
@click.option("--retention-interval", default="1h", show_default=True, help="how often --retention deletes")
@click.option(
    "--metric-labels",
    default="request_model,provider,feature,prompt_template,tenant_id",
    show_default=True,
    help="labels of /metrics (canonical fields); add user_id or drop tenant_id as cardinality allows",
)
def serve(
    data_dir: Path,
    store_url: str | None,
    node: str | None,
    ingest_only: bool,
    host: str,
    port: int,
    grpc_port: int,
    prices_file: Path | None,
    max_body_mb: float,
    max_pending_mb: float,
    max_inflight_mb: float,
    store_memory_mb: int,
    no_redact: bool,
    require_key: bool,
    admin_token: str | None,
    alerts_file: Path | None,
    alert_interval: str,
    budgets_file: Path | None,
    sampling_file: Path | None,
    sampling_interval: str,
    retention: str | None,
    retention_interval: str,
    metric_labels: str,
) -> None:
    """Run the server: OTLP in (HTTP and gRPC), REST API out, alerts, one DuckDB file."""
    from tokentrace.alerts.rules import RuleError
    from tokentrace.budgets import BudgetError
    from tokentrace.jobs.sampler import PolicyError
    from tokentrace.pricing.overrides import OverridesError
    from tokentrace.server.config import ServerConfig
    from tokentrace.server.runner import serve as run_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ServerConfig(
        data_dir=data_dir,
        store_url=store_url,
        node=node,
        background_jobs=not ingest_only,
        host=host,
        port=port,
        grpc_port=grpc_port or None,
        prices_file=prices_file,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        max_pending_bytes=int(max_pending_mb * 1024 * 1024),
        max_inflight_bytes=int(max_inflight_mb * 1024 * 1024),
        redact=not no_redact,
        store_memory_mb=store_memory_mb,
        require_key=require_key,
        admin_token=admin_token,
        alerts_file=alerts_file,
        alert_interval_s=_interval(alert_interval),
        budgets_file=budgets_file,
        sampling_file=sampling_file,
        sampling_interval_s=_interval(sampling_interval, "--sampling-interval"),
        retention_s=_interval(retention, "--retention") if retention else None,
        retention_interval_s=_interval(retention_interval, "--retention-interval"),
        metric_labels=_labels(metric_labels),
    )
    try:
        run_server(config)
    except (OverridesError, RuleError, BudgetError, PolicyError) as exc:
        raise click.ClickException(str(exc)) from exc


@main.group()
def projects() -> None:
    """Projects and their API keys."""


@projects.command("create")
@click.argument("name")
@_server_option
@click.option("--admin-token", envvar="TOKENTRACE_ADMIN_TOKEN", default=None)
def projects_create(name: str, server: str | None, admin_token: str | None) -> None:
    """Create a project; its API key is printed alone on the last line (shown once)."""
    created = _run(lambda: _client(server, admin_token).post("/api/v1/projects", {"name": name}))
    click.echo(f"Created project {created['project_id']}. Its API key (shown once):", err=True)
    click.echo(created["api_key"])


@projects.command("list")
@_server_option
@click.option("--admin-token", envvar="TOKENTRACE_ADMIN_TOKEN", default=None)
def projects_list(server: str | None, admin_token: str | None) -> None:
    """List projects."""
    listing = _run(lambda: _client(server, admin_token).get("/api/v1/projects"))
    table = Table("project", "created")
    for p in listing["projects"]:
        table.add_row(p["project_id"], p["created_at"])
    console.print(table)


@projects.command("delete")
@click.argument("name")
@_server_option
@click.option("--admin-token", envvar="TOKENTRACE_ADMIN_TOKEN", default=None)
@click.confirmation_option(prompt="Delete the project, its keys and all its data?")
def projects_delete(name: str, server: str | None, admin_token: str | None) -> None:
    """Delete a project, its keys and every span, score and rollup of it."""
    answer = _run(lambda: _client(server, admin_token).delete(f"/api/v1/projects/{name}"))
    rows = sum(answer["deleted"].values())
    click.echo(f"Deleted project {answer['project_id']} ({rows} rows).")


@main.command()
@click.option(
    "--by",
    "group_by",
    default="tenant_id",
    show_default=True,
    help="comma-separated fields, e.g. tenant_id,model",
)
@click.option("--since", default="24h", show_default=True, help="ISO 8601 instant or duration (15m, 24h, 7d)")
@click.option("--until", default=None)
@_server_option
@_key_option
def cost(group_by: str, since: str, until: str | None, server: str | None, api_key: str | None) -> None:
    """Cost, tokens and requests grouped by any tag."""
    result = _run(
        lambda: _client(server, api_key).get(
            "/api/v1/rollups", {"group_by": group_by, "since": since, "until": until}
        )
    )
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
        total += row["cost_usd"] or 0
        table.add_row(
            *[str(row[f]) if row[f] is not None else "—" for f in fields],
            f"{row['requests']:,}",
            f"{row['input_tokens']:,}",
            f"{row['output_tokens']:,}",
            f"{row['cache_read_tokens']:,}",
            _usd(row["cost_usd"]),
            f"{row['errors']:,}",
            f"{row['unpriced_spans']:,}",
        )
    console.print(table)
    console.print(f"Total: {_usd(total)}")


@main.command()
@click.option("--since", default="1h", show_default=True, help="the window: a duration back from --until")
@click.option("--baseline", default="24h", show_default=True, help="the period just before the window")
@click.option("--until", default=None, help="the window's end (ISO 8601) [default: now]")
@click.option("--json", "as_json", is_flag=True, help="print the API's JSON answer")
@_server_option
@_key_option
def triage(
    since: str, baseline: str, until: str | None, as_json: bool, server: str | None, api_key: str | None
) -> None:
    """What changed: the window against its baseline, with the causes of a cost or latency move ranked."""
    result = _run(
        lambda: _client(server, api_key).get(
            "/api/v1/triage", {"since": since, "baseline": baseline, "until": until}
        )
    )
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    window, base = result["window"], result["baseline"]
    console.print(
        f"Window {since} vs the {baseline} before it: cost {_usd(base['cost_per_hour'])}/h → "
        f"{_usd(window['cost_per_hour'])}/h, requests {base['requests']:,} → {window['requests']:,}, "
        f"p95 {_ms(base['p95_latency_ms'])} → {_ms(window['p95_latency_ms'])}"
    )
    checks = Table("check", "before", "after", "change", title="The playbook's checks")
    for check in result["checks"]:
        if "before" in check:
            change = "" if check["change"] is None else f"{check['change']:+.0%}"
            checks.add_row(check["step"], _number(check["before"]), _number(check["after"]), change)
        elif "shift" in check and check.get("biggest_mover"):
            mover = check["biggest_mover"]
            checks.add_row(
                check["step"],
                f"{mover['value']} {mover['before']:.0%}",
                f"{mover['value']} {mover['after']:.0%}",
                f"shift {check['shift']:.0%}",
            )
    console.print(checks)
    for title, causes in (("Cost", result["causes"]), ("p95 latency", result["latency"]["causes"])):
        if not causes:
            console.print(f"{title}: no cause stands out.")
            continue
        console.print(f"[bold]{title}: causes, most likely first[/bold]")
        for rank, cause in enumerate(causes, 1):
            console.print(f" {rank}. {cause['evidence']}")
            if cause["example_trace_ids"]:
                console.print(f"    e.g. traces {', '.join(cause['example_trace_ids'])}")


@main.group()
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
@click.option("--json", "as_json", is_flag=True, help="print the API's JSON answer")
@_server_option
@_key_option
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
    result = _run(lambda: _client(server, api_key).post("/api/v1/sampling/simulate", body))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    table = Table("", "total", "kept", "share", title=f"Policy simulated on the traces since {since}")
    for name, label, fmt in (
        ("traces", "traces", "{:,}"),
        ("spans", "spans", "{:,}"),
        ("detail_bytes", "detail (bytes of attributes and content)", "{:,}"),
        ("error_traces", "traces with errors", "{:,}"),
        ("cost_usd", "cost in those traces", "${:,.4f}"),
    ):
        row = result[name]
        share = "—" if row["share"] is None else f"{row['share']:.1%}"
        table.add_row(label, fmt.format(row["total"]), fmt.format(row["kept"]), share)
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
@_server_option
@_key_option
def sampling_policy(set_path: Path | None, clear: bool, server: str | None, api_key: str | None) -> None:
    """Show (or set, or clear) the project's sampling policy."""
    client = _client(server, api_key)
    if set_path is not None:
        body = _policy_file(set_path)
        result = _run(lambda: client.put("/api/v1/sampling/policy", body))
    elif clear:
        result = _run(lambda: client.delete("/api/v1/sampling/policy"))
    else:
        result = _run(lambda: client.get("/api/v1/sampling/policy"))
    click.echo(json.dumps(result, indent=2))


@sampling.command("apply")
@_server_option
@_key_option
def sampling_apply(server: str | None, api_key: str | None) -> None:
    """Judge the project's due traces now (the server also does every --sampling-interval)."""
    result = _run(lambda: _client(server, api_key).post("/api/v1/sampling/apply"))
    click.echo(json.dumps(result, indent=2))


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.4g}"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


@main.command()
@click.option("--since", default="1h", show_default=True)
@click.option("--until", default=None)
@click.option("--user", default=None)
@click.option("--tenant", default=None)
@click.option("--session", default=None)
@click.option("--model", default=None)
@click.option("--status", default=None, type=click.Choice(["ok", "error", "unset"]))
@click.option("--min-cost", type=float, default=None)
@click.option("--limit", type=int, default=50, show_default=True)
@_server_option
@_key_option
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
    server: str | None,
    api_key: str | None,
) -> None:
    """Recent traces, newest first."""
    page = _run(
        lambda: _client(server, api_key).get(
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
    table = Table("start", "trace", "root", "spans", "ms", "tokens", "cost", "models", "user", "status")
    for t in page["traces"]:
        table.add_row(
            t["start_time"][:23],
            t["trace_id"],
            t["root_name"] or "",
            str(t["spans"]),
            f"{t['duration_ms']:,.0f}",
            f"{t['total_tokens'] or 0:,}",
            _usd(t["cost_usd"]),
            ", ".join(t["models"] or []),
            t["user_id"] or "",
            "[red]error[/red]" if t["status"] == "error" else "ok",
        )
    console.print(table)
    if page["has_more"]:
        console.print(f"(more than {limit}; use --limit or narrow the range)")


@main.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl", "parquet"]), default="jsonl", show_default=True)
@click.option("--since", default=None, help="default: everything")
@click.option("--until", default=None)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@_server_option
@_key_option
def export(
    fmt: str, since: str | None, until: str | None, output: Path, server: str | None, api_key: str | None
) -> None:
    """Export canonical spans to a file (JSON Lines or Parquet)."""
    client = _client(server, api_key)
    params = {"format": fmt, "since": since, "until": until}

    def download() -> int:
        size = 0
        with output.open("wb") as f:
            for chunk in client.stream("/api/v1/spans/export", params):
                f.write(chunk)
                size += len(chunk)
        return size

    size = _run(download)
    click.echo(f"wrote {size:,} bytes to {output}", err=True)


@main.command()
@click.option("--since", default="30d", show_default=True)
@click.option("--until", default=None)
@_server_option
@_key_option
def reprice(since: str, until: str | None, server: str | None, api_key: str | None) -> None:
    """Re-price stored spans with the current prices and overrides; report the difference."""
    report = _run(
        lambda: _client(server, api_key).post("/api/v1/reprice", params={"since": since, "until": until})
    )
    table = Table(
        "spans checked", "changed", "before", "after", "difference", "newly priced", "newly unpriced"
    )
    table.add_row(
        f"{report['spans_checked']:,}",
        f"{report['spans_changed']:,}",
        _usd(report["cost_before_usd"]),
        _usd(report["cost_after_usd"]),
        f"{report['difference_usd']:+,.4f}",
        str(report["newly_priced"]),
        str(report["newly_unpriced"]),
    )
    console.print(table)


@main.command()
@click.option(
    "--scenario",
    type=click.Choice(["retry-storm", "expensive-model", "tenant-loop", "cache-miss"]),
    default="retry-storm",
    show_default=True,
    help="the incident planted in the last 10 minutes",
)
@click.option("--requests", "request_count", type=int, default=600, show_default=True)
@click.option("--workers", type=int, default=32, show_default=True)
@click.option("--fast", is_flag=True, help="no simulated model latency (tests)")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--incident-minutes",
    type=click.FloatRange(0.1, 60),
    default=10,
    show_default=True,
    help="how long the incident lasts (its share of requests stays a seventh)",
)
@click.option("--serve", "serve_too", is_flag=True, help="also run `tokentrace serve` and keep it running")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=Path(".tokentrace"),
    show_default=True,
    help="with --serve",
)
@click.option("--port", type=int, default=4318, show_default=True, help="with --serve")
@_server_option
@_key_option
def demo(
    scenario: str,
    request_count: int,
    workers: int,
    fast: bool,
    seed: int,
    incident_minutes: float,
    serve_too: bool,
    data_dir: Path,
    port: int,
    server: str | None,
    api_key: str | None,
) -> None:
    """Send an hour of compressed traffic from a simulated SaaS, then plant an incident."""
    import subprocess
    import time

    import httpx

    from tokentrace.simulate.demo import run_demo
    from tokentrace.simulate.incidents import INCIDENTS

    server_process = None
    if serve_too:
        from importlib import resources

        server = f"http://127.0.0.1:{port}"
        files = resources.files("tokentrace.simulate")
        alerts, budgets = files.joinpath("demo_alerts.toml"), files.joinpath("demo_budgets.toml")
        server_process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tokentrace.cli",
                "serve",
                "--data-dir",
                str(data_dir),
                "--port",
                str(port),
                "--alerts",
                str(alerts),
                "--budgets",
                str(budgets),
            ]
        )
    url = ApiClient(server, api_key).server
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or (server_process and server_process.poll() is not None):
            raise click.ClickException(
                f"no tokentrace server answers at {url}; start one with `tokentrace serve`"
            )
        time.sleep(0.2)

    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        provider_port = s.getsockname()[1]
    click.echo(f"Sending {request_count} requests of simulated traffic to {url} ...", err=True)
    outcomes = run_demo(
        url,
        scenario=scenario,
        requests=request_count,
        workers=workers,
        realistic_latency=not fast,
        seed=seed,
        provider_port=provider_port,
        api_key=api_key,
        incident_minutes=incident_minutes,
    )
    for phase, counts in outcomes.items():
        detail = ", ".join(f"{name} {n}" for name, n in counts.most_common())
        click.echo(f"  {phase}: {sum(counts.values())} requests ({detail})")
    incident = INCIDENTS[scenario]
    minutes = f"{max(incident_minutes, 1):g}m"  # triage needs a window of a minute or more
    click.echo(f"\nIncident planted in the last {minutes} ({scenario}): {incident.story}")
    click.echo("Where to look:")
    click.echo(f"  tokentrace triage --since {minutes} --baseline 1h      (what changed, causes ranked)")
    for command in incident.where_to_look:
        click.echo(f"  {command}")
    click.echo(f"  {url}/api/v1/rollups?group_by=feature,prompt_version,request_model&bucket=5m&since=75m")
    if server_process is not None:
        click.echo(f"\ntokentrace is running at {url} (Ctrl-C to stop).")
        try:
            server_process.wait()
        except KeyboardInterrupt:
            server_process.terminate()
            server_process.wait(30)


_labels_option = click.option(
    "--metric-labels",
    default="request_model,provider,feature,prompt_template,tenant_id",
    show_default=True,
    help="the labels the server's /metrics has (its --metric-labels)",
)
_output_option = click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="file [default: stdout]",
)


def _write(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + "\n")
        click.echo(f"wrote {output}", err=True)


@main.command("prometheus-rules")
@click.option(
    "--alerts", "alerts_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True
)
@_labels_option
@_output_option
def prometheus_rules(alerts_file: Path, metric_labels: str, output: Path | None) -> None:
    """Write the TOML alert rules as Prometheus alerting rules (YAML) over /metrics."""
    import yaml

    from tokentrace.alerts import rules
    from tokentrace.metrics.alert_rules import rule_groups

    try:
        loaded = rules.load(alerts_file)
    except rules.RuleError as exc:
        raise click.ClickException(str(exc)) from exc
    document, skipped = rule_groups(loaded.rules, _labels(metric_labels))
    for reason in skipped:
        click.echo(f"left out: {reason}", err=True)
    _write(yaml.safe_dump(document, sort_keys=False, width=1000).rstrip(), output)


@main.command("grafana-dashboard")
@_labels_option
@_output_option
def grafana_dashboard(metric_labels: str, output: Path | None) -> None:
    """Write a Grafana dashboard (JSON) over /metrics: latency, cost, cache hits, errors, retries."""
    from tokentrace.metrics.grafana import dashboard

    _write(json.dumps(dashboard(_labels(metric_labels)), indent=2), output)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8787, show_default=True)
@click.option("--upstream", "upstreams", multiple=True, metavar="NAME=URL", help="openai=URL, anthropic=URL")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    default=None,
    help="TOML: upstreams with their keys, client keys with their tags",
)
@click.option(
    "--budgets",
    "budgets_file",
    type=click.Path(path_type=Path),
    default=None,
    help="TOML budgets ([[budgets]] tables)",
)
@click.option(
    "--redis", "redis_url", default=None, help="redis://… to share budget counters between gateways"
)
@click.option(
    "--admin-key",
    envvar="TOKENTRACE_PROXY_ADMIN_KEY",
    default=None,
    help="key that may change budgets over PUT /tokentrace/budgets",
)
def proxy(
    host: str,
    port: int,
    upstreams: tuple[str, ...],
    config_file: Path | None,
    budgets_file: Path | None,
    redis_url: str | None,
    admin_key: str | None,
) -> None:
    """Run the gateway: OpenAI- and Anthropic-compatible, every call traced, budgets enforced.

    Apps change only their base URL (http://HOST:PORT/v1 for OpenAI, http://HOST:PORT for
    Anthropic). Spans go to OTEL_EXPORTER_OTLP_ENDPOINT (default http://127.0.0.1:4318).
    """
    from tokentrace.budgets import BudgetError, load_policy
    from tokentrace.proxy.config import ConfigError, build_config

    try:
        from tokentrace.proxy.runner import serve as run_proxy
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("opentelemetry"):
            raise
        raise click.ClickException(f"the gateway needs `pip install tokentrace[proxy]` ({exc})") from exc

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        policy = load_policy(budgets_file) if budgets_file else None
        config = build_config(config_file, upstreams, policy, redis_url, admin_key)
    except (BudgetError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from exc
    run_proxy(config, host, port)


@main.group()
def simulate() -> None:
    """The simulated LLM provider for demos and tests."""


@simulate.command("provider")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8300, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="same seed, same answers")
@click.option("--realistic-latency", is_flag=True, help="pace answers like the real models (TTFT, TPOT)")
@click.option(
    "--short-ids", is_flag=True, help="chat completion ids repeat (chatcmpl-0..999), as Ollama's do"
)
def simulate_provider(host: str, port: int, seed: int, realistic_latency: bool, short_ids: bool) -> None:
    """Serve OpenAI- and Anthropic-compatible APIs with deterministic answers and usage.

    Point an SDK at it: OpenAI(base_url="http://HOST:PORT/v1"), Anthropic(base_url="http://HOST:PORT").
    Faults per request with the x-simulate header (error=429, fail_first=2, ttft_ms=800, ...).
    With tools, the model calls one until a tool result is in the conversation, then answers.
    GET /_simulate/ledger lists every answer given (ids, usage): the truth to check a trace against.
    """
    from tokentrace.simulate.provider import run

    run(host, port, seed, realistic_latency, short_ids)


if __name__ == "__main__":
    main()
