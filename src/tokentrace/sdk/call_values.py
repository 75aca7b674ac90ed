"""What an observed step was called with (a JSON object of its arguments by name) and what it
returned, put on its span when content capture is on (redacted and capped like messages). A
tool's go where the GenAI conventions say, `gen_ai.tool.call.arguments` and
`gen_ai.tool.call.result`: an agent's loop is told apart from honest repetition by them (a tool
run again and again with the same arguments). Any other step's (a plain function, an agent)
go in `input.value` and `output.value`, the generic names OpenInference gives a chain's, as
Langfuse's and Phoenix's decorators record them. The trace page shows both.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import Any

import orjson

from tokentrace.sdk import content

log = logging.getLogger("tokentrace.sdk")

TOOL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_RESULT = "gen_ai.tool.call.result"
INPUT = "input.value"
OUTPUT = "output.value"
_RECEIVERS = ("self", "cls")


def _json(value: Any) -> str:
    text = (
        value
        if isinstance(value, str)
        else orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    )
    return content.clean(text)


def arguments(
    span: Any, key: str, signature: inspect.Signature | None, args: tuple, kwargs: Mapping[str, Any]
) -> None:
    """Put the call's arguments (by name, the method's receiver left out) on its span as `key`;
    nothing unless capture is on, or when they cannot be read."""
    if not content.capturing():
        return
    try:
        if signature is None:
            named: dict[str, Any] = {"args": list(args), **kwargs}
        else:
            named = dict(signature.bind_partial(*args, **kwargs).arguments)
            for receiver in _RECEIVERS:
                named.pop(receiver, None)
        span.set_attribute(key, _json(named))
    except Exception:  # a signature that does not bind, a value orjson refuses: not recorded
        log.debug("step arguments not recorded", exc_info=True)


def result(span: Any, key: str, returned: Any) -> None:
    """Put what the step returned on its span as `key`; nothing unless capture is on (None is
    recorded as nothing)."""
    if not content.capturing() or returned is None:
        return
    try:
        span.set_attribute(key, _json(returned))
    except Exception:
        log.debug("step result not recorded", exc_info=True)


def signature_of(func: Any) -> inspect.Signature | None:
    """The function's signature, to name its arguments; None for one that has none to read."""
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):
        return None
