"""The `tokentrace` command line: the `main` group, with one module per command group.

Each module defines its commands on their own; `main` imports a command's module only when that
command runs (or `--help` lists them all), so `tokentrace serve` does not load what the client
commands need (rich's tables, the HTTP client: ~12 MB of a server's idle memory). A command
imports the server, the store or anything heavy only inside itself, so `tokentrace --help` stays
quick.
"""

from __future__ import annotations

import importlib

import click

#: Each command's name and where it is defined (`module:function` under tokentrace.cli).
COMMANDS = {
    "serve": "serve:serve",
    "proxy": "gateway:proxy",
    "projects": "projects:projects",
    "cost": "cost:cost",
    "reprice": "cost:reprice",
    "reconcile": "reconcile:reconcile",
    "triage": "triage:triage",
    "traces": "traces:traces",
    "sessions": "sessions:sessions",
    "export": "traces:export",
    "sampling": "sampling:sampling",
    "prometheus-rules": "metrics:prometheus_rules",
    "grafana-dashboard": "metrics:grafana_dashboard",
    "demo": "simulate:demo",
    "simulate": "simulate:simulate",
}


class _Commands(click.Group):
    """A group whose commands are imported when they are asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return None
        module, name = where.split(":")
        return getattr(importlib.import_module(f"tokentrace.cli.{module}"), name)


@click.group(cls=_Commands)
@click.version_option(package_name="tokentrace")
def main() -> None:
    """tokentrace: trace, count, price and explain every LLM call."""
