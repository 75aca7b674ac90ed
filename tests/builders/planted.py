"""Planted LLM traffic over a real DuckDB store: a steady app and the changes tests plant in it."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from tokentrace.ingest.columns import tables
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.prepare import price_rows
from tokentrace.ingest.raw import RawSpan
from tokentrace.pricing import PriceBook
from tokentrace.store.protocol import Store

UNTIL = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
WINDOW, BASELINE = timedelta(minutes=10), timedelta(hours=1)
IDS = itertools.count(1)
_BOOK = PriceBook()


def call(
    at: datetime,
    *,
    trace: str | None = None,
    feature: str = "refund-chat",
    model: str = "gpt-4o",
    version: str = "v1",
    tenant: str = "acme",
    user: str = "u1",
    input_tokens: int = 1000,
    output_tokens: int = 100,
    cached: int = 0,
    error: str | None = None,
    duration_ms: float = 1000,
    parent: str = "",
    extra: dict | None = None,
) -> RawSpan:
    """One chat call; `extra` adds or overrides span attributes."""
    start = int(at.timestamp() * 1e9)
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "tokentrace.feature": feature,
        "tokentrace.prompt.template": feature,
        "tokentrace.prompt.version": version,
        "tenant.id": tenant,
        "user.id": user,
    }
    attributes |= extra or {}
    if error:
        attributes["error.type"] = error
    else:
        attributes |= {
            "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": output_tokens,
            "gen_ai.usage.cache_read.input_tokens": cached,
        }
    return RawSpan(
        trace or f"{next(IDS):032x}",
        f"{next(IDS):016x}",
        parent,
        f"chat {model}",
        3,
        start,
        start + int(duration_ms * 1e6),
        2 if error else 0,
        error or "",
        attributes,
        {"service.name": "support-bot"},
    )


def traffic(start: datetime, minutes: int, per_minute: int, **changes) -> list[RawSpan]:
    """The steady app: refund-chat on gpt-4o and a cheap classifier, two tenants, six users."""
    spans = []
    for minute in range(minutes):
        for n in range(per_minute):
            at = start + timedelta(minutes=minute, seconds=n * 60 / per_minute)
            user = f"u{n % 6}"
            tenant = "acme" if n % 6 < 4 else "globex"
            if n % 3 == 2:
                classify = {
                    "feature": "classify",
                    "model": "gpt-4o-mini",
                    "input_tokens": 300,
                    "output_tokens": 5,
                }
                spans.append(call(at, user=user, tenant=tenant, **classify | changes.get("classify", {})))
            else:
                spans.append(call(at, user=user, tenant=tenant, **changes.get("refund-chat", {})))
    return spans


def store_with(store: Store, *batches: list[RawSpan]) -> Store:
    """`store` with the batches written, normalized and priced as ingest does."""
    for spans in batches:
        batch = normalize(spans, "default")
        price_rows(_BOOK, batch.rows)
        store.write_batch(tables(batch.rows), None)
    return store


def new_trace() -> str:
    return f"{next(IDS):032x}"


def agent_run(
    at: datetime,
    agent: str = "planner",
    turns: int = 4,
    tool_runs: int = 1,
    same_arguments: bool = True,
    seen_twice: bool = False,
    embeddings: int = 0,
) -> list[RawSpan]:
    """One run of an agent: its span, `turns` LLM calls and `tool_runs` runs of get_weather under it
    (with the same arguments each time, or each its own), a second apart. `seen_twice`: each tool
    run also recorded by a second instrumentation, as a span of the same tool inside it.
    `embeddings`: that many embedding calls too (a query embedded for retrieval: not turns)."""
    trace = new_trace()
    start = int(at.timestamp() * 1e9)
    length = (turns + tool_runs + 1) * 10**9
    root = RawSpan(
        trace,
        f"{next(IDS):016x}",
        "",
        f"invoke_agent {agent}",
        1,
        start,
        start + length,
        0,
        "",
        {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent, "tenant.id": "acme"},
        {"service.name": "support-bot"},
    )
    spans = [root]
    for n in range(turns):
        spans.append(
            call(at + timedelta(seconds=n), trace=trace, parent=root.span_id, input_tokens=800 + 50 * n)
        )
    for n in range(embeddings):
        embedding = {"gen_ai.operation.name": "embeddings", "gen_ai.request.model": "text-embedding-3-small"}
        at_n = at + timedelta(seconds=n, milliseconds=500)
        spans.append(call(at_n, trace=trace, parent=root.span_id, extra=embedding))
    for n in range(tool_runs):
        tool_start = start + (turns + n) * 10**9
        arguments = '{"city": "Paris"}' if same_arguments else f'{{"city": "city-{n}"}}'
        spans.append(
            RawSpan(
                trace,
                f"{next(IDS):016x}",
                root.span_id,
                "execute_tool get_weather",
                1,
                tool_start,
                tool_start + 10**8,
                0,
                "",
                {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "get_weather",
                    "gen_ai.tool.call.arguments": arguments,
                },
                {"service.name": "support-bot"},
            )
        )
        if seen_twice:
            outer = spans[-1]
            spans.append(
                RawSpan(
                    trace,
                    f"{next(IDS):016x}",
                    outer.span_id,
                    "get_weather.tool",
                    1,
                    tool_start + 1000,
                    tool_start + 10**8 - 1000,
                    0,
                    "",
                    {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather"},
                    {"service.name": "support-bot"},
                )
            )
    return spans
