"""Other libraries' spans become the same canonical spans, tokens and cost as the provider's truth.

Each convention family runs twice:
- `test_recorded_*`: the OTLP payloads the family exported (tests/ingest/fixtures/FAMILY, made by
  `make fixtures`) are replayed to a running server. A library release that changes its
  attributes shows up here, as a failing fixture, once re-recorded.
- `test_live_*`: the real package (in its own venv, `make family-venvs`) drives the real
  `openai` and `anthropic` SDKs against the simulated provider and exports to a running server.

Both check each scenario's one counted LLM span against what the provider answered, except for
the cells in GAPS: what the family does not send (stays empty) or sends wrong (kept as sent).
docs/conventions.md is this table in prose.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.builders.processes import ServerProcess
from tests.ingest.families import FAMILIES, FIXTURES, family_python, run_app
from tokentrace import vocab
from tokentrace.canonical import LLM_OPERATIONS
from tokentrace.pricing import PriceBook

SCENARIO_MODELS = {
    "chat": ("openai", "gpt-4o-mini", "chat"),
    "stream": ("openai", "gpt-4o-mini", "chat"),
    "tool": ("openai", "gpt-4o", "chat"),
    "embeddings": ("openai", "text-embedding-3-small", "embeddings"),
    "anthropic_cache": ("anthropic", "claude-sonnet-4-5", "chat"),
    "anthropic_stream": ("anthropic", "claude-sonnet-4-5", "chat"),
    "rate_limited": ("openai", "gpt-4o-mini", "chat"),
    "anthropic_rate_limited": ("anthropic", "claude-sonnet-4-5", "chat"),
}
STREAMS = ("stream", "anthropic_stream")
CONVERSATIONS = ("chat", "stream", "tool", "anthropic_cache", "anthropic_stream")
TAGS = {"user_id": "u42", "session_id": "s-9", "tenant_id": "acme"}
_PRICES = PriceBook()  # the server's price data, to cost the truth the same way


@dataclass(frozen=True)
class Absent:
    """The family does not send this: the canonical field stays empty."""

    why: str


@dataclass(frozen=True)
class AsSent:
    """The family sends a wrong value; it is kept as sent (never corrected by a guess)."""

    value: Any
    why: str


OPENAI = ("chat", "stream", "tool", "embeddings", "rate_limited")
ANTHROPIC = ("anthropic_cache", "anthropic_stream", "anthropic_rate_limited")
_OPENLIT_STREAM_CACHE = "OpenLIT reports an Anthropic stream's cache tokens as 0"

# (family, scenarios, field, cell). Every other cell of every family equals the truth.
_GAP_LIST: list[tuple[str, tuple[str, ...], str, Absent | AsSent]] = [
    ("otel", ("*",), "content", Absent("none unless the latest conventions are opted in")),
    *[
        (family, ("chat", "stream", "tool"), field, Absent(f"openai-v2 sends no {what}"))
        for family in ("otel", "otel-latest")
        for field, what in (("cache_read_tokens", "cached tokens"), ("reasoning_tokens", "reasoning tokens"))
    ],
    *[
        (family, ("stream",), field, Absent(f"openai-v2 sends no {what} on streams"))
        for family in ("otel", "otel-latest")
        for field, what in (("finish_reason", "finish reason"), ("streaming", "streaming flag"))
    ],
    ("openlit", ("anthropic_stream",), "input_tokens", AsSent("raw_input", _OPENLIT_STREAM_CACHE)),
    ("openlit", ("anthropic_stream",), "total_tokens", AsSent("raw_total", _OPENLIT_STREAM_CACHE)),
    ("openlit", ("anthropic_stream",), "cache_read_tokens", AsSent(0, _OPENLIT_STREAM_CACHE)),
    ("openlit", ("anthropic_stream",), "cache_write_tokens", AsSent(0, _OPENLIT_STREAM_CACHE)),
    ("openlit", ("anthropic_stream",), "cost_usd", AsSent("as_priced", "priced from the counts sent")),
    ("openlit", ("chat", "stream", "tool"), "reasoning_tokens", Absent("sent for the Responses API only")),
    ("traceloop", ("stream",), "reasoning_tokens", Absent("Traceloop sends none on streams")),
    ("langfuse", OPENAI, "request_model", Absent("Langfuse sends the response model only")),
    ("langfuse", ("chat",), "finish_reason", Absent("Langfuse sends a finish reason on streams only")),
    ("langfuse", ANTHROPIC, "content", Absent("Langfuse does not wrap anthropic; its SDK span has none")),
    ("logfire", ("stream",), "finish_reason", Absent("Logfire sends no finish reason on streams")),
    (
        "logfire",
        ("stream",),
        "response_model",
        AsSent("gpt-4o-mini", "Logfire's stream span repeats the request model"),
    ),
]
GAPS: dict[tuple[str, str], dict[str, Absent | AsSent]] = {}
for _family, _scenarios, _field, _cell in _GAP_LIST:
    for _scenario in _scenarios:
        GAPS.setdefault((_family, _scenario), {})[_field] = _cell


def gap(family: str, scenario: str, field: str) -> Absent | AsSent | None:
    for key in ((family, scenario), (family, "*")):
        if field in GAPS.get(key, {}):
            return GAPS[key][field]
    return None


def truth(scenario: str, facts: dict[str, Any]) -> dict[str, Any]:
    """The canonical fields the provider's answer implies."""
    provider, model, operation = SCENARIO_MODELS[scenario]
    want: dict[str, Any] = {"operation": operation, "provider": provider, "request_model": model, **TAGS}
    usage = facts.get("usage") or {}
    if scenario in ("rate_limited", "anthropic_rate_limited"):
        return {**want, "status": "error", "error_type": "rate_limit", "input_tokens": None}
    want["response_model"] = facts["model"]
    if provider == "anthropic":
        read, write = usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]
        want |= {
            "input_tokens": usage["input_tokens"] + read + write,
            "output_tokens": usage["output_tokens"],
            "cache_read_tokens": read,
            "cache_write_tokens": write,
        }
        want["total_tokens"] = want["input_tokens"] + want["output_tokens"]
    else:
        want |= {
            "input_tokens": usage["prompt_tokens"],
            "output_tokens": usage.get("completion_tokens"),
            "total_tokens": usage["total_tokens"],
        }
        if operation == "chat":
            want["cache_read_tokens"] = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
            want["reasoning_tokens"] = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    if facts.get("finish_reason"):
        want["finish_reason"] = vocab.finish_reason(facts["finish_reason"])
    want["streaming"] = True if scenario in STREAMS else None
    return want


