"""Attribute values as JSON text, whatever an exporter sent (huge ints, NaN, bytes)."""

from __future__ import annotations

from typing import Any

import orjson


def _sanitize(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _sanitize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_sanitize(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return str(value)
    return value


def dumps(value: Any) -> str:
    """JSON text; NaN and infinities become null, integers beyond 64 bits become strings."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return orjson.dumps(_sanitize(value)).decode()
