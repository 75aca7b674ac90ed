"""`tokentrace demo`: an hour of compressed traffic from the simulated SaaS, then an incident."""

from __future__ import annotations

import threading
import time
from collections import Counter
from importlib import resources
from pathlib import Path
from string import Template

import uvicorn

import tokentrace
from tokentrace.simulate import traffic
from tokentrace.simulate.incidents import INCIDENTS
from tokentrace.simulate.provider import create_app
from tokentrace.simulate.state import ProviderState
from tokentrace.simulate.world import Conditions

_MINUTE_NS = 60 * 1_000_000_000


def demo_evaluators(data_dir: Path, judge_url: str) -> Path:
    """The demo's evaluators file (simulate/demo_evaluators.toml) written into the data dir with
    its judge's URL; its path, for `serve --evaluators`."""
    template = resources.files("tokentrace.simulate").joinpath("demo_evaluators.toml").read_text()
    data_dir.mkdir(parents=True, exist_ok=True)
    written = data_dir / "demo_evaluators.toml"
    written.write_text(Template(template).substitute(judge_url=judge_url))
    return written


def start_provider(port: int, seed: int, realistic_latency: bool) -> uvicorn.Server:
    """The simulated provider in a background thread of this process."""
    app = create_app(ProviderState(seed=seed, realistic_latency=realistic_latency))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    threading.Thread(target=server.run, name="tokentrace-sim-provider", daemon=True).start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the simulated provider did not start")
        time.sleep(0.05)
    return server


def run_demo(
    server_url: str,
    *,
    scenario: str,
    requests: int,
    workers: int,
    realistic_latency: bool,
    seed: int,
    provider_port: int,
    api_key: str | None = None,
    incident_minutes: float = 10,
) -> dict[str, Counter]:
    """Baseline traffic over an hour, then the incident over the last `incident_minutes` (a
    seventh of the requests: at 10 minutes, the baseline's pace)."""
    incident = INCIDENTS[scenario]
    provider = start_provider(provider_port, seed, realistic_latency)
    tokentrace.init(
        service_name="support-bot",
        endpoint=server_url,
        api_key=api_key,
        service_version="2.14.0",
        environment="production",
        capture_content=True,  # simulated conversations: the UI shows them, nothing is private
    )
    now = time.time_ns()
    incident_requests = max(requests // 7, 1)
    incident_start = now - int(incident_minutes * _MINUTE_NS)
    phases = [
        traffic.Phase(
            "baseline",
            incident_start - 60 * _MINUTE_NS,
            incident_start,
            requests - incident_requests,
            Conditions(),
        ),
        traffic.Phase(scenario, incident_start, now, incident_requests, incident.conditions),
    ]
    try:
        return traffic.run(f"http://127.0.0.1:{provider_port}", phases, seed=seed, workers=workers)
    finally:
        tokentrace.flush()
        provider.should_exit = True
