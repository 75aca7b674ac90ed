"""Shared fixtures: a real `tokentrace serve` process on free loopback ports."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.builders.processes import (
    GatewayProcess,
    ServerProcess,
    free_port,
    simulated_provider,
)

#: The test files that take a worker longest (seconds summed from `pytest --durations=0`, session
#: 36), longest first. pytest-xdist hands files out in collection order (`--no-loadscope-reorder`;
#: its default orders them by how many tests they hold, which started the one-test, two-minute
#: agent frameworks' file last): started first, none is begun as the other worker runs dry.
SLOWEST_FILES = (
    "tests/ingest/test_families.py",  # ~130 s
    "tests/ingest/test_agents_live.py",  # ~120
    "tests/simulate/test_demo.py",  # ~70
    "tests/sdk/test_sdk.py",  # ~65
    "tests/proxy/test_gateway.py",  # ~50
    "tests/e2e/test_alerts.py",  # ~40
    "tests/store/test_sampling.py",
    "tests/alerts/test_evaluator.py",
    "tests/query/test_triage.py",
    "tests/evals/test_job.py",
    "tests/e2e/test_overload.py",  # ~30
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest files first (SLOWEST_FILES), every other in its order; a file's tests stay
    together and in their order (the sort is stable)."""
    rank = {path: n for n, path in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.partition("::")[0], len(rank)))


@pytest.fixture
def server(tmp_path: Path):
    proc = ServerProcess(tmp_path / "data").start()
    yield proc
    proc.stop()


@pytest.fixture
def start_server(tmp_path: Path):
    """Factory for servers with extra flags; all are stopped at teardown."""
    started: list[ServerProcess] = []

    def start(*extra: str, data_dir: Path | None = None) -> ServerProcess:
        proc = ServerProcess(data_dir or tmp_path / f"data{len(started)}", *extra).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="session")
def provider_url(tmp_path_factory):
    """The simulated provider, shared by the whole session."""
    with simulated_provider(tmp_path_factory.mktemp("provider") / "provider.log") as url:
        yield url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A real redis-server (Debian's, installed by `make test`) on a free loopback port."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (make test installs it with apt-get)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            break
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("redis-server did not start")
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def start_gateway(tmp_path: Path):
    """Factory for gateways (`server_url`, then `tokentrace proxy` flags); all stopped at teardown."""
    started: list[GatewayProcess] = []

    def start(server_url: str, *args: str) -> GatewayProcess:
        gateway = GatewayProcess(tmp_path, server_url, *args).start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory) -> Path:
    """The one chDB directory of the test process (chDB opens one directory per process):
    each ClickHouse store of the tests is a database in it."""
    path = tmp_path_factory.mktemp("chdb")
    _CHDB_PATH.append(path)
    return path


_CHDB_PATH: list[Path] = []  # the session's chDB directory, once a test asked for it
_CHDB_ADMIN: list = []  # a transport on its default database, made at the first drop
_CHDB_OWN = ("default", "system", "INFORMATION_SCHEMA", "information_schema")


def _chdb_admin():
    from tokentrace.store.clickhouse.transport import connect

    if not _CHDB_ADMIN:
        _CHDB_ADMIN.append(connect(f"chdb://{_CHDB_PATH[0]}"))
    return _CHDB_ADMIN[0]


def drop_chdb_databases(*names: str) -> None:
    """Drop the tests' chDB databases (`names`, or every one): the engine keeps each table's
    background work running, so databases left behind slowed every later ClickHouse test of the
    process ~5x by the end of a CI run (a 1 s test took 5)."""
    if "chdb" not in sys.modules or not _CHDB_PATH:
        return  # no test of this process opened chDB
    admin = _chdb_admin()
    if not names:
        databases = admin.query("SELECT name FROM system.databases")["name"].to_pylist()
        names = tuple(name for name in databases if name not in _CHDB_OWN)
    for name in names:
        admin.command(f"DROP DATABASE IF EXISTS `{name}` SYNC")


@pytest.fixture(scope="module", autouse=True)
def _chdb_databases_dropped():
    """What a module's tests left in chDB goes with the module (its fixtures are closed by then)."""
    yield
    drop_chdb_databases()


@pytest.fixture
def nodes(chdb_path, request):
    """Two nodes (`tokentrace serve` processes) over one ClickHouse database: each a
    ClickHouseStore of its own, named node-a and node-b, sharing this process's chDB engine."""
    from tokentrace.store.clickhouse import ClickHouseStore
    from tokentrace.store.clickhouse.transport import connect

    database = request.node.name.replace("[", "_").replace("]", "_")
    url = f"chdb://{chdb_path}?database={database}"
    opened = [ClickHouseStore(connect(url), node=name) for name in ("node-a", "node-b")]
    yield opened
    for store in opened:
        store.close()
    drop_chdb_databases(database)


@pytest.fixture(params=["duckdb", "clickhouse"])
def store_kind(request) -> str:
    """Each store implementation, for tests that must hold for both."""
    return request.param


@pytest.fixture
def open_store(tmp_path: Path, chdb_path: Path, store_kind: str, request):
    """Factory of empty stores of each kind (a test using it runs once per store): DuckDB
    files, or ClickHouse databases on chDB; all closed at teardown."""
    from tokentrace.store.clickhouse import ClickHouseStore
    from tokentrace.store.clickhouse.transport import connect
    from tokentrace.store.duckdb import DuckDBStore

    kind = store_kind
    opened = []
    databases: set[str] = set()

    def open_one(reopen=None):
        """A new empty store; or, given `reopen`, that store closed and opened again (a restart)."""
        n = len(opened) if reopen is None else opened.index(reopen)
        if reopen is not None:
            reopen.close()
        if kind == "duckdb":
            store = DuckDBStore(tmp_path / f"t{n}.duckdb")
        else:
            database = f"{request.node.name}_{n}".translate({ord(c): "_" for c in "[]-.,"})
            databases.add(database)
            store = ClickHouseStore(connect(f"chdb://{chdb_path}?database={database}"))
        if reopen is None:
            opened.append(store)
        else:
            opened[n] = store
        return store

    yield open_one
    for store in opened:
        store.close()
    if kind == "clickhouse":
        drop_chdb_databases(*databases)
