"""The `serve` command: the server (OTLP in, REST API and UI out, background jobs)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from tokentrace.cli.values import interval, labels, megabytes


@click.command()
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
    help="TOML price overrides (custom models, discounts, self-hosted deployments by the hour)",
)
@click.option(
    "--evaluators",
    "evaluators_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="TOML evaluators (LLM judge, regex, JSON schema) that grade calls as they arrive",
)
@click.option("--evaluate-interval", default="5s", show_default=True, help="how often due evaluations run")
@click.option(
    "--amortize-interval",
    default="1m",
    show_default=True,
    help="how often the calls of self-hosted deployments get their share of the hour",
)
@click.option(
    "--max-body-mb",
    type=float,
    default=16,
    show_default=True,
    callback=megabytes,
    help="largest OTLP body, decompressed",
)
@click.option(
    "--max-pending-mb",
    type=float,
    default=256,
    show_default=True,
    callback=megabytes,
    help="memory for data acked but not yet stored; past it ingest answers 503 with Retry-After",
)
@click.option(
    "--max-inflight-mb",
    type=float,
    default=64,
    show_default=True,
    callback=megabytes,
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
@click.option(
    "--ingest-workers",
    type=click.IntRange(0, 64),
    default=None,
    help="processes that decode, normalize, price and redact exports, off the server process "
    "[default: one per core, up to 8; 0: the server process does it]",
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
    ingest_workers: int | None,
    require_key: bool,
    admin_token: str | None,
    alerts_file: Path | None,
    alert_interval: str,
    budgets_file: Path | None,
    sampling_file: Path | None,
    sampling_interval: str,
    retention: str | None,
    retention_interval: str,
    amortize_interval: str,
    evaluators_file: Path | None,
    evaluate_interval: str,
    metric_labels: str,
) -> None:
    """Run the server: OTLP in (HTTP and gRPC), REST API out, alerts, one DuckDB file."""
    from tokentrace.alerts.rules import RuleError
    from tokentrace.budgets import BudgetError
    from tokentrace.evals.config import EvaluatorsError
    from tokentrace.ingest.arrow_alone import keep_pyarrow_from_pandas
    from tokentrace.jobs.sampler import PolicyError
    from tokentrace.pricing.overrides import OverridesError
    from tokentrace.server.config import ServerConfig
    from tokentrace.server.runner import StartError
    from tokentrace.server.runner import serve as run_server

    keep_pyarrow_from_pandas()  # the server's first write would load it: ~1 s of CPU, ~40 MB
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request at INFO: a line per judge call and webhook (their failures are
    # the jobs' own log lines)
    logging.getLogger("httpx").setLevel(logging.WARNING)
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
        ingest_workers=ingest_workers,
        store_memory_mb=store_memory_mb,
        require_key=require_key,
        admin_token=admin_token,
        alerts_file=alerts_file,
        alert_interval_s=interval(alert_interval),
        budgets_file=budgets_file,
        sampling_file=sampling_file,
        sampling_interval_s=interval(sampling_interval, "--sampling-interval"),
        retention_s=interval(retention, "--retention") if retention else None,
        retention_interval_s=interval(retention_interval, "--retention-interval"),
        amortize_interval_s=interval(amortize_interval, "--amortize-interval"),
        evaluators_file=evaluators_file,
        evaluate_interval_s=interval(evaluate_interval, "--evaluate-interval"),
        metric_labels=labels(metric_labels),
    )
    try:
        run_server(config)
    except (OverridesError, RuleError, BudgetError, PolicyError, EvaluatorsError, StartError) as exc:
        raise click.ClickException(str(exc)) from exc
