"""What a read covers: spans by project, time and canonical fields; traces by their totals and
scores. Field names are checked against the canonical span here, before they reach SQL."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tokentrace.canonical import DERIVED_FIELDS, FIELD_NAMES


@dataclass(frozen=True)
class SpanFilter:
    """Which spans a read covers. Every read is scoped by project."""

    project_id: str
    since: datetime | None = None  # inclusive, UTC
    until: datetime | None = None  # exclusive, UTC
    equals: Mapping[str, Any] = field(default_factory=dict)  # canonical field → value (a tuple: one of them)
    name_contains: str | None = None

    def __post_init__(self) -> None:
        unknown = set(self.equals) - set(FIELD_NAMES) - DERIVED_FIELDS
        if unknown:
            raise ValueError(f"not canonical fields: {sorted(unknown)}")


SCORE_OPERATORS = ("=", "!=", "<", "<=", ">", ">=")


_SCORE_TEXT = re.compile(r"^\s*(?P<name>[^<>=!]+?)\s*(?P<op>!=|<=|>=|=|<|>)\s*(?P<value>.+?)\s*$")


@dataclass(frozen=True)
class ScoreCondition:
    """A trace qualifies when it has a score `name` whose value satisfies `op value`.

    A numeric value compares with numeric and boolean scores (true is 1); a text value
    matches a categorical label (or "true"/"false")."""

    name: str
    op: str
    value: float | str

    @property
    def column(self) -> str:
        """The score column the condition compares: the label for text, else the value."""
        return "string_value" if isinstance(self.value, str) else "value"

    def __post_init__(self) -> None:
        if self.op not in SCORE_OPERATORS:
            raise ValueError(f"score operator must be one of {SCORE_OPERATORS}, got {self.op!r}")
        if isinstance(self.value, str) and self.op not in ("=", "!="):
            raise ValueError("a text score value can only be compared with = or !=")

    @classmethod
    def parse(cls, text: str) -> ScoreCondition:
        """`helpful=0`, `quality>=0.8`, `verdict!=bad`, `refusal=true` → a ScoreCondition;
        ValueError says what is wrong with any other text."""
        match = _SCORE_TEXT.match(text)
        if not match:
            raise ValueError(f"score filter {text!r} must look like name=value, name<0.5 or name!=label")
        raw = match["value"]
        value: float | str
        if raw.lower() in ("true", "false"):
            value = 1.0 if raw.lower() == "true" else 0.0
        else:
            try:
                value = float(raw)
            except ValueError:
                value = raw
            if isinstance(value, float) and not math.isfinite(value):
                value = raw  # "nan" or "inf" is a label: no score compares to the float
        return cls(match["name"], match["op"], value)


@dataclass(frozen=True)
class TraceFilter:
    """Trace-list filters: a trace qualifies when its spans match `spans` and its totals pass."""

    spans: SpanFilter
    min_cost_usd: float | None = None
    min_duration_ms: float | None = None
    errors_only: bool = False
    scores: tuple[ScoreCondition, ...] = ()
