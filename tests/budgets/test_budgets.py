"""Budgets: the file's rules, windows, and decisions on memory and Redis counters."""

from __future__ import annotations

import calendar
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.builders.processes import minute_with_room
from tokentrace.budgets import (
    BudgetError,
    MemoryCounters,
    Usage,
    decide,
    estimate,
    parse_policy,
    settlement,
)
from tokentrace.budgets.counters import Entry
from tokentrace.budgets.policy import NANO, window_at
from tokentrace.budgets.redis_counters import RedisCounters
from tokentrace.pricing import PriceBook

BOOK = PriceBook()
ACME = {"tenant_id": "acme", "user_id": "u1", "feature": "chat", "api_key": "sk-acme"}


def policy(text: str):
    return parse_policy(text, "budgets.toml")


@pytest.fixture(autouse=True)
def one_minute() -> None:
    """Each test's decisions fall in one minute's window (some budgets count per minute)."""
    minute_with_room(3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[budgets]]\nusd_per_day = 5", "give exactly one of tenant_id"),
        ('[[budgets]]\ntenant_id = "a"\nuser_id = "b"\nusd_per_day = 5', "give exactly one of"),
        ('[[budgets]]\ntenant_id = "a"', "give a limit"),
        ('[[budgets]]\ntenant_id = "a"\nusd_per_day = -1', "must be a positive number"),
        ('[[budgets]]\ntenant_id = "a"\nusd_per_day = "5"', "must be a positive number"),
        ('[[budgets]]\ntenant_id = "a"\nusd_per_day = nan', "must be a positive number, not nan"),
        ('[[budgets]]\ntenant_id = "a"\nusd_per_day = inf', "must be a positive number, not inf"),
        ('[[budgets]]\ntenant_id = "a"\ntokens_per_minute = inf', "must be a positive number, not inf"),
        ('[[budgets]]\ntenant_id = "a"\ntokens_per_minute = 1.5', "whole number"),
        ('[[budgets]]\ntenant_id = "a"\nusd_per_day = 5\naction = "shout"', "action must be one of"),
        ('[[budgets]]\ntenant_id = "a"\nusd_per_day = 5\naction = "downgrade"', "downgrade_to goes with"),
        ('[[budgets]]\ntenant_id = "a"\nusd_per_day = 5\nlimit = 3', "unknown keys ['limit']"),
        (
            '[[budgets]]\ntenant_id = "a"\nusd_per_day = 5\n[[budgets]]\ntenant_id = "a"\nusd_per_day = 6',
            "names repeat",
        ),
        ("budgets = 3", "array of tables"),
        ("[[budgets]\n", "not valid TOML"),
        ("colour = 1", "unknown keys ['colour']"),
    ],
)
def test_bad_budgets_are_refused_with_the_reason(text, message):
    with pytest.raises(BudgetError, match=r"budgets\.toml") as caught:
        policy(text)
    assert message in str(caught.value)


def test_an_entry_with_two_limits_is_two_budgets_and_keys_never_show():
    p = policy('[[budgets]]\napi_key = "sk-secret-1"\nusd_per_day = 5\ntokens_per_minute = 1000')
    assert [b.limit for b in p.budgets] == ["usd_per_day", "tokens_per_minute"]
    assert all("sk-secret" not in b.name for b in p.budgets)
    assert p.applying({"api_key": "sk-secret-1"}) and not p.applying({"api_key": "other"})


def test_windows_are_utc_day_month_and_minute():
    noon = calendar.timegm((2026, 12, 31, 12, 0, 30))
    assert window_at("day", noon).label == "2026-12-31"
    assert window_at("day", noon).ends_at == calendar.timegm((2027, 1, 1, 0, 0, 0))
    assert window_at("month", noon).label == "2026-12"
    assert window_at("month", noon).ends_at == calendar.timegm((2027, 1, 1, 0, 0, 0))
    assert window_at("month", noon).starts_at == calendar.timegm((2026, 12, 1, 0, 0, 0))
    assert window_at("day", noon).starts_at == calendar.timegm((2026, 12, 31, 0, 0, 0))
    assert window_at("minute", noon).starts_at == noon - 30
    assert window_at("minute", noon).ends_at == noon - 30 + 60


def test_block_refuses_the_call_that_would_pass_the_limit_and_says_why():
    p = policy('[[budgets]]\ntenant_id = "acme"\ntokens_per_minute = 1000')
    counters = MemoryCounters()
    first = decide(counters, p, BOOK, ACME, "openai", "gpt-4o-mini", Usage(100, 500))
    assert first.allowed and counters.read([first.lines[0].key]) == [600]
    second = decide(counters, p, BOOK, ACME, "openai", "gpt-4o-mini", Usage(100, 500))
    assert not second.allowed
    assert "600 of 1000 tokens per minute used" in second.blocked_by
    assert 0 < second.retry_after_s <= 60
    assert counters.read([first.lines[0].key]) == [600]  # a refused call reserves nothing
    # Other tenants are not held by acme's budget.
    other = decide(counters, p, BOOK, {"tenant_id": "globex"}, "openai", "gpt-4o-mini", Usage(100, 900))
    assert other.allowed and other.lines == []


