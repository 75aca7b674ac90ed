"""Tail sampling by retention: traces older than the recent window keep their detail only for a
reason (errors, cost, slowness, scores, alerts, marked tenants, the base rate); the others lose
spans and content, and not a cent or a token leaves the totals, even when late spans later
make their minutes be recomputed. Each test runs on both stores."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from tokentrace.canonical import USER_HOUR
from tokentrace.ingest.columns import tables
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.prepare import price_rows
from tokentrace.ingest.raw import RawSpan
from tokentrace.pricing import PriceBook
from tokentrace.query import aggregates, rollups
from tokentrace.query.records import records
from tokentrace.store.filters import ScoreCondition, SpanFilter
from tokentrace.store.protocol import Store
from tokentrace.store.sampling import SamplingPolicy, keeps_by_base_rate

NOW = datetime.now(UTC).replace(microsecond=0)
OLD = NOW - timedelta(days=4)  # the old traces start here, over 6 hours
_BOOK = PriceBook()


def _ns(t: datetime) -> int:
    return int(t.timestamp() * 1e9)


def _trace(rng: random.Random, n: int, at: datetime, **tags) -> list[RawSpan]:
    """An agent root with two chat calls under it (the first with its prompt captured)."""
    trace_id = f"{rng.getrandbits(128):032x}"
    tenant = tags.get("tenant", rng.choice(("acme", "globex")))
    root_attributes = {
        "gen_ai.operation.name": "invoke_agent",
        "tokentrace.tenant_id": tenant,
        "tokentrace.user_id": tags.get("user", f"u{rng.randint(1, 20)}"),
    }
    slow = tags.get("slow", False)
    total_ms = 60_000 if slow else rng.uniform(800, 1500)
    spans = [
        RawSpan(
            trace_id,
            f"{n:08x}{0:08x}",
            "",
            "agent support",
            1,
            _ns(at),
            _ns(at) + int(total_ms * 1e6),
            0,
            "",
            root_attributes,
            {"service.name": "bot"},
        )
    ]
    for k in (1, 2):
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": tags.get("input_tokens", rng.randint(100, 2000)),
            "gen_ai.usage.output_tokens": rng.randint(10, 300),
        }
        if k == 1:
            attributes["gen_ai.input.messages"] = (
                '[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]'
            )
        status, error = 0, None
        if tags.get("error") and k == 2:
            status, error = 2, "rate_limit"
            attributes["error.type"] = error
        start = at + timedelta(milliseconds=100 * k)
        spans.append(
            RawSpan(
                trace_id,
                f"{n:08x}{k:08x}",
                f"{n:08x}{0:08x}",
                "chat gpt-4o",
                3,
                _ns(start),
                _ns(start) + int(rng.uniform(200, 700) * 1e6),
                status,
                "",
                attributes,
                {"service.name": "bot"},
            )
        )
    return spans


def _write(store: Store, raws: list[RawSpan]) -> None:
    batch = normalize(raws, "default")
    price_rows(_BOOK, batch.rows)
    store.write_batch(tables(batch.rows, batch.content, batch.scores), None)


@pytest.fixture()
def world(open_store):
    """400 old traces (a few of each kind to keep) and 20 recent ones, rolled up."""
    rng = random.Random(11)
    store = open_store()
    special = {
        "error": [dict(error=True)] * 6,
        "cost": [dict(input_tokens=400_000)],
        "slow": [dict(slow=True)],
        "tenant": [dict(tenant="vip")] * 3,
        "plain": [{}] * 389,
    }
    old: dict[str, list[str]] = {}
    prompted: dict[str, str] = {}  # trace → its span with a prompt
    raws, n = [], 0
    for kind, variants in special.items():
        for tags in variants:
            n += 1
            spans = _trace(rng, n, OLD + timedelta(seconds=rng.uniform(0, 6 * 3600)), **tags)
            old.setdefault(kind, []).append(spans[0].trace_id)
            prompted[spans[0].trace_id] = spans[1].span_id
            raws += spans
    recent = []
    for _ in range(20):
        n += 1
        # 3 hours back: before the hourly rollup's mark at any minute of the clock (an hour
        # back, they crossed it when the tests ran in an hour's first two minutes)
        spans = _trace(rng, n, NOW - timedelta(hours=3, seconds=rng.uniform(0, 600)))
        recent.append(spans[0].trace_id)
        raws += spans
    _write(store, raws)
    # a low human score on one plain trace, and an alert that named another as an example
    scored, alerted = old["plain"][0], old["plain"][1]
    store.write_batch(
        tables(
            scores=[
                {
                    "project_id": "default",
                    "score_id": "s1",
                    "trace_id": scored,
                    "span_id": "",
                    "name": "helpful",
                    "data_type": "numeric",
                    "value": 0.0,
                    "string_value": None,
                    "comment": None,
                    "source": "api",
                    "created_at": NOW,
                }
            ]
        ),
        None,
    )
    store.save_alert_evaluation(
        "default",
        [],
        [],
        [
            {
                "event_id": "e1",
                "rule": "cost",
                "group_key": "",
                "status": "firing",
                "at": OLD,
                "payload": {"triage": {"causes": [{"example_trace_ids": [alerted]}]}},
            }
        ],
    )
    store.advance_rollups(NOW - timedelta(minutes=2))
    return store, old, recent, scored, alerted, prompted


POLICY = SamplingPolicy(
    base_rate=0.1,
    keep_cost_above_usd=0.5,
    keep_scores=(ScoreCondition("helpful", "<", 0.5),),
    keep_tenants=("vip",),
)
WHOLE = SpanFilter("default", since=OLD - timedelta(hours=1), until=NOW)


def _totals(store):
    by_tenant = {
        r["tenant_id"]: (r["requests"], r["spans"], r["total_tokens"], r["errors"], round(r["cost_usd"], 9))
        for r in rollups.aggregate(store, WHOLE, ("tenant_id",), None)
    }
    by_user = {
        (r["user_id"], r["status"]): (r["requests"], r["total_tokens"], round(r["cost_usd"], 9))
        for r in rollups.aggregate(store, WHOLE, ("user_id", "status"), 3600 * 24 * 10)
    }
    latency = rollups.quantiles(store, WHOLE, (), ("duration_ms",), (0.5, 0.99), None)
    return by_tenant, by_user, latency, _calls(store)


def _calls(store) -> dict[str | None, tuple[int, int, float]]:
    """What triage reads: the counted LLM calls, stored or sampled out; by tenant, their count,
    tokens and cost."""
    calls = records(store.llm_calls(WHOLE, ("tenant_id", "total_tokens", "cost_usd")))
    found: dict[str | None, tuple[int, int, float]] = {}
    for c in calls:
        n, tokens, cost = found.get(c["tenant_id"], (0, 0, 0.0))
        found[c["tenant_id"]] = (n + 1, tokens + (c["total_tokens"] or 0), cost + (c["cost_usd"] or 0))
    return {k: (n, tokens, round(cost, 9)) for k, (n, tokens, cost) in found.items()}


def _trace_ids(store) -> set[str]:
    return {r["trace_id"] for r in store.spans(SpanFilter("default"), ("trace_id",)).to_pylist()}


def test_traces_keep_detail_for_a_reason_and_the_totals_stay_whole(world):
    store, old, recent, scored, alerted, prompted = world
    before = _totals(store)
    verdicts = {
        r["trace_id"]: r["kept_because"] for r in store.apply_sampling("default", POLICY, NOW).to_pylist()
    }

    assert set(verdicts) == {t for ids in old.values() for t in ids}  # every old trace judged once
    assert all(verdicts[t] == "error" for t in old["error"])
    assert verdicts[old["cost"][0]] == "cost"
    assert verdicts[old["slow"][0]] == "slow"
    assert all(verdicts[t] == "tenant" for t in old["tenant"])
    assert (verdicts[scored], verdicts[alerted]) == ("score", "alert")
    rest = old["plain"][2:]
    slowest = [t for t in rest if verdicts[t] == "slow"]  # above p99 of "agent support" traces
    assert len(slowest) <= 4
    rest = [t for t in rest if t not in slowest]
    assert all(verdicts[t] == ("base_rate" if keeps_by_base_rate(t, 0.1) else None) for t in rest)
    assert 10 < sum(verdicts[t] == "base_rate" for t in rest) < 70  # ~10% of 387

    kept = {t for t, reason in verdicts.items() if reason}
    assert _trace_ids(store) == kept | set(recent)  # the recent window is untouched
    dropped = next(t for t, reason in verdicts.items() if reason is None)
    assert store.trace_spans("default", dropped).num_rows == 0
    assert store.retained_because("default", old["cost"][0]) == "cost"
    assert store.retained_because("default", dropped) is None
    prompts = {t: store.content("default", t, prompted[t]) for t in kept | {dropped}}
    assert prompts[dropped] is None  # the dropped trace's content is gone, the kept ones' stays
    assert all(prompts[t]["input_messages"] for t in kept)

    assert _totals(store) == before  # to the cent, by tenant and by user; the same sketches

    # A sweep later judges nothing again.
    assert store.apply_sampling("default", POLICY, NOW).num_rows == 0


def test_a_late_span_in_a_sampled_minute_adds_to_what_was_there(world):
    store, *_ = world
    store.apply_sampling("default", POLICY, NOW)
    by_tenant, by_user, *_ = _totals(store)
    # A late call in a minute whose other spans were sampled out: the minute (and the user's
    # hour) are recomputed from the spans left, and the sampled-out numbers stay.
    late = [
        s for s in _trace(random.Random(5), 9999, OLD + timedelta(hours=3), user="u1") if s.parent_span_id
    ]
    late[0].parent_span_id = late[1].parent_span_id = ""
    _write(store, late)
    after_tenant, after_user, *_ = _totals(store)
    tenant = late[0].attributes.get("tokentrace.tenant_id")  # none: the root was not resent
    assert tenant is None
    assert after_tenant[None][0] == by_tenant.get(None, (0,))[0] + 2
    assert after_tenant["acme"] == by_tenant["acme"] and after_tenant["globex"] == by_tenant["globex"]
    grand = sum(v[0] for v in after_user.values())
    assert grand == sum(v[0] for v in by_user.values()) + 2


def test_simulate_judges_stored_traces_without_changing_anything(world):
    store, old, recent, *_ = world
    spans_before = store.totals("default")["spans"]
    simulated = store.simulate_sampling(
        "default",
        SamplingPolicy(base_rate=0.0, keep_errors=True, keep_slower_than_percentile=None, keep_alerted=False),
        OLD - timedelta(hours=1),
        NOW,
    )
    reasons = {r["trace_id"]: r["kept_because"] for r in simulated.to_pylist()}
    assert len(reasons) == sum(len(v) for v in old.values()) + len(recent)
    assert {t for t, r in reasons.items() if r} == set(old["error"])
    assert store.totals("default")["spans"] == spans_before
    row = next(r for r in simulated.to_pylist() if r["trace_id"] == old["cost"][0])
    assert row["spans"] == 3 and row["cost_usd"] > 0.5 and row["detail_bytes"] > 0


def test_nothing_is_judged_before_the_rollups_hold_it(open_store):
    store = open_store()
    _write(store, _trace(random.Random(1), 1, OLD))
    assert store.apply_sampling("default", POLICY, NOW).num_rows == 0  # no rollup marks yet
    assert store.totals("default")["spans"] == 3


def test_user_hours_keep_sampled_out_users(world):
    store, *_ = world
    hours = records(store.rollup_aggregate(WHOLE, ("user_id",), None, USER_HOUR))
    store.apply_sampling("default", POLICY, NOW)
    after = records(store.rollup_aggregate(WHOLE, ("user_id",), None, USER_HOUR))
    assert {r["user_id"]: r["requests"] for r in after} == {r["user_id"]: r["requests"] for r in hours}
    assert aggregates.rollup(store, WHOLE, ("user_id",), distinct=False)


def test_kept_traces_lose_their_detail_after_keep_for_and_the_totals_stay_whole(world):
    store, _, recent, *_ = world
    policy = SamplingPolicy(base_rate=0.1, keep_tenants=("vip",), keep_for=timedelta(days=5))
    first = store.apply_sampling("default", policy, NOW)
    kept = {r["trace_id"] for r in first.to_pylist() if r["kept_because"]}
    assert kept and not any(first["expired"].to_pylist())  # 4 days old: within keep_for
    before = _totals(store)

    later = NOW + timedelta(days=2)  # the old traces are 6 days old now; the recent ones 2
    second = {r["trace_id"]: r for r in store.apply_sampling("default", policy, later).to_pylist()}
    assert {t for t, r in second.items() if r["expired"]} == kept
    assert all(second[t]["kept_because"] is None for t in kept)
    assert {t for t, r in second.items() if not r["expired"]} == set(recent)  # judged for the first time
    assert not _trace_ids(store) & kept  # their spans are gone
    assert all(store.retained_because("default", t) is None for t in kept)
    assert _totals(store) == before  # and not a cent of theirs
    assert store.apply_sampling("default", policy, later).num_rows == 0  # nothing expires twice


# ClickHouse has no transactions: a sweep cut short at any statement must leave every total
# whole, and the next sweep must finish or undo it.


def _versions_per_minute(store) -> int:
    """The most versions any minute bucket has stored (rows not sampled out)."""
    return store._ch.query(
        "SELECT max(n) AS n FROM (SELECT uniqExact(version) AS n FROM rollup_minute "
        "WHERE NOT sampled_out GROUP BY project_id, minute)"
    )["n"][0].as_py()


class _Crash(Exception):
    pass


@pytest.mark.parametrize("store_kind", ["clickhouse"])
def test_a_sweep_cut_short_before_it_commits_counts_nothing_and_is_redone(world, monkeypatch):
    from tokentrace.store.clickhouse import rollups as clickhouse_rollups
    from tokentrace.store.clickhouse import sampling as clickhouse_sampling

    store, old, *_ = world
    before = _totals(store)
    real = clickhouse_rollups.recompute

    def crash_in_the_sweeps_recompute(ch, changes, found, sweep=0):
        if sweep:
            # half done: one grain's rows written under the sweep's id, then the process dies
            real(ch, list(changes)[:3], {"rollup_minute": found["rollup_minute"]}, sweep)
            raise _Crash
        return real(ch, changes, found, sweep)

    monkeypatch.setattr(clickhouse_rollups, "recompute", crash_in_the_sweeps_recompute)
    with pytest.raises(_Crash):
        store.apply_sampling("default", POLICY, NOW)
    # Its sampled-out rows and rolled-up-again buckets do not count; no span was deleted.
    assert _totals(store) == before
    assert _trace_ids(store) >= {t for ids in old.values() for t in ids}

    # A late call into an old minute meanwhile: its roll-up leaves the listed traces out (they
    # may be frozen any moment), and they count again once the sweep is abandoned.
    monkeypatch.setattr(clickhouse_rollups, "recompute", real)
    listed = store._ch.query("SELECT trace_id FROM sampling_pending LIMIT 1")["trace_id"][0].as_py()
    at = store.trace_spans("default", listed)["start_time"][0].as_py()
    late = [s for s in _trace(random.Random(5), 9999, at) if s.parent_span_id]  # in a listed trace's minute
    late[0].parent_span_id = late[1].parent_span_id = ""
    _write(store, late)
    assert store.apply_sampling("default", POLICY, NOW).num_rows == 0  # it may still be running
    kept_before = {t for ids in old.values() for t in ids if store.retained_because("default", t)}
    # Abandoned an hour on; the policy has changed meanwhile and now keeps every trace, so only
    # the abandoning rolls the late call's minute up again with the listed traces in it.
    monkeypatch.setattr(clickhouse_sampling, "_STALE_NS", 0)
    verdicts = store.apply_sampling("default", SamplingPolicy(base_rate=1.0), NOW)
    judged = {r["trace_id"] for r in verdicts.to_pylist()}
    everything = {t for ids in old.values() for t in ids} | {late[0].trace_id}
    assert judged | kept_before == everything and not judged & kept_before
    assert _trace_ids(store) >= everything
    by_tenant, by_user, *_ = _totals(store)
    assert by_tenant[None][0] == before[0].get(None, (0,))[0] + 2  # the late call, once
    assert {k: v for k, v in by_tenant.items() if k} == {k: v for k, v in before[0].items() if k}
    assert sum(v[0] for v in by_user.values()) == sum(v[0] for v in before[1].values()) + 2
    states = store._ch.query("SELECT state FROM sampling_sweeps FINAL ORDER BY sweep")["state"].to_pylist()
    assert states == ["abandoned", "done"]
    assert _versions_per_minute(store) == 1  # superseded versions and the abandoned rows deleted


@pytest.mark.parametrize("store_kind", ["clickhouse"])
def test_a_sweep_cut_short_after_it_commits_is_finished_and_a_late_call_counts_once(world, monkeypatch):
    from tokentrace.store.clickhouse import sampling as clickhouse_sampling

    store, old, *_ = world
    before = _totals(store)
    real = clickhouse_sampling._finish
    monkeypatch.setattr(clickhouse_sampling, "_finish", lambda *a: (_ for _ in ()).throw(_Crash()))
    with pytest.raises(_Crash):
        verdicts = store.apply_sampling("default", POLICY, NOW)
    monkeypatch.setattr(clickhouse_sampling, "_finish", real)
    assert _totals(store) == before  # committed: sampled-out rows count, the spans still stored do not

    # A late call lands in an old minute: its roll-up leaves the committed sweep's spans out.
    late = [s for s in _trace(random.Random(5), 9999, OLD + timedelta(hours=3)) if s.parent_span_id]
    late[0].parent_span_id = late[1].parent_span_id = ""
    _write(store, late)
    by_tenant, *_ = _totals(store)
    assert sum(v[0] for v in by_tenant.values()) == sum(v[0] for v in before[0].values()) + 2

    verdicts = store.apply_sampling("default", POLICY, NOW)  # finishes the last one first
    kept = {r["trace_id"] for r in verdicts.to_pylist() if r["kept_because"]}
    stored = _trace_ids(store) & {t for ids in old.values() for t in ids}
    assert stored == {t for t in stored if store.retained_because("default", t)}  # dropped ones deleted
    assert kept <= stored
    after, *_ = _totals(store)
    assert after == by_tenant


@pytest.mark.parametrize("store_kind", ["clickhouse"])
def test_a_sweep_over_more_buckets_than_a_recompute_names_rolls_up_their_range(world, monkeypatch):
    from tokentrace.store.clickhouse import rollups as clickhouse_rollups

    store, old, *_ = world
    monkeypatch.setattr(clickhouse_rollups, "_MOST_CELLS", 10)  # a big sweep's many buckets
    before = _totals(store)
    verdicts = store.apply_sampling("default", POLICY, NOW)
    assert verdicts.num_rows == sum(len(ids) for ids in old.values())
    assert _totals(store) == before
