"""Job leases: the jobs that must run on one node at a time (evaluating, alerting, sampling
sweeps) run on the node holding theirs. On ClickHouse, nodes are stores of their own over one
database (chDB runs in one process: they share its engine, their statements interleave); a
DuckDB file has one process, which holds every lease."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import orjson

from tokentrace.evals.config import parse_evaluators
from tokentrace.evals.judge_trace import JUDGE_PROJECT
from tokentrace.ingest.columns import tables
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.prepare import price_rows
from tokentrace.ingest.raw import RawSpan
from tokentrace.jobs.evaluate import Evaluations
from tokentrace.jobs.lease import lease_for
from tokentrace.pricing import PriceBook
from tokentrace.store.clickhouse import ClickHouseStore
from tokentrace.store.duckdb import DuckDBStore
from tokentrace.store.filters import SpanFilter

NOW = datetime.now(UTC).replace(microsecond=0)
MINUTE = timedelta(minutes=1)


def test_a_lease_is_one_nodes_until_it_expires(nodes):
    a, b = nodes
    assert a.hold_lease("evaluate", "node-a", NOW, MINUTE)
    assert not b.hold_lease("evaluate", "node-b", NOW + timedelta(seconds=30), MINUTE)
    assert a.hold_lease("evaluate", "node-a", NOW + timedelta(seconds=50), MINUTE)  # renewed
    assert not b.hold_lease("evaluate", "node-b", NOW + timedelta(seconds=100), MINUTE)
    assert b.hold_lease("alerts", "node-b", NOW, MINUTE)  # another job's lease is another's
    # node-a stops renewing: once its lease has expired, node-b takes it, and keeps it
    later = NOW + timedelta(seconds=111)
    assert b.hold_lease("evaluate", "node-b", later, MINUTE)
    assert not a.hold_lease("evaluate", "node-a", later + timedelta(seconds=1), MINUTE)


def test_nodes_taking_a_free_lease_at_once_agree_on_one(nodes):
    start = threading.Barrier(len(nodes))
    held: dict[str, bool] = {}

    def take(store: ClickHouseStore) -> None:
        start.wait()
        held[store.node] = store.hold_lease("sampling", store.node, NOW, MINUTE)

    threads = [threading.Thread(target=take, args=(store,)) for store in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(held.values()) == [False, True]


def test_duckdbs_one_process_holds_every_lease(tmp_path):
    store = DuckDBStore(tmp_path / "one.duckdb")
    assert store.hold_lease("evaluate", "node-a", NOW, MINUTE)
    assert store.hold_lease("evaluate", "node-b", NOW, MINUTE)
    store.close()


def _call(n: int) -> RawSpan:
    start = int((NOW - timedelta(minutes=5)).timestamp() * 1e9) + n
    said = [{"role": "assistant", "parts": [{"type": "text", "content": f"Answer {n}"}]}]
    return RawSpan(
        f"{n:032x}", f"{n:016x}", "", "chat", 3, start, start + 1_000_000, 0, "",
        {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
         "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 10,
         "gen_ai.usage.output_tokens": 5, "gen_ai.output.messages": orjson.dumps(said).decode()},
        {"service.name": "app"},
    )  # fmt: skip


def test_two_nodes_running_the_evaluation_job_judge_each_call_once(nodes, provider_url):
    """Both nodes run the job (no --ingest-only), each run only while it holds the lease: every
    call is judged by one of them, once."""
    batch = normalize([_call(n) for n in range(1, 7)], "default")
    price_rows(PriceBook(), batch.rows)
    nodes[0].write_batch(tables(batch.rows, batch.content), None)
    evaluators = parse_evaluators(
        f'[judge]\nurl = "{provider_url}/v1"\nmodel = "gpt-4o-mini"\n\n'
        '[[evaluators]]\nname = "relevance"\nkind = "llm_judge"\ntemplate = "relevance"\n',
        "evals.toml",
    )
    jobs = [Evaluations(store, evaluators, interval=timedelta(seconds=0.1)) for store in nodes]
    for job, store in zip(jobs, nodes, strict=True):
        job.start(lease_for(store, "evaluate", store.node, job.interval).held)
    deadline = time.monotonic() + 30
    while nodes[0].evaluation_states("default") != {"relevance": {"done": 6}}:
        assert time.monotonic() < deadline, nodes[0].evaluation_states("default")
        time.sleep(0.2)
    time.sleep(1)  # a few more runs of both: nothing is judged again
    for job in jobs:
        job.stop()
    judged = nodes[0].spans(SpanFilter(JUDGE_PROJECT), ("trace_id",)).to_pylist()
    assert len(judged) == 6 and len({j["trace_id"] for j in judged}) == 6
