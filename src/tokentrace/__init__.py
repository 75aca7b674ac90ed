"""tokentrace: OpenTelemetry-native LLM observability.

`import tokentrace; tokentrace.init()` loads the SDK lazily, so the server and CLI never
import the OTel SDK they do not use.
"""

from __future__ import annotations

from typing import Any

_SDK = ("budget", "init", "context", "observe", "score", "flush", "shutdown", "redact_defaults")


def __getattr__(name: str) -> Any:
    if name in _SDK:
        from tokentrace import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'tokentrace' has no attribute {name!r}")
