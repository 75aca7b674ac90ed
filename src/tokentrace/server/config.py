"""Server settings, from the command line."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path = Path(".tokentrace")
    # None: one DuckDB file in data_dir; else a ClickHouse URL (store/clickhouse/transport.py)
    store_url: str | None = None
    # This ingest node's name on a shared ClickHouse (its spool position is kept under it);
    # None: host name and spool directory.
    node: str | None = None
    # Alert evaluation and sampling sweeps: on one node of several (False: ingest and API only).
    background_jobs: bool = True
    host: str = "127.0.0.1"
    port: int = 4318
    grpc_port: int | None = 4317  # None: no gRPC receiver
    prices_file: Path | None = None
    max_body_bytes: int = 16 * 1024 * 1024  # after decompression
    # Memory bounds under overload: data acked but not yet in the store (past it: 503), and
    # request bodies being read, decoded and spooled (past it: 429); both with Retry-After.
    max_pending_spans: int = 1_000_000
    max_pending_bytes: int = 256 * 1024 * 1024
    max_inflight_bytes: int = 64 * 1024 * 1024
    # DuckDB's buffer pool (its memory_limit; past it, it spills to disk): without it DuckDB
    # takes up to 80% of the machine's memory.
    store_memory_mb: int = 1024
    require_key: bool = False
    admin_token: str | None = None
    fsync: bool = True
    redact: bool = True  # the default redaction rules over what is sent, before the spool
    ingest_workers: int | None = None  # processes preparing exports (decode … redact); None: one per core
    alerts_file: Path | None = None  # TOML alert rules and notifiers
    alert_interval_s: float = 30.0
    budgets_file: Path | None = None  # the gateway's budgets, shown against the traced spend
    sampling_file: Path | None = None  # TOML tail-sampling policies (jobs/sampler.py)
    sampling_interval_s: float = 600.0
    retention_s: float | None = None  # spans, content, scores and rollups older are deleted
    retention_interval_s: float = 3600.0
    amortize_interval_s: float = 60.0  # self-hosted deployments' hours split (jobs/amortize.py)
    evaluators_file: Path | None = None  # TOML evaluators (evals/config.py), run by jobs/evaluate.py
    evaluate_interval_s: float = 5.0
    # /metrics labels (canonical fields): tenant_id can go, user_id come, as cardinality allows.
    metric_labels: tuple[str, ...] = ("request_model", "provider", "feature", "prompt_template", "tenant_id")

    @property
    def loopback_only(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"

    @property
    def anonymous_allowed(self) -> bool:
        """Requests without a key go to `default` only on a loopback-bound server."""
        return self.loopback_only and not self.require_key

    @property
    def store_path(self) -> Path:
        return self.data_dir / "tokentrace.duckdb"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def node_name(self) -> str:
        """The node's name: its spool's position belongs to that spool, so by default the host
        and the spool's directory name it."""
        return self.node or f"{socket.gethostname()}:{self.spool_dir.resolve()}"
