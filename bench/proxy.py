"""Gateway overhead: latency added (p50, p99) and CPU per request, tokentrace proxy vs LiteLLM.

Starts the simulated provider (no pacing: sub-millisecond answers), a tokentrace server (the
gateway's spans go there), `tokentrace proxy`, and the LiteLLM proxy from its own venv
(.bench-venvs/litellm, `make bench-proxy` makes it) configured with the same model routed to
the same provider. Then offers open-loop load (requests sent on a fixed schedule, whatever the
answers do) at each rate, for each target in turn: the provider directly, through tokentrace,
through LiteLLM, and (target `bare`) through bench/bare_proxy.py, the same server and client
stack as the gateway doing nothing but pass bytes: the floor under any gateway built on it.
Non-streamed chat completions, then streamed ones. The load generator is a minimal HTTP/1.1
client on keep-alive connections, so its own cost stays small.

    .venv/bin/python bench/proxy.py [--rates 100,250,500] [--seconds 10] [--stream-rate 100]
        [--targets direct,bare,tokentrace,litellm] [--repeat 1]

"Added" is the target's latency minus the direct latency at the same rate and percentile;
"CPU/req" is the gateway process's CPU time (user + system) over the requests it served.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
LITELLM = ROOT / ".bench-venvs/litellm/bin/litellm"
BODY = (
    b'{"model":"gpt-4o-mini","max_tokens":64,"messages":[{"role":"system","content":"You are a support '
    b'assistant."},{"role":"user","content":"Where is my refund for order 1234? It has been two weeks."}]}'
)
STREAM_BODY = BODY[:-1] + b',"stream":true}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list[str], url: str, env: dict | None = None, log: Path | None = None) -> subprocess.Popen:
    out = log.open("wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"{args[0:4]} exited: see {log}")
        time.sleep(0.2)
    raise SystemExit(f"{args[0:4]} did not start")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the load generator ------------------------------------------------------------------
class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def request(self, head: bytes, body: bytes) -> int:
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length, chunked = None, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await self.reader.readexactly(length)
        return status


async def offer(url: str, path: str, body: bytes, rate: float, seconds: float) -> list[float]:
    """Send `rate` requests a second for `seconds` (open loop); each one's latency in ms."""
    host, port = url.removeprefix("http://").split(":")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer sk-bench\r\nx-tokentrace-tenant: bench\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    idle: list[Connection] = []
    latencies: list[float] = []
    errors = 0

    async def one() -> None:
        nonlocal errors
        started = time.perf_counter()
        try:
            conn = idle.pop() if idle else Connection(*await asyncio.open_connection(host, int(port)))
            status = await conn.request(head, body)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            errors += 1  # an overloaded target dropped the connection
            return
        latencies.append((time.perf_counter() - started) * 1000)
        if status != 200:
            errors += 1
        idle.append(conn)

    tasks = []
    begin = time.perf_counter()
    total = int(rate * seconds)
    for i in range(total):
        delay = begin + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one()))
    await asyncio.gather(*tasks)
    for conn in idle:
        conn.writer.close()
    if errors:
        print(f"  {url}: {errors} of {total} requests failed", file=sys.stderr)
    return latencies


