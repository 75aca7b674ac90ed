"""The `proxy` command: the gateway that traces every LLM call and enforces budgets."""

from __future__ import annotations

import logging
from pathlib import Path

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8787, show_default=True)
@click.option(
    "--upstream",
    "upstreams",
    multiple=True,
    metavar="NAME=URL",
    help="openai=URL, anthropic=URL (with or without /v1)",
)
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
