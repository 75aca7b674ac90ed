"""The `tokentrace` command line: the `main` group, with one module per command group.

Each module defines its commands on their own; they join `main` here. A command imports the
server, the store or anything heavy only inside itself, so `tokentrace --help` stays quick.
"""

from __future__ import annotations

import click

from tokentrace.cli import (
    cost,
    gateway,
    metrics,
    projects,
    sampling,
    serve,
    sessions,
    simulate,
    traces,
    triage,
)


@click.group()
@click.version_option(package_name="tokentrace")
def main() -> None:
    """tokentrace: trace, count, price and explain every LLM call."""


for command in (
    serve.serve,
    gateway.proxy,
    projects.projects,
    cost.cost,
    cost.reprice,
    triage.triage,
    traces.traces,
    sessions.sessions,
    traces.export,
    sampling.sampling,
    metrics.prometheus_rules,
    metrics.grafana_dashboard,
    simulate.demo,
    simulate.simulate,
):
    main.add_command(command)
