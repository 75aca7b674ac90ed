"""`/cost`: cost, tokens and calls by any tag, as a stacked time series and a sortable table
whose rows drill down (filter by the row, group by the next tag); unpriced models listed, and
self-hosted deployments' hours, busy and idle."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.query import filters
from tokentrace.query.aggregates import collapse, rollup
from tokentrace.query.deployments import deployment_reports
from tokentrace.query.overview import timeline
from tokentrace.server.routing import BadParameter
from tokentrace.server.state import ServerState
from tokentrace.server.ui.charts import chart
from tokentrace.server.ui.render import params, render, span_params, ui_route

#: Tags the explorer groups by, in drill-down order.
DIMENSIONS = (
    ("feature", "Feature"),
    ("request_model", "Model"),
    ("tenant_id", "Tenant"),
    ("user_id", "User"),
    ("provider", "Provider"),
    ("prompt_template", "Prompt template"),
    ("prompt_version", "Prompt version"),
    ("agent_name", "Agent"),
    ("service_name", "Service"),
    ("environment", "Environment"),
)
METRICS = (("cost_usd", "Cost", "$"), ("total_tokens", "Tokens", ""), ("requests", "LLM calls", ""))
#: Sortable table columns: (rollup field, heading, format filter).
COLUMNS = (
    ("requests", "LLM calls", "count"),
    ("input_tokens", "Input tokens", "count"),
    ("output_tokens", "Output tokens", "count"),
    ("cache_read_tokens", "Cached tokens", "count"),
    ("total_tokens", "Total tokens", "count"),
    ("cost_usd", "Cost", "money"),
    ("share_of_cost", "Share of cost", "pct"),
    ("cost_per_request", "Cost / call", "money"),
    ("error_rate", "Error rate", "pct"),
)
STACKED = 7  # series drawn; the rest add up as "other"


def _choice(value: str, allowed: tuple[tuple[str, ...], ...], name: str) -> str:
    """`value` if it is the key of one of the `allowed` rows, else the 400 that lists them."""
    names = [row[0] for row in allowed]
    if value not in names:
        raise BadParameter(f"{name} must be one of: {', '.join(names)}")
    return value


def _series(
    rows: list[dict[str, Any]], by: str, metric: str, times: list[str], top: list[Any]
) -> dict[str, list[float]]:
    labels = {value: "(none)" if value is None else str(value) for value in top}
    series = {labels[v]: [0.0] * len(times) for v in top}
    index = {t: i for i, t in enumerate(times)}
    for row in rows:
        i = index.get(row["bucket"])
        if i is None:
            continue
        label = labels.get(row[by], "other")
        series.setdefault(label, [0.0] * len(times))[i] += row[metric]
    return series


@ui_route
def cost_page(request: Request, state: ServerState, project: str) -> Response:
    found = params(request)
    # group_by, as the API and the CLI's --json name it; `by` from links made before
    grouping = found.get("group_by") or found.get("by") or "feature"
    by = _choice(filters.canonical_field(grouping), DIMENSIONS, "group_by")
    metric = _choice(found.get("metric", "cost_usd"), METRICS, "metric")
    sort = _choice(found.get("sort", metric), COLUMNS, "sort")
    descending = found.get("dir", "desc") != "asc"
    f = filters.span_filter(project, span_params(found))
    f, step, times = timeline(f)
    bucketed = rollup(state.store, f, (by,), step, distinct=False)
    table = collapse(bucketed, (by,))
    table.sort(key=lambda r: (r[sort] is None, -(r[sort] or 0) if descending else (r[sort] or 0)))
    top = [r[by] for r in sorted(table, key=lambda r: -r[metric])[:STACKED]]
    title, unit = next((t, u) for m, t, u in METRICS if m == metric)
    plot = chart(f"{title} by {by}", times, _series(bucketed, by, metric, times, top), unit, stacked=True)
    without_price = replace(f, equals={**f.equals, "cost_known": False})
    unpriced = [
        r
        for r in rollup(state.store, without_price, ("provider", "request_model"), distinct=False)
        if r["request_model"] is not None
    ]
    filtered = {d: found[d] for d, _ in DIMENSIONS if d in found}
    next_by = next((d for d, _ in DIMENSIONS if d != by and d not in filtered), None)
    context = {
        "project": project,
        "by": by,
        "by_label": dict(DIMENSIONS)[by],
        "metric": metric,
        "sort": sort,
        "descending": descending,
        "rows": table,
        "chart": plot,
        "unpriced": unpriced,
        "filtered": filtered,
        "next_by": next_by,
        "dimensions": DIMENSIONS,
        "metrics": METRICS,
        "columns": COLUMNS,
        "totals": collapse(bucketed)[0],
        "deployments": deployment_reports(
            state.store, state.prices.overrides.deployments, f.since, f.until, datetime.now(UTC)
        ),
    }
    return render(request, "cost.html", context)


routes = [Route("/cost", cost_page)]
