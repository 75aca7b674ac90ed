"""Normalize decoded spans of any convention family into canonical rows.

A convention family is one module in this package exposing `PRIORITY` (lower is tried
first), `matches(span) -> bool` and `apply(span, row) -> None`. Families are found by
discovery, so adding one is adding its module. `base` fills the fields every span has
and `genai` is the fallback reading. `matches` must decide from the span's scope name and
attribute names only: the choice is cached per (scope, attribute names), which recur on
every span of an instrumentation, so the hot path does not ask each family each time.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import orjson

from tokentrace import semconv
from tokentrace.ingest import checks
from tokentrace.ingest.jsontext import dumps
from tokentrace.ingest.normalize.fields import base_row, complete, take
from tokentrace.ingest.raw import RawSpan, SpanRejected


def _discover() -> list[ModuleType]:
    modules = [importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__)]
    # A family module is one that can apply itself; helpers (base, vocab, attrmap) cannot.
    families = [module for module in modules if hasattr(module, "apply")]
    return sorted(families, key=lambda module: module.PRIORITY)


FAMILIES = _discover()
_CHOSEN: dict[tuple[str, tuple[str, ...]], ModuleType] = {}


def _family_for(span: RawSpan) -> ModuleType:
    key = (span.scope_name, tuple(span.attributes))
    family = _CHOSEN.get(key)
    if family is None:
        family = next(f for f in FAMILIES if f.matches(span))
        if len(_CHOSEN) >= 4096:
            _CHOSEN.clear()
        _CHOSEN[key] = family
    return family


@dataclass
class NormalizedBatch:
    """Canonical rows (attributes still dicts, so pricing can add to them), content rows and
    the scores of the ingest checks."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    content: list[dict[str, Any]] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def json_text(value: Any) -> str | None:
    """A content value as JSON text; JSON that arrived as a string is kept as sent."""
    if value is None:
        return None
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            orjson.loads(value)  # already JSON text: store it as sent
            return value
        except orjson.JSONDecodeError:
            pass
    return dumps(value)


def _content(span: RawSpan, row: dict[str, Any]) -> dict[str, Any] | None:
    attrs = span.attributes
    system = take(attrs, semconv.SYSTEM_INSTRUCTIONS)
    inputs = take(attrs, semconv.INPUT_MESSAGES)
    outputs = take(attrs, semconv.OUTPUT_MESSAGES)
    if system is None and inputs is None and outputs is None and not span.events:
        return None
    events = [
        {"name": e.name, "time_unix_nano": e.time_unix_nano, "attributes": e.attributes} for e in span.events
    ]
    return {
        "project_id": row["project_id"],
        "trace_id": row["trace_id"],
        "span_id": row["span_id"],
        "start_time": row["start_time"],
        "system_instructions": json_text(system),
        "input_messages": json_text(inputs),
        "output_messages": json_text(outputs),
        "events": json_text(events) if events else None,
    }


def normalize(spans: list[RawSpan], project_id: str) -> NormalizedBatch:
    """Normalize a decoded batch; an invalid span is rejected alone with its reason."""
    batch = NormalizedBatch()
    for span in spans:
        try:
            row = base_row(span, project_id)
            _family_for(span).apply(span, row)
            complete(row, span.attributes)
            content = _content(span, row)
        except SpanRejected as exc:
            batch.errors.append(f"span {span.span_id or '?'}: {exc}")
            continue
        attrs = span.attributes
        if span.scope_name:
            attrs["otel.scope.name"] = span.scope_name
            if span.scope_version:
                attrs["otel.scope.version"] = span.scope_version
        row["attributes"] = attrs
        row["resource"] = span.resource
        batch.rows.append(row)
        if content is not None:
            batch.content.append(content)
        batch.scores.extend(checks.check(row, attrs, content))
    return batch
