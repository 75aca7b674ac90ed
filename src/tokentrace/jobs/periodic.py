"""A job run every interval on its own daemon thread: the server's background work (alert
evaluation, sampling sweeps, retention) until stopped; one that must run on one node at a time
runs only while `only_while` says this node may (jobs/lease.py)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

log = logging.getLogger(__name__)


class Periodic:
    """Runs `job` every `interval` (and once at start when `at_start`); a failing run is logged
    and the next one tries again."""

    def __init__(
        self, name: str, interval: timedelta, job: Callable[[], object], at_start: bool = False
    ) -> None:
        self.name = name
        self.interval = interval
        self._job = job
        self._at_start = at_start
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._only_while: Callable[[], bool] | None = None

    def start(self, only_while: Callable[[], bool] | None = None) -> None:
        """Run on a thread of its own; each run only when `only_while()` (a lease) says so."""
        self._only_while = only_while
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=f"tokentrace-{self.name}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        if self._at_start:
            self._run()
        while not self._stop.wait(self.interval.total_seconds()):
            self._run()

    def _run(self) -> None:
        try:
            if self._only_while is not None and not self._only_while():
                return  # another node's turn
            self._job()
        except Exception:  # a store busy, a receiver down: the next round may succeed
            log.exception("%s failed", self.name)
