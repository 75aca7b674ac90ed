"""`tokentrace demo --serve` (what `make demo` runs) grades its traffic: the server starts with the
demo's evaluators, their judge a simulated model of its own, and the `lost-context` incident (a
prompt version that stopped passing the retrieved policy: nothing fails, nothing costs more) is
seen only by the groundedness evaluator, and named by triage."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from tests.builders.processes import free_port


def _until(probe, timeout: float, what: str):
    """Poll `probe()` until it returns something truthy; that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"no {what} after {timeout:.0f} s")


def test_the_demo_server_grades_answers_and_triage_names_the_prompt_that_lost_its_context(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    demo = subprocess.Popen(
        [
            sys.executable, "-m", "tokentrace.cli", "demo", "--serve", "--scenario", "lost-context",
            "--requests", "210", "--workers", "6", "--fast", "--data-dir", str(tmp_path / "data"),
            "--port", str(port), "--grpc-port", "0",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        said = []
        for line in demo.stdout:  # the traffic is sent, then the demo names where to look
            said.append(line)
            if "is running at" in line:
                break
        assert demo.poll() is None, "".join(said)
        assert f"{url}/quality?since=1h" in "".join(said)

        def graded() -> list[dict] | None:
            found = httpx.get(f"{url}/api/v1/triage", params={"since": "10m", "baseline": "1h"}, timeout=30)
            slices = {(q["score"], tuple(q["group"].items())): q for q in found.json()["quality"]}
            return slices if ("groundedness", (("prompt_version", "v4"),)) in slices else None

        slices = _until(graded, 120, "groundedness change of prompt v4 in triage")
        v4 = slices[("groundedness", (("prompt_version", "v4"),))]
        # the policy cited before; v4's answers do not (the judge reads what the retrieval returned)
        assert v4["before_mean"] > 0.9 and v4["after_mean"] < 0.3 and v4["after_scores"] >= 3
        evaluators = {
            e["name"]: e for e in httpx.get(f"{url}/api/v1/evaluators", timeout=10).json()["evaluators"]
        }
        assert set(evaluators) == {"groundedness", "refusal", "resolved"}
        assert evaluators["groundedness"]["judge_calls_24h"]["requests"] > 0
        assert evaluators["groundedness"]["evaluations"]["done"] > 0
        assert not evaluators["groundedness"]["latest_failures"]
        # the agent's tool-calling steps have no answer to grade: skipped, not scored ungrounded
        assert evaluators["groundedness"]["evaluations"]["skipped"] > 0
    finally:
        os.killpg(demo.pid, signal.SIGTERM)  # the demo and the server it started
        demo.wait(30)
