"""`tokentrace grafana-dashboard`: a Grafana dashboard over /metrics, its panels the PromQL twins
of the measures the API and alerts use."""

from __future__ import annotations

from typing import Any

from tokentrace.metrics.promql import expression

_WINDOW = "$__rate_interval"
#: (title, measure, group by, unit): one time-series panel each.
PANELS = (
    ("Cost per hour by feature", "cost_per_hour", ("feature",), "currencyUSD"),
    ("p95 latency by model", "p95_latency_ms", ("request_model",), "ms"),
    ("p95 time to first token by model", "p95_ttft_ms", ("request_model",), "ms"),
    ("Error rate by model", "error_rate", ("request_model",), "percentunit"),
    ("Rate-limited calls by model", "rate_limit_rate", ("request_model",), "percentunit"),
    ("Cache hit rate by model", "cache_hit_rate", ("request_model",), "percentunit"),
    ("Tokens per hour by model", "tokens_per_hour", ("request_model",), "short"),
    ("Attempts per answered call by feature", "attempts_per_request", ("feature",), "short"),
    ("Cost per answered call by feature", "cost_per_request", ("feature",), "currencyUSD"),
    ("Cost per hour by tenant", "cost_per_hour", ("tenant_id",), "currencyUSD"),
)


def dashboard(
    labels: tuple[str, ...], title: str = "tokentrace: LLM cost, latency and errors"
) -> dict[str, Any]:
    """The dashboard JSON (import it in Grafana; it asks for the Prometheus data source)."""
    panels = []
    for n, (name, measure, by, unit) in enumerate(p for p in PANELS if all(g in labels for g in p[2])):
        expr = expression(measure, _WINDOW, by=by, labels=labels, project="$project")
        panels.append(
            {
                "id": n + 1,
                "type": "timeseries",
                "title": name,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (n % 2), "y": 8 * (n // 2)},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
                "targets": [
                    {
                        "refId": "A",
                        "datasource": {"type": "prometheus", "uid": "${datasource}"},
                        "expr": expr,
                        "legendFormat": " ".join(f"{{{{{g}}}}}" for g in by),
                    }
                ],
            }
        )
    return {
        "title": title,
        "uid": "tokentrace-overview",
        "tags": ["tokentrace", "llm", "genai"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
                {
                    "name": "project",
                    "type": "query",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "query": "label_values(tokentrace_requests_total, project)",
                    "refresh": 2,
                    "current": {"text": "default", "value": "default"},
                },
            ]
        },
        "panels": panels,
    }
