"""`tokentrace serve`: open the store, replay the spool, serve HTTP and gRPC until stopped."""

from __future__ import annotations

import errno
import logging
import re
import signal
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import duckdb
import uvicorn

from tokentrace.alerts import rules
from tokentrace.alerts.evaluator import Evaluator
from tokentrace.budgets.policy import Policy, load_policy
from tokentrace.cycle_collector import freeze_what_is_set_up
from tokentrace.evals.config import EvaluatorsFile, load_evaluators
from tokentrace.ingest.pipeline import Pipeline
from tokentrace.ingest.workers import default_count
from tokentrace.jobs import sampler as sampling_policies
from tokentrace.jobs.amortize import settle
from tokentrace.jobs.evaluate import LEASE as EVALUATION_LEASE
from tokentrace.jobs.evaluate import Evaluations
from tokentrace.jobs.lease import lease_for
from tokentrace.jobs.periodic import Periodic
from tokentrace.jobs.retention import expire
from tokentrace.jobs.sampler import Sampler
from tokentrace.pricing import PriceBook
from tokentrace.pricing.overrides import load_overrides
from tokentrace.server.admission import Admission
from tokentrace.server.app import create_app
from tokentrace.server.config import ServerConfig
from tokentrace.server.state import ServerState
from tokentrace.store.duckdb import DuckDBStore
from tokentrace.store.protocol import Store

log = logging.getLogger("tokentrace")
#: How often the store merges what writes left part-filled and reclaims what deletes freed.
COMPACT_EVERY = timedelta(hours=1)


class StartError(Exception):
    """Why the server cannot start, in one line: a port taken, the data dir in use."""


def listen(host: str, port: int, what: str, option: str) -> socket.socket:
    """A listening socket on host:port, bound before anything else starts: a taken port stops
    the server with one line, before it touches the data dir."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # not REUSEPORT: one owner
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        taken = exc.errno == errno.EADDRINUSE
        raise StartError(
            _taken(host, port, what, option) if taken else f"{host}:{port}: {exc.strerror}"
        ) from exc
    sock.listen(2048)
    return sock


def _taken(host: str, port: int, what: str, option: str) -> str:
    return f"{host}:{port} ({what}) is taken (address already in use): stop what holds it, or pass {option}"


def open_store(config: ServerConfig) -> Store:
    """The DuckDB file in the data directory, or the ClickHouse that --store names."""
    if config.store_url is None:
        try:
            return DuckDBStore(config.store_path, memory_limit=f"{config.store_memory_mb}MB")
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            # DuckDB lets one process open a file; its message names the holder's PID.
            pid = re.search(r"PID (\d+)", str(exc))
            holder = f" by process {pid.group(1)}" if pid else ""
            raise StartError(
                f"the data dir {config.data_dir} is in use{holder} (another tokentrace serve?): "
                "stop that server, or pass another --data-dir"
            ) from exc
    from tokentrace.store.clickhouse import ClickHouseStore
    from tokentrace.store.clickhouse.transport import connect

    return ClickHouseStore(connect(config.store_url), node=config.node_name)


def open_state(config: ServerConfig) -> ServerState:
    """Everything the server holds: store (migrated), prices, pipeline (spool replayed), alerts,
    sampler, budgets, and the jobs that amortize deployments and run evaluators. Every file is
    read before the store opens: a bad one stops serve with its file and line."""
    overrides = load_overrides(config.prices_file) if config.prices_file else None
    rule_file = rules.load(config.alerts_file) if config.alerts_file else None
    budgets = load_policy(config.budgets_file) if config.budgets_file else Policy()
    graders = load_evaluators(config.evaluators_file) if config.evaluators_file else EvaluatorsFile(None, ())
    store = open_store(config)
    prices = PriceBook(overrides)
    pipeline = Pipeline(
        store,
        prices,
        config.spool_dir,
        max_pending_rows=config.max_pending_spans,
        max_pending_bytes=config.max_pending_bytes,
        fsync=config.fsync,
        redact_content=config.redact,
        workers=default_count() if config.ingest_workers is None else config.ingest_workers,
    )
    alerts = Evaluator(
        store,
        rule_file,
        interval=timedelta(seconds=config.alert_interval_s),
        base_url=f"http://{config.host}:{config.port}",
    )
    sampler = Sampler(
        store,
        sampling_policies.load(config.sampling_file) if config.sampling_file else None,
        interval=timedelta(seconds=config.sampling_interval_s),
    )
    admission = Admission(config.max_inflight_bytes)
    retention = None
    if config.retention_s is not None:
        keep, interval = timedelta(seconds=config.retention_s), timedelta(seconds=config.retention_interval_s)
        retention = Periodic("retention", interval, lambda: expire(store, keep), at_start=True)
    evaluations = Evaluations(
        store,
        graders.evaluators,
        prices,
        judge=graders.judge,
        interval=timedelta(seconds=config.evaluate_interval_s),
    )
    # Every run reads the deployments anew: a reprice reloads the prices file.
    amortizer = Periodic(
        "amortize",
        timedelta(seconds=config.amortize_interval_s),
        lambda: settle(store, prices.overrides.deployments, datetime.now(UTC)),
        at_start=True,
    )
    return ServerState(
        config,
        store,
        pipeline,
        prices,
        alerts,
        sampler,
        admission,
        retention,
        budgets,
        amortizer,
        evaluations,
        Periodic("compact", COMPACT_EVERY, store.compact),
    )


def _start_jobs(state: ServerState, node: str) -> None:
    """The background jobs; those that must run on one node at a time (alerting, sampling sweeps,
    evaluating) each run only while this node holds the job's lease."""

    def lease(
        name: str, interval: timedelta, longest_run: timedelta = timedelta(seconds=30)
    ) -> Callable[[], bool]:
        return lease_for(state.store, name, node, interval, longest_run).held

    state.alerts.start(lease("alerts", state.alerts.schedule.interval))
    state.sampler.start(lease("sampling", state.sampler.schedule.interval))
    if state.retention is not None:
        state.retention.start()
    if state.amortizer is not None:
        state.amortizer.start()
    if state.evaluations is not None:
        state.evaluations.start(lease("evaluate", state.evaluations.schedule.interval, EVALUATION_LEASE))
    if state.compactor is not None:
        state.compactor.start()


