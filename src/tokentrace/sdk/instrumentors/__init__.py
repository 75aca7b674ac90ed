"""Auto-instrumentation of LLM client SDKs, one module per SDK.

An SDK is instrumented when the app imports it (a post-import hook, as OpenTelemetry's
instrumentations do), or at once if it already has: `init()` then costs the app nothing for
the SDKs it never uses (importing openai and anthropic took ~2.7 s).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from types import ModuleType

import wrapt

log = logging.getLogger("tokentrace")


def _instrument(name: str) -> None:
    try:
        importlib.import_module(f"{__name__}.{name}_sdk").instrument()
    except Exception:  # an SDK release we cannot patch must not break the app's import of it
        log.exception("tokentrace: instrumenting the %s SDK failed; its calls are not recorded", name)


def instrument(names: tuple[str, ...]) -> list[str]:
    """Instrument each named SDK that is installed, when the app imports it (now, if it has);
    returns those installed."""
    found = []
    for name in names:
        if importlib.util.find_spec(name) is None:
            continue

        def hook(module: ModuleType, name: str = name) -> None:
            _instrument(name)

        wrapt.register_post_import_hook(hook, name)
        found.append(name)
    return found
