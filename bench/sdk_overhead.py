"""What instrumentation costs an application per LLM call.

    python bench/sdk_overhead.py [--calls 5000] [--venv NAME=PYTHON ...]

An openai client on an in-memory transport (no network: only client and instrumentation
cost count) makes the same chat call N times, uninstrumented and instrumented, each mode in
a fresh process. Spans are really exported over OTLP/HTTP to a sink in another process, and
the CPU per call counts the export thread too (process time, flushed at the end). Other
instrumentations run in their own virtualenvs (`make bench-sdk` makes them) against their
own uninstrumented baseline in the same venv, since their openai pins may differ from ours.
Message content capture is off in every mode.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENVS = ROOT / ".bench-venvs"
RESPONSE = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Your refund was issued on Monday.", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 120,
        "completion_tokens": 9,
        "total_tokens": 129,
        "prompt_tokens_details": {"cached_tokens": 64},
        "completion_tokens_details": {"reasoning_tokens": 0},
    },
}
MESSAGES = [
    {"role": "system", "content": "You are a support agent for an online shop."},
    {"role": "user", "content": "Where is my refund for order 42?"},
]


# --- the sink: an OTLP/HTTP endpoint in its own process that accepts and drops ------------
class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def sink(port: int) -> None:
    ThreadingHTTPServer(("127.0.0.1", port), _Sink).serve_forever()


# --- one mode, in this process ---------------------------------------------------------------
def _client():
    import openai

    major = int(openai.__version__.split(".")[0])
    httpx = __import__("httpx2" if major >= 3 else "httpx")
    body = json.dumps(RESPONSE).encode()

    def handler(request):
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    http_client = httpx.Client(transport=httpx.MockTransport(handler))
    return openai.OpenAI(
        api_key="sk-bench", base_url="http://llm.invalid/v1", http_client=http_client
    ), openai


def _otel_provider(endpoint: str):
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")))
    trace.set_tracer_provider(provider)
    return provider


def _instrument(mode: str, endpoint: str):
    """Set up `mode`; returns a flush function."""
    if mode == "none":
        return lambda: None
    if mode == "tokentrace":
        sys.path.insert(0, str(ROOT / "src"))
        import tokentrace

        tokentrace.init(service_name="bench", endpoint=endpoint)
        return tokentrace.flush
    if mode == "openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        provider = _otel_provider(endpoint)
        OpenAIInstrumentor().instrument(tracer_provider=provider)
        return provider.force_flush
    if mode == "openllmetry":
        os.environ["TRACELOOP_TRACE_CONTENT"] = "false"
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        provider = _otel_provider(endpoint)
        OpenAIInstrumentor().instrument(tracer_provider=provider)
        return provider.force_flush
    if mode == "openlit":
        import openlit
        from opentelemetry import trace

        openlit.init(otlp_endpoint=endpoint, disable_metrics=True, capture_message_content=False)
        return trace.get_tracer_provider().force_flush
    raise SystemExit(f"unknown mode {mode}")


def run_mode(mode: str, endpoint: str, calls: int, warmup: int) -> dict:
    client, openai = _client()
    flush = _instrument(mode, endpoint)
    create = client.chat.completions.create
    for _ in range(warmup):
        create(model="gpt-4o-mini", messages=MESSAGES, temperature=0.2, max_tokens=100)
    flush()
    times = []
    clock = time.perf_counter_ns
    cpu_start = time.process_time_ns()
    wall_start = clock()
    for _ in range(calls):
        t0 = clock()
        create(model="gpt-4o-mini", messages=MESSAGES, temperature=0.2, max_tokens=100)
        times.append(clock() - t0)
    flush()  # the export of these calls is part of their cost
    cpu = time.process_time_ns() - cpu_start
    wall = clock() - wall_start
    times.sort()
    return {
        "mode": mode,
        "openai": openai.__version__,
        "median_us": times[len(times) // 2] / 1000,
        "p99_us": times[int(len(times) * 0.99)] / 1000,
        "max_us": times[-1] / 1000,
        "cpu_per_call_us": cpu / calls / 1000,
        "wall_per_call_us": wall / calls / 1000,
    }


def run_paired(endpoint: str, pairs: int, warmup: int) -> dict:
    """tokentrace alone, in one process: each instrumented call is measured beside the same call
    made without instrumentation (the unwrapped SDK method; only the one-attempt HTTP wrapper,
    which then finds no call and returns, stays in its path) and one made under OTel's
    suppress-instrumentation flag (the wrapper only checks the flag), in rotating order. The
    median of the differences is the added time with the machine's drift cancelled; thread CPU
    splits the calling thread's cost from the export thread's."""
    from opentelemetry import context

    client, openai = _client()
    flush = _instrument("tokentrace", endpoint)
    create = client.chat.completions.create
    # wrapt keeps the original function on the class attribute it replaced.
    unwrapped = type(client.chat.completions).__dict__["create"].__wrapped__
    quiet = context.set_value(context._SUPPRESS_INSTRUMENTATION_KEY, True)
    clock, thread_clock = time.perf_counter_ns, time.thread_time_ns

    def call(how: str) -> tuple[int, int]:
        token = context.attach(quiet) if how == "suppressed" else None
        t0, c0 = clock(), thread_clock()
        if how == "plain":
            unwrapped(
                client.chat.completions,
                model="gpt-4o-mini",
                messages=MESSAGES,
                temperature=0.2,
                max_tokens=100,
            )
        else:
            create(model="gpt-4o-mini", messages=MESSAGES, temperature=0.2, max_tokens=100)
        spent = clock() - t0, thread_clock() - c0
        if token is not None:
            context.detach(token)
        return spent

    hows = ("traced", "suppressed", "plain")
    for i in range(warmup):
        call(hows[i % 3])
    flush()
    added, added_cpu, wrapper = [], [], []
    times: dict[str, list[int]] = {how: [] for how in hows}
    in_thread = 0
    cpu_start = time.process_time_ns()
    for i in range(pairs):
        order = hows[i % 3 :] + hows[: i % 3]
        spent = {how: call(how) for how in order}
        added.append(spent["traced"][0] - spent["plain"][0])
        added_cpu.append(spent["traced"][1] - spent["plain"][1])
        wrapper.append(spent["suppressed"][0] - spent["plain"][0])
        for how in hows:
            times[how].append(spent[how][0])
            in_thread += spent[how][1]
    flush()
    other_threads = time.process_time_ns() - cpu_start - in_thread  # the export thread, mostly
    for series in (added, added_cpu, wrapper, *times.values()):
        series.sort()

    def median(values: list[int]) -> float:
        return values[len(values) // 2] / 1000

    def p99(values: list[int]) -> float:
        return values[int(len(values) * 0.99)] / 1000

    return {
        "openai": openai.__version__,
        "pairs": pairs,
        "base_median_us": median(times["plain"]),
        "added_median_us": median(added),
        "added_thread_cpu_us": median(added_cpu),
        "suppressed_added_us": median(wrapper),
        "export_cpu_per_call_us": other_threads / pairs / 1000,
        "added_p99_us": p99(times["traced"]) - p99(times["plain"]),
    }


# --- the driver -------------------------------------------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child(python: str, mode: str, endpoint: str, calls: int, warmup: int) -> dict:
    out = subprocess.run(
        [
            python,
            __file__,
            "--run",
            mode,
            "--endpoint",
            endpoint,
            "--calls",
            str(calls),
            "--warmup",
            str(warmup),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{mode} under {python} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _print_paired(args: argparse.Namespace) -> None:
    port = _free_port()
    sink_proc = subprocess.Popen([sys.executable, __file__, "--sink", str(port)])
    time.sleep(0.5)
    try:
        runs = [
            _child(sys.executable, "paired", f"http://127.0.0.1:{port}", args.calls, args.warmup)
            for _ in range(args.repeat)
        ]
    finally:
        sink_proc.kill()
    print(f"tokentrace, {args.calls} rounds per run (instrumented, suppressed, uninstrumented), µs per call")
    head = (
        "run",
        "openai",
        "call",
        "added median",
        "added thread CPU",
        "export CPU/call",
        "added p99",
        "suppressed added",
    )
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for n, r in enumerate(runs, 1):
        cells = (
            n,
            r["openai"],
            f"{r['base_median_us']:.0f}",
            f"{r['added_median_us']:+.0f}",
            f"{r['added_thread_cpu_us']:+.0f}",
            f"{r['export_cpu_per_call_us']:.0f}",
            f"{r['added_p99_us']:+.0f}",
            f"{r['suppressed_added_us']:+.0f}",
        )
        print("| " + " | ".join(str(c) for c in cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode; the best median is kept")
    parser.add_argument(
        "--venv", action="append", default=[], help="NAME=PYTHON for openai-v2, openlit, openllmetry"
    )
    parser.add_argument("--modes", help="comma-separated subset of tokentrace,openai-v2,openlit,openllmetry")
    parser.add_argument(
        "--paired",
        action="store_true",
        help="tokentrace only: instrumented, suppressed and uninstrumented calls in turn, in one process",
    )
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        sink(args.sink)
        return
    if args.run:
        if args.run == "paired":
            print(json.dumps(run_paired(args.endpoint, args.calls, args.warmup)))
        else:
            print(json.dumps(run_mode(args.run, args.endpoint, args.calls, args.warmup)))
        return
    if args.paired:
        _print_paired(args)
        return

    pythons = {"tokentrace": sys.executable}
    for name in ("openai-v2", "openlit", "openllmetry"):
        default = VENVS / name / "bin" / "python"
        if default.exists():
            pythons[name] = str(default)
    pythons.update(dict(item.split("=", 1) for item in args.venv))
    if args.modes:
        pythons = {mode: python for mode, python in pythons.items() if mode in args.modes.split(",")}

    port = _free_port()
    sink_proc = subprocess.Popen([sys.executable, __file__, "--sink", str(port)])
    endpoint = f"http://127.0.0.1:{port}"
    time.sleep(0.5)
    rows = []
    try:
        for mode, python in pythons.items():
            best: dict[str, dict] = {}
            for _ in range(args.repeat):
                for which in ("none", mode):
                    result = _child(python, which, endpoint, args.calls, args.warmup)
                    if which not in best or result["median_us"] < best[which]["median_us"]:
                        best[which] = result
            base, inst = best["none"], best[mode]
            rows.append(
                {
                    **inst,
                    "added_median_us": inst["median_us"] - base["median_us"],
                    "added_p99_us": inst["p99_us"] - base["p99_us"],
                    "added_cpu_us": inst["cpu_per_call_us"] - base["cpu_per_call_us"],
                    "base_median_us": base["median_us"],
                }
            )
    finally:
        sink_proc.kill()

    print(
        f"{args.calls} chat calls per run, best of {args.repeat}; µs per call; "
        "export to an OTLP/HTTP sink included"
    )
    head = ("instrumentation", "openai", "median", "added", "p99", "added p99", "CPU/call", "added CPU")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print(
            f"| {r['mode']} | {r['openai']} | {r['median_us']:.0f} | {r['added_median_us']:+.0f} | "
            f"{r['p99_us']:.0f} | {r['added_p99_us']:+.0f} | {r['cpu_per_call_us']:.0f} | "
            f"{r['added_cpu_us']:+.0f} |"
        )


if __name__ == "__main__":
    main()