def serve(config: ServerConfig) -> None:
    """Run until SIGINT/SIGTERM; on the way out, write what is pending and close cleanly."""
    http_socket = listen(config.host, config.port, "HTTP", "--port")
    try:
        if config.grpc_port is not None:
            # Asked first, so a taken port is one line (grpc's core would log its own, then fail).
            listen(config.host, config.grpc_port, "OTLP/gRPC", "--grpc-port").close()
        state = open_state(config)
    except BaseException:
        http_socket.close()
        raise
    grpc_server = None
    try:
        if config.grpc_port is not None:
            # (imported here: gRPC's libraries are ~12 MB a server that does not serve it keeps)
            from tokentrace.server.grpc import start_grpc

            try:
                grpc_server = start_grpc(state, config.host, config.grpc_port)
            except (OSError, RuntimeError) as exc:
                raise StartError(_taken(config.host, config.grpc_port, "OTLP/gRPC", "--grpc-port")) from exc
        app = create_app(state)
        if state.evaluations is not None:
            # Every node queues the evaluations its writes owe (the file's evaluators, and any
            # the API adds later); the lease holder evaluates.
            state.pipeline.writer.on_written.append(state.evaluations.offer)
            if not config.background_jobs:
                state.evaluations.start(may_evaluate=lambda: False)
        if config.background_jobs:
            _start_jobs(state, config.node_name)
        if not config.admin_token and not config.anonymous_allowed:
            log.warning(
                "no --admin-token: projects cannot be created or deleted on this server "
                "(set --admin-token or TOKENTRACE_ADMIN_TOKEN to manage them)"
            )
        log.info(
            "tokentrace listening on http://%s:%d (OTLP/HTTP, API)%s; data in %s",
            config.host,
            config.port,
            f" and grpc {config.host}:{config.grpc_port}" if grpc_server else "",
            config.data_dir,
        )
        # uvicorn stops on SIGTERM, then raises it again for the handler it found: the default
        # one would end the process before the `finally` below writes what is pending and stops
        # the ingest workers. With this one in place, serve returns and closes cleanly.
        signal.signal(signal.SIGTERM, lambda signum, frame: None)
        freeze_what_is_set_up()  # what is alive now lives as long as the server
        uvicorn.Server(
            uvicorn.Config(
                app,
                host=config.host,
                port=config.port,
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=10,
            )
        ).run(sockets=[http_socket])
    finally:
        http_socket.close()
        state.alerts.stop()
        state.sampler.stop()
        if state.retention is not None:
            state.retention.stop()
        if state.amortizer is not None:
            state.amortizer.stop()
        if state.evaluations is not None:
            state.evaluations.stop()
        if state.compactor is not None:
            state.compactor.stop()
        if grpc_server is not None:
            grpc_server.stop(grace=5).wait()
        state.pipeline.close()
        state.store.close()
