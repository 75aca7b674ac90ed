"""Real processes the tests start and stop: the server, the gateway, the simulated provider, the
demo; on free loopback ports."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx


def minute_with_room(seconds: float) -> None:
    """Sleep into the next minute when fewer than `seconds` are left of this one, for a test whose
    steps must all count in one per-minute budget window."""
    left = 60 - time.time() % 60
    if left < seconds:
        time.sleep(left + 0.05)


def day_with_room(seconds: float) -> None:
    """Sleep into the next UTC day when fewer than `seconds` are left of this one, for a test whose
    steps must all count in one per-day budget window (it reads the window's counter after)."""
    left = 86400 - time.time() % 86400
    if left < seconds:
        time.sleep(left + 0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> bool:
    """Poll `url`/healthz until it answers 200 (True), the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False


def stop_process(proc: subprocess.Popen | None) -> None:
    """SIGTERM, as a service manager stops it; SIGKILL if it is not gone in 20 s."""
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def without_pandas() -> dict[str, str]:
    """The environment of a server process: pandas unimportable, as where the server is installed
    without the tests' extras (pyarrow turns some values to pandas objects when it can import it)."""
    shadow = str(Path(__file__).parent / "without_pandas")
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{shadow}{os.pathsep}{path}" if path else shadow}


class ServerProcess:
    """`tokentrace serve` in a subprocess, with helpers to talk to it."""

    def __init__(self, data_dir: Path, *extra: str, file_size_limit: int | None = None) -> None:
        self.data_dir = data_dir
        # RLIMIT_FSIZE: no file the server writes may grow past this (a full disk, as the
        # server sees it: writes fail with EFBIG)
        self.file_size_limit = file_size_limit
        self.port = free_port()
        self.grpc_port = free_port()
        self.extra = extra
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"
        self.proc: subprocess.Popen | None = None
        self.ran = False  # it has been healthy once: its clients know its port now

    def start(self, timeout: float = 30) -> ServerProcess:
        # free_port() only finds a port free a moment ago: a server of another test worker may
        # take it first. A first start then moves to other ports; a restart keeps its own.
        for _ in range(3):
            logged = self.log_path.stat().st_size if self.log_path.exists() else 0
            self._launch()
            if wait_healthy(self.url, self.proc, timeout):
                self.ran = True
                return self
            taken = b"address already in use" in self.log_path.read_bytes()[logged:]
            if not taken or self.ran:
                break
            self.port, self.grpc_port = free_port(), free_port()
            self.url = f"http://127.0.0.1:{self.port}"
        raise RuntimeError(f"server did not become healthy (exit {self.proc.returncode}):\n{self.log()}")

    def _launch(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tokentrace.cli",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.port),
                "--grpc-port",
                str(self.grpc_port),
                *self.extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            # chDB (the tests' in-process ClickHouse) imports pandas for every Arrow result itself
            env=os.environ if any(a.startswith("chdb://") for a in self.extra) else without_pandas(),
            preexec_fn=self._limits if self.file_size_limit else None,
        )

    def _limits(self) -> None:
        # In the child before exec: the signal is ignored (as it stays after exec), so a write
        # past the limit fails with EFBIG instead of killing the process.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_size_limit, self.file_size_limit))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        stop_process(self.proc)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def get(self, path: str, key: str | None = None, **params: Any) -> Any:
        with self.client(key) as c:
            response = c.get(path, params=params)
            response.raise_for_status()
            return response.json()

    def post_traces(
        self,
        body: bytes,
        key: str | None = None,
        content_type: str = "application/x-protobuf",
        **headers: str,
    ) -> httpx.Response:
        with self.client(key) as c:
            return c.post("/v1/traces", content=body, headers={"Content-Type": content_type, **headers})

    def wait_for_spans(self, count: int, key: str | None = None, timeout: float = 20) -> dict[str, Any]:
        """Poll /api/v1/stats until `count` spans are queryable and nothing is pending."""
        deadline = time.monotonic() + timeout
        stats: dict[str, Any] = {}
        while time.monotonic() < deadline:
            stats = self.get("/api/v1/stats", key)
            if stats["spans"] >= count and stats["pending_spans"] == 0:
                return stats
            time.sleep(0.1)
        raise AssertionError(f"expected {count} spans, stats: {stats}\n{self.log()}")


def run_demo(server_url: str, scenario: str, *extra: str) -> str:
    """`tokentrace demo --fast` against a server (280 requests, 6 workers); its output."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tokentrace.cli",
            "demo",
            "--server",
            server_url,
            "--scenario",
            scenario,
            "--requests",
            "280",
            "--workers",
            "6",
            "--fast",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@contextlib.contextmanager
def simulated_provider(log_path: Path | None = None, *args: str) -> Iterator[str]:
    """The simulated LLM provider (`tokentrace simulate provider ARGS`) as its own process; yields its URL."""
    port = free_port()
    log = log_path.open("wb") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "tokentrace.cli", "simulate", "provider", "--port", str(port), *args],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_healthy(url, proc, 30):
            raise RuntimeError("simulated provider did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


class GatewayProcess:
    """`tokentrace proxy` in a subprocess, exporting its spans to `server_url`."""

    def __init__(self, workdir: Path, server_url: str, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"proxy-{self.port}.log"
        self.args = args
        self.server_url = server_url
        self.proc: subprocess.Popen | None = None

    def start(self) -> GatewayProcess:
        import os

        env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": self.server_url}
        for _ in range(3):  # another worker may take the free port first (as ServerProcess)
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tokentrace.cli", "proxy", "--port", str(self.port), *self.args],
                stdout=self.log_path.open("ab"),
                stderr=subprocess.STDOUT,
                env=env,
            )
            if wait_healthy(self.url, self.proc, 30):
                return self
            if "address already in use" not in self.log():
                break
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self.log_path = self.log_path.with_name(f"proxy-{self.port}.log")
        raise RuntimeError(f"gateway did not start (exit {self.proc.returncode}):\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        stop_process(self.proc)
