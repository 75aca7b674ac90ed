"""The simulated world: `demo` (traffic with a planted incident) and `simulate provider`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tokentrace.cli.options import key_option, server_option
from tokentrace.client import DEFAULT_SERVER, ApiClient
from tokentrace.simulate.incidents import INCIDENTS


@click.command()
@click.option(
    "--scenario",
    type=click.Choice(list(INCIDENTS)),
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
@click.option("--grpc-port", type=int, default=4317, show_default=True, help="with --serve (0: no gRPC)")
@server_option
@key_option
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
    grpc_port: int,
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

        from tokentrace.simulate.demo import demo_evaluators, start_provider

        server = f"http://127.0.0.1:{port}"
        files = resources.files("tokentrace.simulate")
        alerts, budgets = files.joinpath("demo_alerts.toml"), files.joinpath("demo_budgets.toml")
        # The evaluators' judge: a simulated model of its own, in this process while it waits on
        # the server (the traffic's provider stops when the traffic does).
        judge_port = _free_port()
        start_provider(judge_port, seed, realistic_latency=False)
        evaluators = demo_evaluators(data_dir, f"http://127.0.0.1:{judge_port}/v1")
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
                "--grpc-port",
                str(grpc_port),
                "--alerts",
                str(alerts),
                "--budgets",
                str(budgets),
                "--evaluators",
                str(evaluators),
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

    provider_port = _free_port()
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
    # the commands name this server unless it is the one they reach by default
    target = "" if url == DEFAULT_SERVER else f" --server {url}"
    triage = f"tokentrace triage --since {minutes} --baseline 1h{target}"
    click.echo(f"  {triage}      (what changed, causes ranked)")
    for command in incident.where_to_look:
        if command.startswith("tokentrace "):
            click.echo(f"  {command}{target}")
        else:
            click.echo(f"  {url}{command}" if command.startswith("/") else f"  {command}")
    click.echo(f"  {url}/api/v1/rollups?group_by=feature,prompt_version,request_model&bucket=5m&since=75m")
    click.echo("Open:")
    click.echo(f"  {url}/?since=1h      (the overview: the incident at the right edge; spend per hour now)")
    click.echo(f"  {url}/?since={minutes}      (top movers: the incident window against the one before)")
    trace = _costliest_incident_trace(ApiClient(server, api_key), minutes)
    if trace:
        click.echo(f"  {url}/traces/{trace}      (a trace of the first cause: its costliest, or slowest)")
    if server_process is not None:
        click.echo(f"  {url}/quality?since=1h      (the evaluators' scores by prompt version, as they grade)")
        click.echo(f"\ntokentrace is running at {url} (Ctrl-C to stop).")
        try:
            server_process.wait()
        except KeyboardInterrupt:
            server_process.terminate()
            server_process.wait(30)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _costliest_incident_trace(client: ApiClient, minutes: str) -> str | None:
    """The first cause's costliest trace, once the server has stored what the demo sent."""
    import time

    from tokentrace.client import ApiError

    try:
        deadline = time.monotonic() + 30
        while client.get("/api/v1/stats")["pending_spans"] and time.monotonic() < deadline:
            time.sleep(0.5)
        found = client.get("/api/v1/triage", {"since": minutes, "baseline": "1h"})
    except (ApiError, OSError):  # the links above still hold; this one is a shortcut
        return None
    causes = found["causes"] or found["latency"]["causes"]  # a slow incident has no cost cause
    return next((c["example_trace_ids"][0] for c in causes if c["example_trace_ids"]), None)


@click.group()
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
