"""Where spans go, and one clear line when that is set up wrong.

The endpoint comes from `init(endpoint=...)`, then the OpenTelemetry variables, then the local
server. The mistakes people make with it each get a warning that names the fix, instead of the
exporter's "Connection refused" or a bare 404 or 401 a minute later: a URL without its scheme
(`localhost:4318`), a base URL that already ends in `/v1/traces`, nothing listening, a path that
takes no spans, and an API key the server refuses.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from urllib.parse import urlsplit

log = logging.getLogger("tokentrace")
DEFAULT_ENDPOINT = "http://127.0.0.1:4318"
_said: set[str] = set()


def _say(message: str) -> None:
    """Warn once: init works out the traces and the logs endpoints from the same setting."""
    if message not in _said:
        _said.add(message)
        log.warning(message)


def _with_scheme(url: str) -> str:
    """`localhost:4318` → `http://localhost:4318`, said once: without a scheme the exporter
    reads the host as one and fails with "Connection refused" though the server is up."""
    if "://" in url:
        return url
    fixed = f"http://{url}"
    _say(f"tokentrace: the endpoint {url!r} has no scheme; using {fixed} (write it with http:// or https://)")
    return fixed


def signal_endpoint(signal: str, endpoint: str | None) -> str:
    """Where to send `signal` (traces, logs): the OTel environment variables' rules, forgiving a
    base URL that already names a signal's path (said once)."""
    suffix = f"/v1/{signal}"
    specific = None if endpoint else os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
    if specific:
        return _with_scheme(specific)
    base = endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or DEFAULT_ENDPOINT
    base = _with_scheme(base).rstrip("/")
    for path in ("/v1/traces", "/v1/logs"):
        if base.endswith(path):
            base = base.removesuffix(path)
            if not endpoint:  # init(endpoint=…/v1/traces) has always meant the server's base
                _say(
                    "tokentrace: OTEL_EXPORTER_OTLP_ENDPOINT is a base URL (each signal's /v1/… path "
                    f"is added to it), so its {path} is left out (or set OTEL_EXPORTER_OTLP_TRACES_"
                    "ENDPOINT to a whole URL)"
                )
    return base + suffix


def _probe(endpoint: str, headers: Mapping[str, str]) -> str | None:
    """What is wrong at the endpoint, in one line, or None: an empty OTLP export (no spans)
    answers 2xx where spans would be taken."""
    request = urllib.request.Request(
        endpoint,
        data=b"",
        method="POST",
        headers={"Content-Type": "application/x-protobuf", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=3):
            return None
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return (
                f"the server at {endpoint} refused the API key ({exc.code}). Set TOKENTRACE_API_KEY "
                "(or init(api_key=...)) to a key of your project: `tokentrace projects create NAME` "
                "prints one"
            )
        if exc.code == 404:
            base = f"{urlsplit(endpoint).scheme}://{urlsplit(endpoint).netloc}"
            return (
                f"nothing takes spans at {endpoint} (404). The endpoint is the server's base URL "
                f"({base}), without a path"
            )
        return None  # busy (429, 503) or another backend's answer: the exporter retries
    except OSError:
        return None  # the connection itself was checked first


def answers(endpoint: str, timeout: float = 3) -> bool:
    """Whether something listens at the endpoint's host and port."""
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def warn_if_unreachable(endpoint: str, headers: Mapping[str, str] | None = None) -> None:
    """Warn once, clearly, when nothing listens at the endpoint, or what listens takes no spans
    there or refuses the key; in a thread, never blocking the app (the SDK's init and the
    gateway's start)."""

    def check() -> None:
        if not answers(endpoint):
            log.warning(
                "tokentrace: nothing answers at %s. Spans are kept in memory and retried for a "
                "while, then dropped. Start `tokentrace serve` or set OTEL_EXPORTER_OTLP_ENDPOINT.",
                endpoint,
            )
            return
        problem = _probe(endpoint, headers or {})
        if problem:
            log.warning("tokentrace: %s.", problem)

    threading.Thread(target=check, name="tokentrace-endpoint-check", daemon=True).start()
