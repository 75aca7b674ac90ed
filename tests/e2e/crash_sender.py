"""Send OTLP batches until told to stop, recording every acked span id (used by test_crash).

Usage: python -m tests.e2e.crash_sender URL ACKED_FILE STOP_FILE
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx

from tests.builders.otlp import chat, new_trace_id, protobuf, span


def main(url: str, acked_path: str, stop_path: str) -> None:
    stop = Path(stop_path)
    with open(acked_path, "a") as acked, httpx.Client(timeout=5) as client:
        while not stop.exists():
            spans = []
            for _ in range(50):
                trace_id = new_trace_id()
                root = span(trace_id, name="request", attributes={"tenant.id": "t1"})
                spans += [root, chat(trace_id, parent=root["span_id"], input_tokens=10, output_tokens=1)]
            try:
                response = client.post(
                    f"{url}/v1/traces",
                    content=protobuf(spans),
                    headers={"Content-Type": "application/x-protobuf"},
                )
            except httpx.TransportError:
                time.sleep(0.05)  # the server is down: this batch was never acked
                continue
            if response.status_code == 200:
                acked.write("".join(f"{s['trace_id']}{s['span_id']}\n" for s in spans))
                acked.flush()


if __name__ == "__main__":
    main(*sys.argv[1:4])
