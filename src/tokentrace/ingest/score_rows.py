"""Scores as they arrive (the REST API, evaluation events): validated into score rows.

A score is named, attached to a trace (and optionally one of its spans) or to a session (and
optionally the trace of it it was given at), and is numeric, boolean or categorical. An invalid
score is rejected alone with a reason; the rest of its request is kept.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

from tokentrace.canonical import SCORE_DATA_TYPES
from tokentrace.ingest.normalize.fields import check_id
from tokentrace.ingest.raw import SpanRejected

MAX_NAME = 200
MAX_COMMENT = 10_000
MAX_ID = 200
MAX_LABEL = 500
MAX_SESSION = 200


class ScoreRejected(SpanRejected):
    """One score is invalid; it is rejected alone."""


def _hex_id(value: Any, length: int, what: str, optional: bool = False) -> str:
    if optional and value is None:
        return ""
    if not isinstance(value, str):
        raise ScoreRejected(f"{what} must be {length} hex digits")
    return check_id(value.lower(), length, what, allow_empty=optional)


def _typed(value: Any, data_type: str | None) -> tuple[str, float | None, str | None]:
    """(data_type, numeric value, label) of a score value, checked against its declared type."""
    if data_type is not None and data_type not in SCORE_DATA_TYPES:
        raise ScoreRejected(f"data_type must be one of {', '.join(SCORE_DATA_TYPES)}, got {data_type!r}")
    if not isinstance(value, bool | int | float | str):
        raise ScoreRejected(
            f"a score value must be a number, true/false or a label, got {type(value).__name__}"
        )
    if isinstance(value, bool) or data_type == "boolean":
        truth = {"true": True, "false": False, "1": True, "0": False}.get(
            str(value).lower() if not isinstance(value, float) or value.is_integer() else "",
        )
        if isinstance(value, float):
            truth = {1.0: True, 0.0: False}.get(value)
        if truth is None or data_type not in (None, "boolean"):
            raise ScoreRejected(f"a boolean score takes true or false (or 1/0), got {value!r}")
        return "boolean", float(truth), "true" if truth else "false"
    if isinstance(value, int | float):
        number = float(value)
        if not math.isfinite(number):
            raise ScoreRejected(f"a score value must be a finite number, got {value!r}")
        if data_type == "categorical":
            return "categorical", number, str(value)
        return "numeric", number, None
    if data_type == "numeric":
        raise ScoreRejected(f"a numeric score takes a number, got {value!r}")
    if not value or len(value) > MAX_LABEL:
        raise ScoreRejected(f"a categorical label must be 1 to {MAX_LABEL} characters")
    return "categorical", None, value


def score_row(
    project_id: str,
    *,
    trace_id: Any,
    name: Any,
    value: Any,
    span_id: Any = None,
    data_type: str | None = None,
    label: str | None = None,
    comment: Any = None,
    score_id: Any = None,
    source: str = "api",
    created_at_ns: int | None = None,
    session_id: Any = None,
) -> dict[str, Any]:
    """One validated score row; ScoreRejected says what is wrong. A session's score needs no
    trace (its trace_id is then '')."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise ScoreRejected(f"name must be a non-empty string of at most {MAX_NAME} characters")
    if value is None and label is not None:
        value, data_type = label, data_type or "categorical"
    kind, number, text = _typed(value, data_type)
    if label is not None and kind == "numeric":
        text = label  # an evaluator's number with its verdict ("0.9", "relevant")
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT):
        raise ScoreRejected(f"comment must be a string of at most {MAX_COMMENT} characters")
    if score_id is None:
        score_id = uuid.uuid4().hex
    elif not isinstance(score_id, str) or not score_id or len(score_id) > MAX_ID:
        raise ScoreRejected(f"id must be a string of 1 to {MAX_ID} characters")
    if session_id is not None and (
        not isinstance(session_id, str) or not session_id or len(session_id) > MAX_SESSION
    ):
        raise ScoreRejected(f"session_id must be a string of 1 to {MAX_SESSION} characters")
    if trace_id is None and session_id is None:
        raise ScoreRejected("a score needs a trace_id (or a session_id)")
    trace = _hex_id(trace_id, 32, "trace_id", optional=session_id is not None)
    if not trace and span_id is not None:
        raise ScoreRejected("a span's score needs its trace_id")
    return {
        "project_id": project_id,
        "score_id": score_id,
        "trace_id": trace,
        "span_id": _hex_id(span_id, 16, "span_id", optional=True),
        "name": name.strip(),
        "data_type": kind,
        "value": number,
        "string_value": text,
        "comment": comment,
        "source": source,
        "created_at": created_at_ns or time.time_ns(),
        "session_id": session_id,
    }


def from_request(project_id: str, payload: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """Scores of a POST /api/v1/scores body (one object or a list): (rows, errors by index)."""
    items = payload if isinstance(payload, list) else [payload]
    rows, errors = [], []
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise ScoreRejected("each score must be a JSON object")
            unknown = set(item) - {
                "id", "trace_id", "span_id", "session_id", "name", "value", "data_type", "comment"
            }  # fmt: skip
            if unknown:
                raise ScoreRejected(f"unknown fields: {', '.join(sorted(unknown))}")
            if "value" not in item:
                raise ScoreRejected("value is required")
            rows.append(
                score_row(
                    project_id,
                    trace_id=item.get("trace_id"),
                    span_id=item.get("span_id"),
                    name=item.get("name"),
                    value=item["value"],
                    data_type=item.get("data_type"),
                    comment=item.get("comment"),
                    score_id=item.get("id"),
                    session_id=item.get("session_id"),
                )
            )
        except SpanRejected as exc:  # ScoreRejected, or a bad id
            errors.append(f"score {index}: {exc}")
    return rows, errors
