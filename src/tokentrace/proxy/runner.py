"""`tokentrace proxy`: the gateway on uvicorn, its spans to the tokentrace server over OTLP."""

from __future__ import annotations

import logging
import os

import uvicorn

from tokentrace.proxy.app import Gateway
from tokentrace.proxy.config import ProxyConfig
from tokentrace.proxy.spans import SpanSink
from tokentrace.sdk.endpoint import signal_endpoint, warn_if_unreachable

log = logging.getLogger("tokentrace.proxy")


def serve(config: ProxyConfig, host: str, port: int) -> None:
    """Run the gateway until SIGINT/SIGTERM; pending spans are sent on the way out."""
    key = os.environ.get("TOKENTRACE_API_KEY")
    endpoint = signal_endpoint("traces", None)  # the OTel variables, else the local server
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    sink = SpanSink(endpoint, config.service_name, headers)
    gateway = Gateway(config, sink)
    warn_if_unreachable(endpoint, headers)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per call would cost more than the call
    log.info(
        "tokentrace proxy on http://%s:%d: %s; spans to %s; budgets: %d%s",
        host,
        port,
        ", ".join(f"{u.name}={u.url}" for u in config.upstreams.values()),
        endpoint,
        len(config.policy.budgets),
        f" (counters in Redis {config.redis_url})" if config.redis_url else " (counters in memory)",
    )
    try:
        uvicorn.run(
            gateway,
            host=host,
            port=port,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            access_log=False,
            log_level="warning",
            timeout_keep_alive=30,
            proxy_headers=False,  # the gateway never reads the client's address
        )
    finally:
        sink.shutdown()
