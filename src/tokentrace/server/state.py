"""What every route needs: the store, the pipeline, the price book, the alerts, the sampler, the
budgets, the config, and what requests in flight hold."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tokentrace.alerts.evaluator import Evaluator
from tokentrace.budgets.policy import Policy
from tokentrace.ingest.pipeline import Pipeline
from tokentrace.jobs.evaluate import Evaluations
from tokentrace.jobs.periodic import Periodic
from tokentrace.jobs.sampler import Sampler
from tokentrace.pricing import PriceBook
from tokentrace.server.admission import Admission
from tokentrace.server.config import ServerConfig
from tokentrace.store.protocol import Store


@dataclass
class ServerState:
    config: ServerConfig
    store: Store
    pipeline: Pipeline
    prices: PriceBook
    alerts: Evaluator
    sampler: Sampler
    admission: Admission
    retention: Periodic | None = None  # ingest.retention.expire on schedule; None: kept until deleted
    budgets: Policy = field(default_factory=Policy)
    amortizer: Periodic | None = None  # jobs.amortize.settle on schedule, for the prices' deployments
    evaluations: Evaluations | None = None  # the evaluators (--evaluators) and their job
    compactor: Periodic | None = None  # store.compact hourly
    # Exports refused for overload, by answer ("429", "503", "UNAVAILABLE"): shown by /healthz.
    refused: Counter[str] = field(default_factory=Counter)
