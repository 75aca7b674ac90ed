"""Agent frameworks' runs are counted once, priced right and shown as the agent ran.

Each framework (tests/ingest/agents) runs one agent with one tool: per run, two model calls and
one tool run. Its spans are checked against the simulated provider's ledger of what it answered,
never against the framework's own numbers:
- every answer is one counted LLM call, with the provider's tokens and the cost they imply, and
  nothing else counts (agent and workflow totals, preparation steps, the provider SDK's own span);
- a run is one trace, with its agent and tool spans recognized and the tags on every call;
- project totals (the rollups) equal the ledger's.

`test_recorded_*` replays the payloads each framework exported (fixtures/NAME, recorded by
`python -m tests.ingest.agents.record NAME`); `test_live_*` runs the real framework in its venv.
GAPS lists what a framework does not send (the field stays empty, never guessed).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conftest import ServerProcess
from tests.ingest.agents import FIXTURES, FRAMEWORKS, framework_python, run_agent
from tokentrace.canonical import LLM_OPERATIONS
from tokentrace.pricing import PriceBook
from tokentrace.query.traces import walk

TAGS = {"user_id": "u42", "session_id": "s-9", "tenant_id": "acme"}
_PRICES = PriceBook()

# framework → {field: why it stays empty}: agent_name, tool_span, a tag, a token field; or
# `scenario:NAME`: the instrumentation does not record that run's usage (its answers are not
# checked; its calls count with unknown tokens, or not at all). docs/conventions.md says the same.
GAPS: dict[str, dict[str, str]] = {
    "llamaindex": {
        "agent_name": "its agent spans are named after the class (FunctionAgent.run); the agent's "
        "name is only inside the input.value repr",
    },
    "openai-agents-traceloop": {
        "scenario:anthropic": "Traceloop's Agents SDK instrumentation reads usage and output only from "
        "Responses API data: LiteLLM calls arrive without usage (calls with unknown tokens)",
    },
    "mcp-openai-agents-traceloop": {
        "tool_runs": "Traceloop's MCP instrumentation (mcp 1.x) records the tool run again as a second "
        "`get_weather.tool` span inside the Agents SDK's, with no MCP attribute to tell them apart",
        "mcp": "with mcp 1.x its MCP spans (`ResponseStreamWriter`, `tools/list.mcp`) carry no mcp.* "
        "attributes; the client and server spans are still one trace",
    },
    "openai-agents-otel": {
        "scenario:anthropic": "the official Agents SDK instrumentation leaves model calls to the openai "
        "instrumentation: LiteLLM's own HTTP calls are recorded by nothing",
    },
}


def truth(answer: dict[str, Any]) -> dict[str, Any]:
    """The canonical token counts a ledger answer implies (None: the API did not report it)."""
    usage = answer["usage"] if answer.get("reported", True) else {}
    if answer["api"] == "messages":
        read, write = usage.get("cache_read_input_tokens"), usage.get("cache_creation_input_tokens")
        return {
            "input_tokens": usage["input_tokens"] + (read or 0) + (write or 0),
            "output_tokens": usage["output_tokens"],
            "cache_read_tokens": read,
            "cache_write_tokens": write,
            "reasoning_tokens": None,
        }
    if answer["api"] == "responses":
        return {
            "input_tokens": usage.get("input_tokens"),
            "output_tokens": usage.get("output_tokens"),
            "cache_read_tokens": (usage.get("input_tokens_details") or {}).get("cached_tokens"),
            "cache_write_tokens": None,
            "reasoning_tokens": (usage.get("output_tokens_details") or {}).get("reasoning_tokens"),
        }
    return {
        "input_tokens": usage.get("prompt_tokens"),
        "output_tokens": usage.get("completion_tokens"),
        "cache_read_tokens": (usage.get("prompt_tokens_details") or {}).get("cached_tokens"),
        "cache_write_tokens": None,
        "reasoning_tokens": (usage.get("completion_tokens_details") or {}).get("reasoning_tokens"),
    }


def _cost(span: dict[str, Any], tokens: dict[str, Any]) -> float | None:
    costs, _, _ = _PRICES.price_columns(
        [span["provider"]],
        [span["response_model"] or span["request_model"]],
        [span["start_ns"]],
        [tokens["input_tokens"]],
        [tokens["output_tokens"]],
        [tokens["cache_read_tokens"]],
        [tokens["cache_write_tokens"]],
    )
    return costs[0]


def _tree(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(walk(nodes))


def _token_match(span: dict[str, Any], want: dict[str, Any]) -> bool:
    return span["input_tokens"] == want["input_tokens"] and span["output_tokens"] == want["output_tokens"]


def check_framework(server: ServerProcess, name: str, facts: dict[str, Any], trace_ids: set[str], key: str):
    """Every answer of the ledger is one counted call with its tokens and cost; each run one tree."""
    gaps = GAPS.get(name, {})
    failures: list[str] = []
    trees = {t: server.get(f"/api/v1/traces/{t}", key) for t in trace_ids}
    spans = [s | {"trace_id": t} for t, tree in trees.items() for s in _tree(tree["roots"])]
    counted = [s for s in spans if s["operation"] in LLM_OPERATIONS and s["duplicate_of"] is None]
    unrecorded = {
        i for run in facts["scenarios"] if f"scenario:{run['name']}" in gaps for i in range(*run["calls"])
    }
    answers = [(i, a) for i, a in enumerate(facts["ledger"]) if a["status"] == 200 and i not in unrecorded]

    # Each answer ↔ one counted span: by response id where the span has one, else by its tokens
    # (the earliest such span: the ledger is in the order the calls were answered).
    matched: dict[int, dict[str, Any]] = {}
    free = sorted(counted, key=lambda s: _ns(s["start_time"]))
    for by_id in (True, False):
        for i, answer in answers:
            if i in matched:
                continue
            want = truth(answer)
            for span in free:
                if (by_id and span["response_id"] == answer["id"]) or (
                    not by_id and not span["response_id"] and _token_match(span, want)
                ):
                    matched[i] = span
                    free.remove(span)
                    break
    for i, answer in answers:
        if i not in matched:
            failures.append(f"answer {i} ({answer['api']} {answer.get('id')}) is not one counted call")
    for span in free:
        if not (unrecorded and span["input_tokens"] is None):
            failures.append(f"counted span {span['name']!r} ({span['span_id']}) has no answer behind it")

    for i, span in matched.items():
        answer, want = facts["ledger"][i], truth(facts["ledger"][i])
        for field, expected in want.items():
            got = span[field]
            if got != expected and not (got is None and (field in gaps or not expected)):
                failures.append(f"answer {i} {span['name']!r}.{field}: {got!r} != {expected!r}")
        provider = "anthropic" if answer["api"] == "messages" else "openai"
        if span["provider"] != provider:
            failures.append(f"answer {i} {span['name']!r}.provider: {span['provider']!r} != {provider!r}")
        span["start_ns"] = int(span["start_time_ns"]) if "start_time_ns" in span else _ns(span["start_time"])
        expected_cost = _cost(span, want)
        if expected_cost is None or span["cost_usd"] != pytest.approx(expected_cost, rel=1e-9):
            failures.append(f"answer {i} {span['name']!r}.cost_usd: {span['cost_usd']} != {expected_cost}")
        if "agent_name" not in gaps and span["agent_name"] != facts["scenarios"][0]["agent"]:
            failures.append(f"answer {i} {span['name']!r}.agent_name: {span['agent_name']!r} (its agent's)")
        for tag, value in TAGS.items():
            if span[tag] != value and tag not in gaps:
                failures.append(f"answer {i} {span['name']!r}.{tag}: {span[tag]!r} != {value!r}")

    for run in facts["scenarios"]:
        first, last = run["calls"]
        if f"scenario:{run['name']}" in gaps:
            continue
        ids = {matched[i]["trace_id"] for i in range(first, last) if i in matched}
        label = f"{run['name']}:"
        if last - first < 2:
            failures.append(f"{label} {last - first} model calls in the ledger, expected 2")
        if len(ids) != 1:
            failures.append(f"{label} its calls are in {len(ids)} traces")
            continue
        tree = trees[ids.pop()]
        members = _tree(tree["roots"])
        if len(tree["roots"]) != 1:
            failures.append(f"{label} {len(tree['roots'])} roots in its trace")
        wanted_input = sum(truth(facts["ledger"][i])["input_tokens"] or 0 for i in range(first, last))
        if tree["totals"]["input_tokens"] != wanted_input:
            failures.append(f"{label} trace input tokens {tree['totals']['input_tokens']} != {wanted_input}")
        agents = [s for s in members if s["operation"] == "invoke_agent"]
        if not agents:
            failures.append(f"{label} no agent span")
        elif "agent_name" not in gaps and run["agent"] not in {s["agent_name"] for s in agents}:
            failures.append(f"{label} agent names {[s['agent_name'] for s in agents]} lack {run['agent']!r}")
        tools = [s for s in members if s["operation"] == "execute_tool"]
        if "tool_span" not in gaps and run["tool"] not in {s["tool_name"] for s in tools}:
            failures.append(f"{label} tool spans {[s['tool_name'] for s in tools]} lack {run['tool']!r}")
        runs = tree["totals"]["tool_runs"]
        if "tool_runs" not in gaps and runs != 1:  # one tool call per run, seen by however many spans
            failures.append(f"{label} {runs} tool runs, the model asked for one")
        calls = [s for s in members if s["attributes"].get("mcp.method.name") == "tools/call"]
        if name.startswith("mcp-") and "mcp" not in gaps and {s["tool_name"] for s in calls} != {run["tool"]}:
            failures.append(f"{label} MCP tools/call spans {[s['tool_name'] for s in calls]}: not one tree")

    # Project totals (the rollups) count each answer once.
    rows = server.get("/api/v1/rollups", key)["rows"]
    requests = sum(r["requests"] for r in rows)
    if not len(answers) <= requests <= len(answers) + len(unrecorded):
        failures.append(f"rollups: {requests} requests, the provider answered {len(answers)}")
    input_tokens = sum(r["input_tokens"] for r in rows)
    wanted = sum(truth(a)["input_tokens"] or 0 for _, a in answers)
    if input_tokens != wanted:
        failures.append(f"rollups: {input_tokens} input tokens, the provider answered {wanted}")
    # What does the agent cost? One group by agent: every call its agent made.
    if "agent_name" not in gaps:
        by_agent = server.get("/api/v1/rollups", key, group_by="agent_name")["rows"]
        of_agent = sum(r["requests"] for r in by_agent if r["agent_name"] == facts["scenarios"][0]["agent"])
        if of_agent < len(answers):
            failures.append(f"cost by agent: {of_agent} requests of {len(answers)} under the agent")
    assert not failures, f"{name}:\n" + "\n".join(failures)


def _ns(iso: str) -> int:
    """An API timestamp (ISO 8601 to the nanosecond, UTC) as Unix nanoseconds."""
    whole, _, fraction = iso.removesuffix("Z").partition(".")
    seconds = int(datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp())
    return seconds * 1_000_000_000 + int(fraction.split("+")[0].ljust(9, "0")[:9])


def _project_key(server: ServerProcess, name: str) -> str:
    with server.client() as c:
        return c.post("/api/v1/projects", json={"name": name}).json()["api_key"]


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


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()))
def test_recorded_agent_runs_count_once_and_price_right(server, name):
    key = _project_key(server, name)
    facts, trace_ids = replay(server, name, key)
    check_framework(server, name, facts, trace_ids, key)


def _run_live(server: ServerProcess, name: str) -> str | None:
    """One framework's run against a provider of its own (a fresh ledger) and a project of its
    own; what failed, or None."""
    from tests.conftest import simulated_provider

    key = _project_key(server, f"live-{name}")
    try:
        with simulated_provider() as provider:
            facts = json.loads(run_agent(name, provider, server.url, key))
        wanted = sum(1 for a in facts["ledger"] if a["status"] == 200)
        check_framework(server, name, facts, _wait_for_calls(server, key, wanted), key)
    except subprocess.CalledProcessError as exc:
        return f"{name}: the app failed\n{exc.stderr[-3000:]}"
    except AssertionError as exc:
        return str(exc)
    return None


def test_live_agent_runs_count_once_and_price_right(server):
    """Every framework for real, three at a time against one server: the same checks as the
    recorded runs. Frameworks without a venv (`make agent-venvs`) are skipped, named."""
    names = sorted(n for n in FRAMEWORKS if framework_python(n).exists())
    if not names:
        pytest.skip("no agent venvs: make agent-venvs")
    with ThreadPoolExecutor(3) as pool:
        failures = [f for f in pool.map(lambda n: _run_live(server, n), names) if f]
    assert not failures, "\n\n".join(failures)
    missing = sorted(set(FRAMEWORKS) - set(names))
    assert not missing or not os.environ.get("CI"), f"no venv in CI for {missing}"


def _wait_for_calls(server: ServerProcess, key: str, wanted: int, timeout: float = 30) -> set[str]:
    """The project's trace ids once it holds `wanted` counted calls and nothing is pending."""
    deadline = time.monotonic() + timeout
    while True:
        rows = server.get("/api/v1/rollups", key)["rows"]
        stats = server.get("/api/v1/stats", key)
        if (sum(r["requests"] for r in rows) >= wanted and stats["pending_spans"] == 0) or (
            time.monotonic() > deadline
        ):
            break
        time.sleep(0.3)
    page = server.get("/api/v1/traces", key, since="1h", limit=1000)
    return {row["trace_id"] for row in page["traces"]}


def test_every_framework_has_fixtures():
    recorded = {p.name for p in FIXTURES.iterdir() if p.is_dir()}
    assert recorded == set(FRAMEWORKS), "record the missing ones: python -m tests.ingest.agents.record NAME"
