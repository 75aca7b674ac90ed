"""Run simulated traffic: phases of requests at virtual times, executed concurrently for real."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tokentrace.simulate import clock, world
from tokentrace.simulate.app import SupportApp


@dataclass(frozen=True)
class Phase:
    name: str
    start_ns: int
    end_ns: int
    requests: int
    conditions: world.Conditions


def _one(app: SupportApp, request: world.Request, conditions: world.Conditions) -> str:
    with clock.at(request.at_ns):
        return app.handle(request, conditions)


def run(provider_url: str, phases: list[Phase], *, seed: int = 7, workers: int = 16) -> dict[str, Counter]:
    """Send every phase's requests; returns per phase how many ended ok or with which error."""
    clock.install()
    app = SupportApp(provider_url)
    outcomes: dict[str, Counter] = {}
    with ThreadPoolExecutor(workers, thread_name_prefix="tokentrace-traffic") as pool:
        for i, phase in enumerate(phases):
            batch = world.requests(seed + i, phase.start_ns, phase.end_ns, phase.requests, phase.conditions)
            results = pool.map(lambda r, c=phase.conditions: _one(app, r, c), batch)
            outcomes[phase.name] = Counter(results)
    return outcomes
