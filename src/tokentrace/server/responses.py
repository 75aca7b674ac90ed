"""JSON answers for the REST API (orjson: fast, and it knows datetimes)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:  # a dict keyed by other than text (OPT_NON_STR_KEYS is ~2x slower)
            return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSON:
    return JSON({"error": message}, status_code=status, headers=headers)
