"""`tokentrace.budget`: an app holds its own calls to the gateway's budgets, counted in the same
Redis, settled to the provider's usage; refusals, downgrades and warnings show in the traces."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import openai
import orjson
import pytest
import redis
from anthropic.types import Usage as AnthropicUsage
from openai.types import CompletionUsage
from openai.types.responses import ResponseUsage

import tokentrace
from tests.builders.paths import ROOT
from tests.builders.processes import ServerProcess, day_with_room, minute_with_room
from tests.builders.receiver import Receiver
from tokentrace.budgets import Usage, parse_policy
from tokentrace.budgets.decisions import cost_units
from tokentrace.budgets.policy import counter_key, window_at
from tokentrace.pricing import PriceBook
from tokentrace.sdk.budget import BudgetExceeded, usage_of

BUDGETS = """
[[budgets]]
tenant_id = "acme"
usd_per_day = 0.002
action = "block"

[[budgets]]
tenant_id = "beta"
usd_per_day = 0.0006
action = "downgrade"
downgrade_to = "gpt-4o-mini"

[[budgets]]
feature = "refund-chat"
usd_per_day = 0.0005
action = "warn"

[[budgets]]
tenant_id = "*"
name = "others"
usd_per_day = 1.0

[alerts]
webhooks = ["{url}"]
"""
BOOK = PriceBook()


def _counter(client: redis.Redis, scope: str, value: str, name: str | None = None) -> int:
    budget = next(
        b
        for b in parse_policy(BUDGETS.format(url="http://x"), "t").budgets
        if b.scope == scope and (name is None or b.name == name)
    )
    raw = client.get(counter_key(budget, value, window_at(budget.window)))
    return int(raw or 0)


def _spans(server: ServerProcess, **params: str) -> list[dict]:
    with server.client() as c:
        lines = c.get("/api/v1/spans/export", params=params).content.splitlines()
    return [orjson.loads(line) for line in lines]


def _cost(model: str, usage: dict, provider: str = "openai") -> int:
    return cost_units(BOOK, provider, model, usage_of(usage)) or 0


def test_an_app_holds_its_calls_to_budgets_shared_with_the_gateway(
    tmp_path, server: ServerProcess, provider_url: str, redis_url: str, start_gateway
) -> None:
    day_with_room(60)  # the budgets count per UTC day: the app's calls and the counters read after in one
    receiver = Receiver()
    budgets = tmp_path / "budgets.toml"
    budgets.write_text(BUDGETS.format(url=receiver.url))
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    env = {**os.environ, "TT_TEST_BUDGETS": str(budgets), "TT_TEST_REDIS": redis_url}
    result = subprocess.run(
        [sys.executable, "-m", "tests.sdk.app", "budgets", provider_url, server.url],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    facts = orjson.loads(result.stdout.strip().splitlines()[-1])

    # Block: acme's calls run until the next one's worst case would pass $0.002; the counter
    # then holds exactly what the answered calls cost (streamed ones included), not the reservations.
    acme = facts["acme"]
    spent = sum(_cost("gpt-4o", call["usage"]) for call in acme)
    assert 2 <= len(acme) < 50 and facts["refused"]["budget"] == "tenant_id=acme/usd_per_day"
    assert "0.002 USD per day (UTC)" in facts["refused"]["message"]
    assert 0 < facts["refused"]["retry_after_s"] <= 86400
    assert _counter(client, "tenant_id", "acme") == spent <= 0.002 * 1e9
    # Warn: the feature's budget warned once passed, and let the calls through.
    assert acme[0]["warnings"] == [] and all(call["warnings"] for call in acme[2:])
    # Downgrade: beta's calls moved to the cheaper model once its budget was reached.
    models = [call["model"] for call in facts["beta"]]
    assert models[0].startswith("gpt-4o") and not models[0].startswith("gpt-4o-mini")
    assert models[-1].startswith("gpt-4o-mini")
    # A failed call gave its reservation back; a settled anthropic call counts its usage.
    assert _counter(client, "tenant_id", "gamma", "others") == 0
    assert _counter(client, "tenant_id", "delta", "others") == _cost(
        "claude-haiku-4-5", facts["delta"], "anthropic"
    )

    # The traces say what the budgets did: the refusal is a span with error type budget.
    server.wait_for_spans(len(acme) + 1 + len(facts["beta"]) + 2)
    rows = server.get("/api/v1/rollups", group_by="tenant_id,error_type", since="1h")["rows"]
    by = {(r["tenant_id"], r["error_type"]): r["requests"] for r in rows}
    assert by[("acme", "budget")] == 1 and by[("acme", None)] == len(acme)
    [refusal] = _spans(server, tenant_id="acme", error_type="budget")
    assert refusal["attributes"]["tokentrace.budget.name"] == ["tenant_id=acme/usd_per_day"]
    downgraded = _spans(server, tenant_id="beta", request_model="gpt-4o-mini")
    assert downgraded and all(
        s["attributes"]["tokentrace.budget.action"] == ["downgrade"]
        and s["attributes"]["tokentrace.budget.requested_model"] == "gpt-4o"
        for s in downgraded
    )
    deadline = time.monotonic() + 10
    while len(receiver.bodies) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    actions = sorted((body["budget"], body["action"]) for body in receiver.bodies)
    assert ("tenant_id=acme/usd_per_day", "block") in actions
    assert ("feature=refund-chat/usd_per_day", "warn") in actions

    # A gateway on the same Redis sees the app's spend: acme is refused there too.
    gateway = start_gateway(
        server.url, "--upstream", f"openai={provider_url}", "--budgets", str(budgets), "--redis", redis_url
    )
    through = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-sim", max_retries=0)
    with pytest.raises(openai.RateLimitError, match="budget exceeded"):
        through.chat.completions.create(
            model="gpt-4o",
            max_tokens=40,
            messages=[{"role": "user", "content": "Where is my refund?"}],
            extra_headers={"x-tokentrace-tenant": "acme"},
        )


def test_usage_of_reads_each_providers_usage_in_the_otel_meaning() -> None:
    chat = CompletionUsage(
        prompt_tokens=100,
        completion_tokens=20,
        total_tokens=120,
        prompt_tokens_details={"cached_tokens": 60, "cache_write_tokens": 30},
    )
    assert usage_of(chat) == Usage(100, 20, 60, 30)
    responses = ResponseUsage(
        input_tokens=50,
        output_tokens=5,
        total_tokens=55,
        input_tokens_details={"cached_tokens": 10, "cache_write_tokens": 0},
        output_tokens_details={"reasoning_tokens": 2},
    )
    assert usage_of(responses) == Usage(50, 5, 10, 0)
    # anthropic leaves cached tokens out of input_tokens; budgets count them in, priced apart
    claude = AnthropicUsage(
        input_tokens=7, output_tokens=3, cache_read_input_tokens=200, cache_creation_input_tokens=40
    )
    assert usage_of(claude) == Usage(247, 3, 200, 40)
    assert usage_of({"input_tokens": 7, "output_tokens": 3}) == Usage(7, 3, 0, 0)
    assert usage_of({"prompt_tokens": 9, "completion_tokens": "x"}) == Usage(9, 0, 0, 0)  # junk is 0


@pytest.fixture
def memory_budgets():
    policy = parse_policy('[[budgets]]\ntenant_id = "acme"\ntokens_per_minute = 1000\n', "t")
    tokentrace.budget.configure(policy=policy)
    yield
    tokentrace.budget.reset()


def test_check_needs_configure_and_one_source() -> None:
    tokentrace.budget.reset()
    with pytest.raises(RuntimeError, match="configure"):
        tokentrace.budget.check(model="gpt-4o", tenant_id="acme")
    with pytest.raises(TypeError, match="one of them"):
        tokentrace.budget.configure()


def test_tags_come_from_the_context_and_reservations_settle_or_stay(memory_budgets) -> None:
    from tokentrace.sdk import budget

    minute_with_room(5)  # the steps below share one minute's window

    with tokentrace.context(tenant_id="acme"):
        # No instrumented call reported inside: the worst case (400 + 100) stays counted.
        with budget.check(model="gpt-4o", max_tokens=100, input_tokens=400):
            pass
        # The block failed before any call: nothing was used.
        with pytest.raises(ValueError), budget.check(model="gpt-4o", max_tokens=100, input_tokens=400):
            raise ValueError("the app's own failure")
        # Settled by hand to the usage.
        grant = budget.check(model="gpt-4o", max_tokens=100, input_tokens=400)
        grant.settle({"prompt_tokens": 30, "completion_tokens": 5})
        grant.settle({"prompt_tokens": 999, "completion_tokens": 999})  # a second settle does nothing
        with pytest.raises(BudgetExceeded) as refused:
            budget.check(model="gpt-4o", max_tokens=500, input_tokens=0)  # 535 + 500 > 1000
    assert refused.value.budget == "tenant_id=acme/tokens_per_minute"
    assert 0 < refused.value.retry_after_s <= 60
    assert "535 of 1000 tokens per minute used" in str(refused.value)
    # Another tenant, or none, is not held by acme's budget.
    budget.check(model="gpt-4o", max_tokens=900, input_tokens=0, tenant_id="beta").settle()
    budget.check(model="gpt-4o", max_tokens=900, input_tokens=0).settle()