def _cost(span: dict[str, Any], tokens: dict[str, Any]) -> float:
    costs, known, _ = _PRICES.price_columns(
        [span["provider"]],
        [span["response_model"] or span["request_model"]],
        [int(span["start_time_ns"])],
        [tokens["input_tokens"]],
        [tokens.get("output_tokens")],
        [tokens.get("cache_read_tokens")],
        [tokens.get("cache_write_tokens")],
    )
    assert known == [True], f"no price for {span['response_model']}"
    return costs[0]


def _walk(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for node in nodes:
        out.append(node)
        out += _walk(node["children"])
    return out


def check_family(server: ServerProcess, family: str, facts: dict[str, Any], key: str) -> None:
    """Every scenario's counted span against the truth (or the family's documented gap)."""
    failures = []
    for scenario, fact in facts["scenarios"].items():
        tree = server.get(f"/api/v1/traces/{fact['trace_id']}", key)
        spans = _walk(tree["roots"])
        calls = [s for s in spans if s["operation"] in LLM_OPERATIONS]
        counted = [s for s in calls if s["duplicate_of"] is None]
        if len(counted) != 1:
            failures.append(f"{scenario}: {len(counted)} counted LLM spans of {len(calls)}")
            continue
        span = counted[0]
        span["start_time_ns"] = _ns(span["start_time"])
        want = truth(scenario, fact)
        for field, expected in want.items():
            cell = gap(family, scenario, field)
            if isinstance(cell, Absent):
                expected = None
            elif isinstance(cell, AsSent):
                expected = _as_sent(cell.value, fact)
            if field == "streaming" and expected is None and cell is None:
                ok = span[field] is not True  # non-streams: False or unsaid
            else:
                ok = span[field] == expected
            if not ok:
                failures.append(f"{scenario}.{field}: {span[field]!r} != {expected!r}")
        # Time to first token: only on streams (where the family measures it), within the call.
        ttft = span["ttft_ms"]
        if ttft is not None and (scenario not in STREAMS or not 0 <= ttft <= span["duration_ms"]):
            failures.append(f"{scenario}.ttft_ms: {ttft} (duration {span['duration_ms']})")
        # One call counts once: the trace's totals are the counted span's, duplicates aside.
        if tree["totals"]["input_tokens"] != (span["input_tokens"] or 0):
            failures.append(f"{scenario}: trace input tokens {tree['totals']['input_tokens']} double-counted")
        if span["input_tokens"] is not None:
            cost_cell = gap(family, scenario, "cost_usd")
            expected_cost = _cost(span, span if isinstance(cost_cell, AsSent) else want)
            if span["cost_usd"] != pytest.approx(expected_cost, rel=1e-9):
                failures.append(f"{scenario}.cost_usd: {span['cost_usd']} != {expected_cost}")
        # Parent links: the call hangs under the request's root span.
        if len(tree["roots"]) != 1 or span["span_id"] == tree["roots"][0]["span_id"]:
            failures.append(f"{scenario}: {len(tree['roots'])} roots; the call is not under the request")
        if scenario in CONVERSATIONS and not isinstance(gap(family, scenario, "content"), Absent):
            contents = [
                server.get(f"/api/v1/traces/{fact['trace_id']}/spans/{s['span_id']}", key)["content"]
                for s in calls
            ]
            if not any(c and c.get("input_messages") for c in contents):
                failures.append(f"{scenario}: no prompt content")
    assert not failures, f"{family}:\n" + "\n".join(failures)


def _as_sent(value: Any, fact: dict[str, Any]) -> Any:
    usage = fact.get("usage") or {}
    if value == "raw_input":
        return usage["input_tokens"]
    if value == "raw_total":
        return usage["input_tokens"] + usage["output_tokens"]
    return value


def _ns(iso: str) -> int:
    """An API timestamp (ISO 8601, up to nanoseconds) as Unix nanoseconds."""
    whole, _, fraction = iso.partition(".")
    fraction = fraction.rstrip("Z").split("+")[0]
    seconds = datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp()
    return int(seconds) * 1_000_000_000 + int((fraction or "0").ljust(9, "0")[:9])


def _project_key(server: ServerProcess) -> str:
    with server.client() as c:
        return c.post("/api/v1/projects", json={"name": "families"}).json()["api_key"]


def _one_span_each(body: bytes) -> list[bytes]:
    """A traces payload split into one request per span, last span first."""
    request = ExportTraceServiceRequest.FromString(body)
    bodies = []
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                single = ExportTraceServiceRequest()
                rs = single.resource_spans.add()
                rs.resource.CopyFrom(resource_spans.resource)
                ss = rs.scope_spans.add()
                ss.scope.CopyFrom(scope_spans.scope)
                ss.spans.append(span)
                bodies.append(single.SerializeToString())
    return bodies[::-1]


def replay(server: ServerProcess, family: str, key: str, backwards: bool = False) -> dict[str, Any]:
    """Post the recorded payloads as the family sent them (or span by span, last first); the facts."""
    folder = FIXTURES / family
    count = 0
    paths = sorted(folder.glob("*.pb"))
    payloads = [(p, p.read_bytes()) for p in paths]
    if backwards:
        payloads = [(p, one) for p, body in payloads[::-1] for one in _one_span_each(body)]
        payloads = [(p, b) for p, b in payloads if not p.stem.endswith("logs")]
    for path, body in payloads:
        signal = "logs" if path.stem.endswith("logs") else "traces"
        headers = {"Content-Type": "application/x-protobuf"}
        url = f"{server.url}/v1/{signal}"
        if family == "langfuse":  # as Langfuse sends it: its own path, gzip, Basic auth (pk:sk)
            url = f"{server.url}/api/public/otel/v1/traces"
            body = gzip.compress(body)
            basic = base64.b64encode(f"pk-lf-test:{key}".encode()).decode()
            headers |= {"Content-Encoding": "gzip", "Authorization": f"Basic {basic}"}
        else:
            headers["Authorization"] = f"Bearer {key}"
        response = httpx.post(url, content=body, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        if signal == "traces":
            count += _span_count(body if family != "langfuse" else gzip.decompress(body))
    server.wait_for_spans(count, key)
    return json.loads((folder / "facts.json").read_text())


def _span_count(body: bytes) -> int:
    request = ExportTraceServiceRequest.FromString(body)
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


@pytest.mark.parametrize("family", sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()))
def test_recorded_payloads_normalize_to_the_truth(server, family):
    key = _project_key(server)
    facts = replay(server, family, key)
    check_family(server, family, facts, key)


@pytest.mark.parametrize("family", ["openinference", "traceloop", "logfire"])
def test_stacked_spans_count_once_whatever_their_arrival_order(server, family):
    """The duplicate and the span that counts arrive one by one, last first, each its own batch:
    the same span counts, with the same tags, as when they come together."""
    key = _project_key(server)
    facts = replay(server, family, key, backwards=True)
    check_family(server, family, facts, key)


def _live_families() -> list[Any]:
    return [
        pytest.param(
            family,
            marks=pytest.mark.skipif(
                not family_python(family).exists(), reason=f"no venv for {family}: make family-venvs"
            ),
        )
        for family in FAMILIES
    ]


@pytest.mark.parametrize("family", _live_families())
def test_live_instrumentation_normalizes_to_the_truth(server, provider_url, family):
    key = _project_key(server)
    facts = json.loads(run_app(family, provider_url, server.url, key))
    wanted = {s["trace_id"] for s in facts["scenarios"].values()}
    for trace_id in wanted:  # exporters flush asynchronously: wait until each trace has its call
        _wait_for_call(server, trace_id, key)
    check_family(server, family, facts, key)


def _wait_for_call(server: ServerProcess, trace_id: str, key: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with server.client(key) as c:
            response = c.get(f"/api/v1/traces/{trace_id}")
        has_call = response.status_code == 200 and any(
            s["operation"] in LLM_OPERATIONS for s in _walk(response.json()["roots"])
        )
        if has_call and server.get("/api/v1/stats", key)["pending_spans"] == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"trace {trace_id} never got its LLM span\n{server.log()}")


def test_every_family_has_fixtures():
    recorded = {p.name for p in FIXTURES.iterdir() if p.is_dir()}
    assert recorded == set(FAMILIES), "record the missing ones with `make fixtures`"
    for family in recorded:
        assert (FIXTURES / family / "facts.json").exists()
        assert list((FIXTURES / family).glob("*-traces.pb")), family