def test_settlement_replaces_the_reservation_by_actual_use():
    p = policy('[[budgets]]\ntenant_id = "acme"\nusd_per_day = 1')
    counters = MemoryCounters()
    reserve = estimate(400, 1000, p)
    assert reserve == Usage(100, 1000)
    decision = decide(counters, p, BOOK, ACME, "openai", "gpt-4o", reserve)
    reserved = counters.read([decision.lines[0].key])[0]
    assert reserved == round((100 * 2.5 + 1000 * 10) / 1e6 * NANO)
    counters.add(settlement(decision, BOOK, "gpt-4o", Usage(90, 20)))
    assert counters.read([decision.lines[0].key])[0] == round((90 * 2.5 + 20 * 10) / 1e6 * NANO)
    # A failed call spent nothing: its reservation is given back whole.
    failed = decide(counters, p, BOOK, ACME, "openai", "gpt-4o", reserve)
    counters.add(settlement(failed, BOOK, "gpt-4o", Usage()))
    assert counters.read([decision.lines[0].key])[0] == round((90 * 2.5 + 20 * 10) / 1e6 * NANO)


def test_warn_counts_and_warns_but_never_refuses():
    p = policy('[[budgets]]\nfeature = "chat"\ntokens_per_minute = 100\naction = "warn"')
    counters = MemoryCounters()
    quiet = decide(counters, p, BOOK, ACME, "openai", "gpt-4o", Usage(10, 50))
    assert quiet.allowed and quiet.warnings == []
    loud = decide(counters, p, BOOK, ACME, "openai", "gpt-4o", Usage(10, 50))
    assert loud.allowed and "120 of 100 tokens per minute used" in loud.warnings[0]


def test_downgrade_moves_the_call_to_the_cheaper_model_and_still_counts_it():
    p = policy(
        '[[budgets]]\ntenant_id = "acme"\nusd_per_day = 0.02\n'
        'action = "downgrade"\ndowngrade_to = "gpt-4o-mini"'
    )
    counters = MemoryCounters()
    first = decide(counters, p, BOOK, ACME, "openai", "gpt-4o", Usage(100, 1000))  # $0.01025
    assert first.allowed and first.model == "gpt-4o" and first.downgraded_by is None
    second = decide(counters, p, BOOK, ACME, "openai", "gpt-4o", Usage(100, 1000))
    assert second.allowed and second.model == "gpt-4o-mini"
    assert second.downgraded_by == "tenant_id=acme/usd_per_day"
    used = counters.read([first.lines[0].key])[0]
    assert used == first.lines[0].amount + second.lines[0].amount > p.budgets[0].units - first.lines[0].amount


def test_a_blocking_budget_still_holds_after_a_downgrade():
    p = policy(
        '[[budgets]]\ntenant_id = "acme"\nusd_per_day = 0.001\n'
        'action = "downgrade"\ndowngrade_to = "gpt-4o-mini"\n'
        '[[budgets]]\nuser_id = "u1"\ntokens_per_minute = 1500'
    )
    counters = MemoryCounters()
    assert decide(counters, p, BOOK, ACME, "openai", "gpt-4o", Usage(100, 1000)).model == "gpt-4o-mini"
    refused = decide(counters, p, BOOK, ACME, "openai", "gpt-4o", Usage(100, 1000))
    assert not refused.allowed and "user_id=u1/tokens_per_minute" in refused.blocked_by


def test_wildcard_budgets_count_each_value_apart():
    p = policy('[[budgets]]\nuser_id = "*"\ntokens_per_minute = 100')
    counters = MemoryCounters()
    assert decide(counters, p, BOOK, {"user_id": "a"}, "openai", "gpt-4o", Usage(0, 100)).allowed
    assert decide(counters, p, BOOK, {"user_id": "b"}, "openai", "gpt-4o", Usage(0, 100)).allowed
    assert not decide(counters, p, BOOK, {"user_id": "a"}, "openai", "gpt-4o", Usage(0, 1)).allowed


@pytest.fixture(params=["memory", "redis"])
def counters(request):
    if request.param == "memory":
        yield MemoryCounters()
        return
    redis_counters = RedisCounters(request.getfixturevalue("redis_url"))
    redis_counters.client.flushdb()
    yield redis_counters
    redis_counters.close()


def test_concurrent_calls_never_pass_a_blocking_limit(counters):
    """Many threads race for one budget: what is admitted never passes the limit, and the limit
    is used up (the calls that fit all got in)."""
    p = policy('[[budgets]]\ntenant_id = "acme"\ntokens_per_minute = 10000')
    admitted = []
    lock = threading.Lock()

    def one(_: int) -> None:
        decision = decide(counters, p, BOOK, ACME, "openai", "gpt-4o-mini", Usage(30, 70))
        if decision.allowed:
            with lock:
                admitted.append(decision)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(300)))
    key = admitted[0].lines[0].key
    assert len(admitted) == 100
    assert counters.read([key]) == [10000]


def test_admit_is_all_or_nothing_and_counters_expire(counters):
    entries = [Entry("t:a", 5, 10, 60), Entry("t:b", 5, 4, 60), Entry("t:c", 5, None, 60)]
    refused = counters.admit(entries)
    assert not refused.admitted and refused.over == (1,)
    assert counters.read(["t:a", "t:b", "t:c"]) == [0, 0, 0]
    assert counters.admit([Entry("t:a", 5, 10, 60), Entry("t:c", 7, None, 60)]).totals == (5, 7)
    if isinstance(counters, RedisCounters):
        assert 0 < counters.client.ttl("t:a") <= 60
