"""Monitoring config over /metrics: `prometheus-rules` (from the alert rules) and `grafana-dashboard`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tokentrace.cli.values import labels

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


@click.command("prometheus-rules")
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
    document, skipped = rule_groups(loaded.rules, labels(metric_labels))
    for reason in skipped:
        click.echo(f"left out: {reason}", err=True)
    _write(yaml.safe_dump(document, sort_keys=False, width=1000).rstrip(), output)


@click.command("grafana-dashboard")
@_labels_option
@_output_option
def grafana_dashboard(metric_labels: str, output: Path | None) -> None:
    """Write a Grafana dashboard (JSON) over /metrics: latency, cost, cache hits, errors, retries."""
    from tokentrace.metrics.grafana import dashboard

    _write(json.dumps(dashboard(labels(metric_labels)), indent=2), output)
