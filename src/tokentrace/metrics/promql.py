"""The PromQL twin of tokentrace.query.measures, over the metrics of tokentrace.metrics.exposition:
the same measure, window, filters and grouping as one PromQL expression (for Prometheus
alerting rules and Grafana panels)."""

from __future__ import annotations

from collections.abc import Mapping

from tokentrace.query import measures


class NoPromQL(ValueError):
    """A measure, filter or grouping that the exported metrics cannot express."""


# Series as (metric, fixed matchers); the caller's filters are added to each.
_REQUESTS = ("tokentrace_requests_total", "")
_ANSWERED = ("tokentrace_answered_total", "")
_COST = ("tokentrace_cost_usd_total", "")
_TOKENS = ("tokentrace_tokens_total", 'type=~"input|output"')
_INPUT = ("tokentrace_tokens_total", 'type="input"')
_RATIOS = {
    "error_rate": (("tokentrace_errors_total", ""), _REQUESTS),
    "cost_per_request": (_COST, _ANSWERED),
    "tokens_per_request": (_TOKENS, _ANSWERED),
    "input_tokens_per_request": (_INPUT, _ANSWERED),
    "cache_hit_rate": (("tokentrace_tokens_total", 'type="cache_read"'), _INPUT),
    "output_input_ratio": (("tokentrace_tokens_total", 'type="output"'), _INPUT),
    "truncation_rate": (("tokentrace_truncated_total", ""), _ANSWERED),
}
_TOTALS = {"requests": _REQUESTS, "cost_usd": _COST, "total_tokens": _TOKENS}
_HOURLY = {"requests_per_hour": _REQUESTS, "cost_per_hour": _COST, "tokens_per_hour": _TOKENS}
_HISTOGRAMS = {
    "latency_ms": "gen_ai_client_operation_duration_seconds_bucket",
    "ttft_ms": "gen_ai_server_time_to_first_token_seconds_bucket",
    "tpot_ms": "gen_ai_server_time_per_output_token_seconds_bucket",
}


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def matchers(
    where: Mapping[str, str], labels: tuple[str, ...], extra: Mapping[str, str] | None = None
) -> str:
    """`feature="refund-chat",project="default"` (every filtered field must be a metric label)."""
    missing = [k for k in where if k not in labels]
    if missing:
        raise NoPromQL(f"/metrics has no label {missing[0]!r}; add it with --metric-labels")
    pairs = {**dict(extra or {}), **dict(where)}
    return ",".join(f"{k}={_quote(v)}" for k, v in pairs.items())


def expression(
    measure: str,
    window: str,
    *,
    by: tuple[str, ...] = (),
    where: Mapping[str, str] | None = None,
    labels: tuple[str, ...] = (),
    offset: str | None = None,
    project: str | None = None,
) -> str:
    """PromQL for `measure` over `window` (e.g. "10m", "$__rate_interval"), summed by `by`."""
    measures.check(measure)
    missing = [g for g in by if g not in labels]
    if missing:
        raise NoPromQL(f"/metrics has no label {missing[0]!r} to group by; add it with --metric-labels")
    filters = matchers(where or {}, labels, {"project": project} if project else None)
    shift = f" offset {offset}" if offset else ""
    group = f" by ({', '.join(by)})" if by else ""

    def selector(metric: str, fixed: str) -> str:
        return f"{metric}{{{','.join(m for m in (fixed, filters) if m)}}}"

    def summed(series: tuple[str, str], function: str = "rate") -> str:
        return f"sum{group} ({function}({selector(*series)}[{window}]{shift}))"

    if measure in _TOTALS:
        return summed(_TOTALS[measure], "increase")
    if measure in _HOURLY:
        return f"{summed(_HOURLY[measure])} * 3600"
    if measure in _RATIOS:
        numerator, denominator = _RATIOS[measure]
        return f"{summed(numerator)} / {summed(denominator)}"
    if measure in measures.ERROR_RATES:
        errors = ("tokentrace_errors_total", f'error_type="{measures.ERROR_RATES[measure]}"')
        return f"{summed(errors)} / {summed(_REQUESTS)}"
    attempts = f"({summed(_REQUESTS)} + {summed(('tokentrace_sdk_resends_total', ''))})"
    if measure == "attempts_per_request":
        return f"{attempts} / {summed(_ANSWERED)}"
    if measure == "retry_rate":
        return f"{summed(('tokentrace_retries_total', ''))} / {attempts}"
    if measure in measures.LATENCY:
        q, _, unit = measure.partition("_")
        le = f" by (le, {', '.join(by)})" if by else " by (le)"
        rate = f"sum{le} (rate({selector(_HISTOGRAMS[unit], '')}[{window}]{shift}))"
        return f"histogram_quantile({int(q[1:]) / 100:g}, {rate}) * 1000"
    raise NoPromQL(f"{measure} has no Prometheus metric (it needs traces, which /metrics does not count)")
