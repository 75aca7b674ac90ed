"""What the commands share: the --server and --api-key options, the API client, the console, formats."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console

from tokentrace.client import ApiClient, ApiError

# Piped output (files, CI logs) gets wide tables instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 160)

server_option = click.option(
    "--server", default=None, help="tokentrace URL [default: $TOKENTRACE_SERVER or http://127.0.0.1:4318]"
)
key_option = click.option("--api-key", default=None, help="project API key [default: $TOKENTRACE_API_KEY]")
json_option = click.option(
    "--json", "as_json", is_flag=True, help="print the API's JSON answer (for scripts)"
)


def echo_json(result: Any) -> None:
    """An API answer as indented JSON on stdout."""
    click.echo(json.dumps(result, indent=2))


def api_client(server: str | None, api_key: str | None) -> ApiClient:
    """The REST client for --server with --api-key (each falls back to its environment variable)."""
    return ApiClient(server, api_key)


def call_api(call):
    """Call the API; its errors end the command with their message."""
    try:
        return call()
    except ApiError as exc:
        raise click.ClickException(str(exc)) from exc
