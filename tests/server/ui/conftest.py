"""An in-process server (the real app over a real DuckDB file) with planted traffic, for page tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from starlette.testclient import TestClient

from tests.builders.planted import _BOOK, call, new_trace
from tokentrace.ingest.columns import tables
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.prepare import price_rows
from tokentrace.server.app import create_app
from tokentrace.server.config import ServerConfig
from tokentrace.server.runner import open_state
from tokentrace.server.state import ServerState

#: Markup an attacker could put in a prompt, a tag, a model name or an attribute.
HOSTILE = (
    '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
    "javascript:window.__pwned=3 {{7*7}} {% raw %}${7*7}"
)


@dataclass
class Site:
    client: TestClient
    state: ServerState
    hostile_trace: str
    agent_trace: str


def write(state: ServerState, spans) -> None:
    batch = normalize(spans, "default")
    price_rows(_BOOK, batch.rows)
    state.store.write_batch(tables(batch.rows, batch.content), None)


def planted(now: datetime) -> tuple[list, str, str]:
    """An hour of steady calls, an agent trace with a retried call and a tool call, and a trace
    whose every free-text field is hostile markup."""
    spans = []
    for minute in range(60):
        at = now - timedelta(minutes=60 - minute)
        feature = "refund-chat" if minute % 3 else "classify"
        model, tokens = ("gpt-4o", 1000) if minute % 3 else ("gpt-4o-mini", 300)
        user = f"u{minute % 4}"
        extra = {"session.id": "s1"}
        spans.append(call(at, feature=feature, model=model, input_tokens=tokens, user=user, extra=extra))
    spans.append(
        call(now - timedelta(minutes=5), error="rate_limit", feature="classify", model="gpt-4o-mini")
    )
    agent = new_trace()
    root = call(
        now - timedelta(minutes=3),
        trace=agent,
        extra={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"},
    )
    root_id = root.span_id
    root.attributes.pop("gen_ai.usage.input_tokens")
    root.attributes.pop("gen_ai.usage.output_tokens")
    root.name = "invoke_agent support"
    messages = (
        '[{"role":"user","parts":[{"type":"text","content":"Where is my refund?"}]},'
        '{"role":"assistant","parts":[{"type":"tool_call","id":"c1","name":"lookup_order",'
        '"arguments":{"order":"A-17"}}]},'
        '{"role":"tool","parts":[{"type":"tool_call_response","id":"c1","response":"shipped"}]}]'
    )
    spans += [
        root,
        call(now - timedelta(minutes=3), trace=agent, parent=root_id, error="rate_limit"),
        call(
            now - timedelta(minutes=3) + timedelta(seconds=2),
            trace=agent,
            parent=root_id,
            extra={
                "tokentrace.retry_attempt": 1,
                "gen_ai.input.messages": messages,
                "gen_ai.output.messages": '[{"role":"assistant","parts":[{"type":"text",'
                '"content":"Your refund was sent."}],"finish_reason":"stop"}]',
                "gen_ai.system_instructions": '[{"type":"text","content":"You are a support agent."}]',
            },
        ),
    ]
    hostile = new_trace()
    content = '[{"role":"user","parts":[{"type":"text","content":' + json.dumps(HOSTILE) + "}]}]"
    spans.append(
        call(
            now - timedelta(minutes=1),
            trace=hostile,
            model=HOSTILE,
            feature=HOSTILE,
            user=HOSTILE,
            extra={"gen_ai.input.messages": content, "app.note": HOSTILE, "session.id": HOSTILE},
        )
    )
    spans[-1].name = HOSTILE
    return spans, agent, hostile


@pytest.fixture
def site(tmp_path) -> Iterator[Site]:
    state = open_state(ServerConfig(data_dir=tmp_path / "data", fsync=False))
    spans, agent, hostile = planted(datetime.now(UTC))
    write(state, spans)
    try:
        with TestClient(create_app(state)) as client:
            yield Site(client, state, hostile, agent)
    finally:
        state.pipeline.close()
        state.store.close()
