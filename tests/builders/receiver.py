"""A real HTTP webhook receiver (alerts, budget warnings): records every JSON body it is sent."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """Listens on 127.0.0.1 on a free port; `failing = True` answers 503 (a receiver down)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.failing = False
        self.attempts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.attempts += 1
                if receiver.failing:
                    self.send_response(503)
                else:
                    receiver.bodies.append(body)
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def of(self, rule: str, status: str | None = None) -> list[dict[str, Any]]:
        return [b for b in self.bodies if b.get("rule") == rule and status in (None, b.get("status"))]

    def wait_for(self, rule: str, status: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := self.of(rule, status):
                return found[0]
            time.sleep(0.2)
        raise AssertionError(f"no {status} notification for {rule!r}; got {self.bodies}")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
