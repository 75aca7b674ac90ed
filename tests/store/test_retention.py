"""Retention (delete what is older than a cutoff) and project deletion, on both stores: the
spans, content, scores and rollups go together, and nothing else does."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pyarrow.compute as pc

from tests.builders.random_calls import random_call
from tokentrace.canonical import MINUTE
from tokentrace.ingest.columns import tables
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.prepare import price_rows
from tokentrace.pricing import PriceBook
from tokentrace.store.catalog import retention_cutoff
from tokentrace.store.filters import SpanFilter

NOW = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)
OLD, RECENT = NOW - timedelta(days=5), NOW - timedelta(hours=6)
PROMPT = '[{"role": "user", "parts": [{"type": "text", "content": "hello"}]}]'


def _write(store, project: str, first: int, at: datetime, calls: int = 40) -> list[str]:
    rng = random.Random(first)
    raws = [random_call(rng, n, at + timedelta(seconds=n)) for n in range(first, first + calls)]
    for raw in raws:
        raw.attributes["gen_ai.input.messages"] = PROMPT
    batch = normalize(raws, project)
    price_rows(PriceBook(), batch.rows)
    score = {
        "project_id": project, "score_id": f"s{first}", "trace_id": raws[0].trace_id, "span_id": "",
        "name": "helpful", "data_type": "numeric", "value": 1.0, "string_value": None, "comment": None,
        "source": "api", "created_at": at,
    }  # fmt: skip
    store.write_batch(tables(batch.rows, batch.content, [score]), None)
    return [r.trace_id for r in raws]


def _spans(store, project: str) -> int:
    return store.spans(SpanFilter(project), ("span_id",)).num_rows


def _rolled_up_tokens(store, project: str, since: datetime) -> int:
    rows = store.rollup_aggregate(SpanFilter(project, since, NOW), (), None, MINUTE)
    return int(pc.sum(rows.column("input_tokens")).as_py() or 0) if rows.num_rows else 0


def test_retention_deletes_old_spans_content_scores_and_rollups_only(open_store):
    store = open_store()
    old = _write(store, "default", 1, OLD)
    recent = _write(store, "default", 1000, RECENT)
    store.advance_rollups(NOW)
    recent_tokens = int(
        pc.sum(
            store.spans(SpanFilter("default", RECENT - timedelta(hours=1)), ("input_tokens",)).column(0)
        ).as_py()
    )
    assert _rolled_up_tokens(store, "default", OLD - timedelta(days=1)) > recent_tokens  # old ones counted

    deleted = store.delete_before(retention_cutoff(NOW, timedelta(days=2)))

    assert deleted["spans"] == 40 and deleted["scores"] == 1 and deleted["content"] == 40
    assert deleted["rollup_minute"] > 0 and deleted["rollup_user_hour"] > 0
    assert _spans(store, "default") == 40
    assert store.trace_spans("default", old[0]).num_rows == 0
    assert store.trace_spans("default", recent[0]).num_rows == 1
    assert store.content("default", old[0], f"{1:016x}") is None
    assert store.content("default", recent[0], f"{1000:016x}") is not None
    assert store.scores("default", old[0]).num_rows == 0 and store.scores("default", recent[0]).num_rows == 1
    # The rollups now hold exactly what the spans hold.
    assert _rolled_up_tokens(store, "default", OLD - timedelta(days=1)) == recent_tokens
    assert store.delete_before(retention_cutoff(NOW, timedelta(days=2)))["spans"] == 0  # idempotent


def test_deleting_a_project_deletes_its_data_and_keys_and_no_other(open_store):
    store = open_store()
    store.create_project("acme", "hash-acme")
    store.create_project("globex", "hash-globex")
    _write(store, "acme", 1, RECENT)
    kept = _write(store, "globex", 500, RECENT)
    store.put_alert_rule("acme", "spend", "{}")
    store.advance_rollups(NOW)

    deleted = store.delete_project("acme")

    assert deleted["spans"] == 40 and deleted["api_keys"] == 1 and deleted["projects"] == 1
    assert _spans(store, "acme") == 0 and _rolled_up_tokens(store, "acme", OLD) == 0
    assert store.project_for_key("hash-acme") is None and store.alert_rules("acme") == []
    assert [p.project_id for p in store.projects()] == ["default", "globex"]
    assert _spans(store, "globex") == 40 and store.project_for_key("hash-globex") == "globex"
    assert store.scores("globex", kept[0]).num_rows == 1
    assert _rolled_up_tokens(store, "globex", OLD) > 0


def test_the_cutoff_is_whole_hours():
    assert retention_cutoff(NOW, timedelta(days=30)) == datetime(2026, 10, 21, 12, tzinfo=UTC)
