"""Agent frameworks' runs are counted once, priced right and shown as the agent ran.

Each framework (tests/ingest/agents) runs one agent with one tool: per run, two model calls and
one tool run. Its spans are checked against the simulated provider's ledger of what it answered,
never against the framework's own numbers:
- every answer is one counted LLM call, with the provider's tokens and the cost they imply, and
  nothing else counts (agent and workflow totals, preparation steps, the provider SDK's own span);
- a run is one trace, with its agent and tool spans recognized and the tags on every call;
- project totals (the rollups) equal the ledger's.

`test_recorded_*` replays the payloads each framework exported (fixtures/NAME, recorded by
`python -m tests.ingest.agents.record NAME`); test_agents_live.py runs the real frameworks.
The checks, and the GAPS of what a framework does not send, are tests/ingest/agents/checks.py.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.builders.processes import ServerProcess
from tests.ingest.agents import FIXTURES, FRAMEWORKS
from tests.ingest.agents.checks import check_framework, project_key


def _spans_of(body: bytes) -> list[str]:
    request = ExportTraceServiceRequest.FromString(body)
    return [s.trace_id.hex() for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]


def replay(server: ServerProcess, name: str, key: str) -> tuple[dict[str, Any], set[str]]:
    """Post the recorded payloads as the framework sent them; its facts and trace ids."""
    folder = FIXTURES / name
    trace_ids: set[str] = set()
    count = 0
    for path in sorted(folder.glob("*.pb")):
        body = path.read_bytes()
        signal = "logs" if path.stem.endswith("logs") else "traces"
        response = httpx.post(
            f"{server.url}/v1/{signal}",
            content=body,
            headers={"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        if signal == "traces":
            ids = _spans_of(body)
            trace_ids.update(ids)
            count += len(ids)
    server.wait_for_spans(count, key)
    return json.loads((folder / "facts.json").read_text()), trace_ids


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server for every recorded run, each in a project of its own (a server start is ~3 s)."""
    proc = ServerProcess(tmp_path_factory.mktemp("agents") / "data").start()
    yield proc
    proc.stop()


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()))
def test_recorded_agent_runs_count_once_and_price_right(shared_server, name):
    key = project_key(shared_server, name)
    facts, trace_ids = replay(shared_server, name, key)
    check_framework(shared_server, name, facts, trace_ids, key)


def test_every_framework_has_fixtures():
    recorded = {p.name for p in FIXTURES.iterdir() if p.is_dir()}
    assert recorded == set(FRAMEWORKS), "record the missing ones: python -m tests.ingest.agents.record NAME"
