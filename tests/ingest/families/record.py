"""Record what a convention family exports, as fixture files for tests/ingest/test_families.py.

    .venv/bin/python -m tests.ingest.families.record FAMILY [FAMILY ...]   (or: make fixtures)

For each family it starts the simulated provider and a small OTLP sink, runs families/app.py in
the family's venv against them, and writes tests/ingest/fixtures/FAMILY/: every OTLP/HTTP
request body as sent (decompressed), numbered in arrival order, and facts.json (the provider's
answers). A library release that changes its attributes then shows up as a failing fixture
test after re-recording, instead of as silent zeros in production.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.ingest.families import FIXTURES, family_python, run_app, simulated_provider


class _Sink(BaseHTTPRequestHandler):
    bodies: list[tuple[str, bytes, str]]
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        with self.lock:
            self.bodies.append((self.path, body, self.headers.get("Content-Type") or ""))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def capture(run: Callable[[str, str], str], out: Path, *provider_args: str) -> Path:
    """Run `run(provider_url, otlp_url)` against a fresh simulated provider and an OTLP sink;
    write what was exported (traces and logs, in arrival order) and the facts it returned to `out`."""
    sink_class = type("Sink", (_Sink,), {"bodies": []})
    sink = ThreadingHTTPServer(("127.0.0.1", 0), sink_class)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    try:
        with simulated_provider(None, *provider_args) as provider:
            facts = run(provider, f"http://127.0.0.1:{sink.server_address[1]}")
    finally:
        sink.shutdown()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for number, (path, body, content_type) in enumerate(sink_class.bodies):
        signal = "logs" if path.endswith("/logs") else "metrics" if path.endswith("/metrics") else "traces"
        if signal == "metrics":
            continue
        suffix = "json" if "json" in content_type else "pb"
        (out / f"{number:03d}-{signal}.{suffix}").write_bytes(body)
    (out / "facts.json").write_text(facts + "\n")
    return out


def record(family: str) -> Path:
    return capture(lambda provider, otlp: run_app(family, provider, otlp), FIXTURES / family)


def main(families: list[str]) -> None:
    for family in families:
        if not family_python(family).exists():
            sys.exit(f"{family}: no venv; run `make family-venvs` first")
        print(f"{family}: {record(family)}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except subprocess.CalledProcessError as exc:
        sys.exit(f"the app failed:\n{exc.stderr}")
