"""The Prometheus families agree with the rollups they come from, and promtool accepts them."""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.builders.planted import UNTIL, call, store_with
from tokentrace.metrics import exposition
from tokentrace.query import aggregates
from tokentrace.store.filters import SpanFilter


@pytest.fixture
def store(open_store):
    at = UNTIL - timedelta(minutes=5)
    spans = [call(at, input_tokens=1000, duration_ms=300, tenant="acme") for _ in range(3)]
    spans += [call(at, model="gpt-4o-mini", input_tokens=20_000, duration_ms=3000, tenant="globex")]
    spans += [call(at, error="rate_limit", tenant="acme"), call(at, error="timeout", tenant="acme")]
    return store_with(open_store(), spans)


def _exposition(store, labels=exposition.DEFAULT_LABELS) -> str:
    class Collector:
        def collect(self):
            return exposition.families(store, "default", labels)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    return generate_latest(registry).decode()


def _samples(text: str) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_counters_and_histograms_match_the_rollups(store):
    samples = _samples(_exposition(store))
    [total] = aggregates.rollup(store, SpanFilter("default"))
    requests = {s.labels["request_model"]: s.value for s in samples["tokentrace_requests"]}
    assert requests == {"gpt-4o": 5, "gpt-4o-mini": 1}
    cost = sum(s.value for s in samples["tokentrace_cost_usd"] if s.name.endswith("_total"))
    assert cost == pytest.approx(total["cost_usd"])
    errors = {(s.labels["error_type"], s.labels["tenant_id"]): s.value for s in samples["tokentrace_errors"]}
    assert errors == {("rate_limit", "acme"): 1, ("timeout", "acme"): 1}
    input_tokens = sum(
        s.value
        for s in samples["tokentrace_tokens"]
        if s.labels["type"] == "input" and s.name.endswith("_total")
    )
    assert input_tokens == 23_000

    duration = samples["gen_ai_client_operation_duration_seconds"]
    mini = {
        s.labels["le"]: s.value
        for s in duration
        if s.name.endswith("_bucket") and s.labels["request_model"] == "gpt-4o-mini"
    }
    assert mini["2.56"] == 0 and mini["5.12"] == 1 and mini["+Inf"] == 1
    usage = [s for s in samples["gen_ai_client_token_usage"] if s.name.endswith("_sum")]
    assert sum(s.value for s in usage if s.labels["gen_ai_token_type"] == "input") == 23_000


def test_labels_can_drop_the_tenant_and_add_the_user(store):
    samples = _samples(_exposition(store, ("request_model", "user_id")))
    [request] = [s for s in samples["tokentrace_requests"] if s.labels["request_model"] == "gpt-4o-mini"]
    assert set(request.labels) == {"project", "request_model", "user_id"}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus) not installed")
def test_promtool_lints_the_exposition(store):
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=_exposition(store), capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
