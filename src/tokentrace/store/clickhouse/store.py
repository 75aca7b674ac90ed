"""ClickHouseStore: every concern of the Store protocol over ClickHouse."""

from __future__ import annotations

import socket
import threading
from datetime import timedelta

from tokentrace.store.clickhouse import rollups
from tokentrace.store.clickhouse.alert_log import ClickHouseAlertLog
from tokentrace.store.clickhouse.catalog import ClickHouseCatalog
from tokentrace.store.clickhouse.connection import ClickHouseConnection
from tokentrace.store.clickhouse.deployments import ClickHouseDeployments
from tokentrace.store.clickhouse.evaluations import ClickHouseEvaluations
from tokentrace.store.clickhouse.leases import ClickHouseLeases
from tokentrace.store.clickhouse.reads import ClickHouseReads
from tokentrace.store.clickhouse.rollups import ClickHouseRollups
from tokentrace.store.clickhouse.sampling import ClickHouseSampling
from tokentrace.store.clickhouse.transport import Transport
from tokentrace.store.clickhouse.writes import ClickHouseWrites


class ClickHouseStore(
    ClickHouseConnection,
    ClickHouseWrites,
    ClickHouseReads,
    ClickHouseRollups,
    ClickHouseSampling,
    ClickHouseDeployments,
    ClickHouseEvaluations,
    ClickHouseLeases,
    ClickHouseCatalog,
    ClickHouseAlertLog,
):
    """Store implementation over ClickHouse (see the package's docstring)."""

    def __init__(self, transport: Transport, node: str | None = None) -> None:
        self._ch = transport
        # Each ingest process has its own spool; its position is kept under its name.
        self.node = node or socket.gethostname()
        self._migrate()
        self._marks = rollups.marks(transport)
        self._lag: timedelta | None = None  # how far behind the clock this node rolls up
        self._sweeping = threading.Lock()
