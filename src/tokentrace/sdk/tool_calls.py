"""What a tool step was called with and returned, as the GenAI conventions record it:
`gen_ai.tool.call.arguments` (a JSON object of the function's arguments by name) and
`gen_ai.tool.call.result`, put on an `@observe(kind="tool")` span when content capture is on
(redacted and capped like messages). The trace page shows them, and an agent's loop is told
apart from honest repetition by them (a tool run again and again with the same arguments).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import Any

import orjson

from tokentrace.sdk import content

log = logging.getLogger("tokentrace.sdk")

ARGUMENTS = "gen_ai.tool.call.arguments"
RESULT = "gen_ai.tool.call.result"
_RECEIVERS = ("self", "cls")


def _json(value: Any) -> str:
    text = (
        value
        if isinstance(value, str)
        else orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    )
    return content.clean(text)


def arguments(span: Any, signature: inspect.Signature | None, args: tuple, kwargs: Mapping[str, Any]) -> None:
    """Put the call's arguments (by name, the method's receiver left out) on its span; nothing
    unless capture is on, or when they cannot be read."""
    if not content.capturing():
        return
    try:
        if signature is None:
            named: dict[str, Any] = {"args": list(args), **kwargs}
        else:
            named = dict(signature.bind_partial(*args, **kwargs).arguments)
            for receiver in _RECEIVERS:
                named.pop(receiver, None)
        span.set_attribute(ARGUMENTS, _json(named))
    except Exception:  # a signature that does not bind, a value orjson refuses: not recorded
        log.debug("tool arguments not recorded", exc_info=True)


def result(span: Any, returned: Any) -> None:
    """Put what the tool returned on its span; nothing unless capture is on (None is recorded
    as nothing)."""
    if not content.capturing() or returned is None:
        return
    try:
        span.set_attribute(RESULT, _json(returned))
    except Exception:
        log.debug("tool result not recorded", exc_info=True)


def signature_of(func: Any) -> inspect.Signature | None:
    """The function's signature, to name its arguments; None for one that has none to read."""
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):
        return None
