"""Auto-instrumentation of LLM client SDKs, one module per SDK."""

from __future__ import annotations

import importlib
import logging

log = logging.getLogger("tokentrace")


def instrument(names: tuple[str, ...]) -> list[str]:
    """Instrument each named SDK that is installed; returns those instrumented."""
    done = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        module = importlib.import_module(f"{__name__}.{name}_sdk")
        module.instrument()
        done.append(name)
    return done
