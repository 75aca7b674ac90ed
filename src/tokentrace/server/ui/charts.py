"""Chart data for the pages: what charts.js hands to uPlot (epoch seconds and named series)."""

from __future__ import annotations

from typing import Any

from tokentrace.query.records import ns_of


def chart(
    name: str,
    times: list[str],
    series: dict[str, list[float | None]],
    unit: str = "",
    stacked: bool = False,
) -> dict[str, Any]:
    """One chart: x as epoch seconds, one line (or stacked area) per series."""
    return {
        "name": name,
        "unit": unit,
        "stacked": stacked,
        "x": [ns_of(t) / 1e9 for t in times],
        "series": [{"label": label, "values": values} for label, values in series.items()],
    }
