"""The checks every agent framework's run must pass, recorded (tests/ingest/test_agents.py) or live
(tests/ingest/test_agents_live.py): each answer in the simulated provider's ledger is one counted
call with its tokens and the cost they imply, nothing else counts, a run is one tree with its
agent and tool, the tags are on every call, and the project's rollups equal the ledger.
GAPS lists what a framework does not send (the field stays empty, never guessed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.builders.processes import ServerProcess
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


def project_key(server: ServerProcess, name: str) -> str:
    with server.client() as c:
        return c.post("/api/v1/projects", json={"name": name}).json()["api_key"]