def settle(pid: int, quiet_s: float = 2.0, limit_s: float = 180.0) -> None:
    """Wait until the process stops using CPU (its backlog worked off), at most `limit_s`."""
    deadline = time.monotonic() + limit_s
    last = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = cpu_seconds(pid)
        if now - last < 0.05 * quiet_s:
            return
        last = now


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="100,250,500")
    parser.add_argument("--stream-rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--targets", default="direct,bare,tokentrace,litellm", help="which to measure")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per row; the median run (by p99) is shown"
    )
    args = parser.parse_args()
    wanted = set(args.targets.split(","))
    rates = [float(r) for r in args.rates.split(",")]
    work = Path(tempfile.mkdtemp(prefix="tt-bench-proxy-"))
    py = sys.executable
    procs = []
    try:
        provider = f"http://127.0.0.1:{free_port()}"
        procs.append(
            start(
                [py, "-m", "tokentrace.cli", "simulate", "provider", "--port", provider.rsplit(":", 1)[1]],
                provider + "/healthz",
                log=work / "provider.log",
            )
        )
        server = f"http://127.0.0.1:{free_port()}"
        procs.append(
            start(
                [
                    py,
                    "-m",
                    "tokentrace.cli",
                    "serve",
                    "--data-dir",
                    str(work / "data"),
                    "--port",
                    server.rsplit(":", 1)[1],
                    "--grpc-port",
                    "0",
                ],
                server + "/healthz",
                log=work / "server.log",
            )
        )
        gateway = f"http://127.0.0.1:{free_port()}"
        tokentrace_proc = start(
            [
                py,
                "-m",
                "tokentrace.cli",
                "proxy",
                "--port",
                gateway.rsplit(":", 1)[1],
                "--upstream",
                f"openai={provider}",
            ],
            gateway + "/healthz",
            env={"OTEL_EXPORTER_OTLP_ENDPOINT": server},
            log=work / "proxy.log",
        )
        procs.append(tokentrace_proc)
        targets = [("direct", provider, None), ("tokentrace", gateway, tokentrace_proc)]
        if "bare" in wanted:
            bare = f"http://127.0.0.1:{free_port()}"
            bare_proc = start(
                [py, str(ROOT / "bench/bare_proxy.py"), provider, bare.rsplit(":", 1)[1]],
                bare + "/healthz",
                log=work / "bare.log",
            )
            procs.append(bare_proc)
            targets.insert(1, ("bare", bare, bare_proc))
        if "litellm" in wanted and LITELLM.exists():
            config = work / "litellm.yaml"
            config.write_text(
                "model_list:\n  - model_name: gpt-4o-mini\n    litellm_params:\n"
                "      model: openai/gpt-4o-mini\n"
                f"      api_base: {provider}/v1\n      api_key: sk-bench\n"
                "general_settings:\n  master_key: sk-bench\n"
            )
            litellm = f"http://127.0.0.1:{free_port()}"
            litellm_proc = start(
                [
                    str(LITELLM),
                    "--config",
                    str(config),
                    "--port",
                    litellm.rsplit(":", 1)[1],
                    "--num_workers",
                    "1",
                ],
                litellm + "/health/liveliness",
                log=work / "litellm.log",
            )
            procs.append(litellm_proc)
            targets.append(("litellm", litellm, litellm_proc))
        elif "litellm" in wanted:
            print(f"(LiteLLM not installed at {LITELLM}: `make bench-proxy` installs it)", file=sys.stderr)

        rows = []
        plan = [("chat", BODY, rate) for rate in rates] + [("stream", STREAM_BODY, args.stream_rate)]
        direct: dict[tuple[str, float], tuple[float, float]] = {}
        # Target by target: an overloaded proxy works through its backlog long after its run
        # ends, and must not share the cores with the next target's measurement.
        for name, url, proc in [t for t in targets if t[0] == "direct" or t[0] in wanted]:
            for kind, body, rate in plan:
                runs = []
                for _ in range(args.repeat):
                    asyncio.run(offer(url, "/v1/chat/completions", body, rate, 2))  # warm up
                    cpu0 = cpu_seconds(proc.pid) if proc else 0.0
                    lat = asyncio.run(offer(url, "/v1/chat/completions", body, rate, args.seconds))
                    cpu = (cpu_seconds(proc.pid) - cpu0) / len(lat) * 1000 if proc else None
                    runs.append((pct(lat, 0.99), pct(lat, 0.5), cpu))
                    if proc:
                        settle(proc.pid)
                        settle(procs[1].pid)  # the server, ingesting the gateway's spans
                # This VM stalls now and then for tens of ms, whatever runs: the median run
                # shows the target, a stall shows in one run.
                p99, p50, cpu = sorted(runs, key=lambda run: run[0])[len(runs) // 2]
                base = direct.setdefault((kind, rate), (p50, p99))
                rows.append((kind, rate, name, p50, p99, p50 - base[0], p99 - base[1], cpu))
        rows.sort(key=lambda row: (row[0] != "chat", row[1]))
        print(
            f"\n{'load':<8}{'req/s':>7}  {'target':<11}{'p50 ms':>8}{'p99 ms':>8}{'added p50':>11}"
            f"{'added p99':>11}{'CPU/req ms':>12}"
        )
        for kind, rate, name, p50, p99, a50, a99, cpu in rows:
            added = f"{a50:>11.2f}{a99:>11.2f}" if name != "direct" else f"{'':>22}"
            cpu_text = f"{cpu:>12.2f}" if cpu is not None else ""
            print(f"{kind:<8}{rate:>7.0f}  {name:<11}{p50:>8.2f}{p99:>8.2f}{added}{cpu_text}")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
