"""Ingest worker processes: the request path's CPU (decode, normalize, price, redact: ~50 µs a
span in Python) off the server process's GIL, so exports are prepared on every core while the
server process only spools and writes. Each worker hands back the spool record itself (Arrow
IPC): the server writes those bytes to the spool as they are and reads the tables out of them.

Workers start from a fork server (the server process runs threads: DuckDB's, the writer's, so it
is never forked itself) that has imported ingest once, lazily, on the first export.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from tokentrace.cycle_collector import collect_seldom
from tokentrace.ingest.arrow_alone import keep_pyarrow_from_pandas
from tokentrace.ingest.prepare import Preparer
from tokentrace.ingest.record import encode_record
from tokentrace.pricing import PriceBook
from tokentrace.pricing.overrides import Overrides

_preparer: Preparer | None = None  # in a worker: set by _start


def _start(redact_content: bool, server_pid: int) -> None:
    global _preparer
    keep_pyarrow_from_pandas()
    _preparer = Preparer(PriceBook(), redact_content)
    collect_seldom()
    threading.Thread(target=_exit_with, args=(server_pid,), name="tokentrace-watch", daemon=True).start()


def _exit_with(server_pid: int) -> None:
    """End this worker once the server is gone. A worker holds both ends of its task queue (the
    pool hands it the queue whole), so a server killed with SIGKILL would leave it waiting forever."""
    while True:
        time.sleep(1)
        try:
            os.kill(server_pid, 0)
        except (ProcessLookupError, PermissionError):  # gone (its pid reused by another user: gone too)
            os._exit(0)


def prepare_record(
    project_id: str, body: bytes, media: str, signal: str, overrides: Overrides
) -> tuple[bytes, int, list[str]]:
    """In a worker: an export prepared as its spool record (empty when nothing was accepted), how
    many spans or records were rejected, and why. `overrides` are the server's prices now."""
    assert _preparer is not None, "not in an ingest worker"
    if overrides != _preparer.prices.overrides:  # the server reloaded its price overrides
        _preparer.prices.reload(overrides)
    prepared = _preparer.export(project_id, body, media, signal)
    record = encode_record(prepared.tables) if prepared.accepted else b""
    return record, prepared.rejected, prepared.errors


#: An export's body (~350 KB for 512 spans) and its record (~550 KB) each fit in one pipe write.
PIPE_BYTES = 1 << 20


def widen_pipes(pool: ProcessPoolExecutor) -> bool:
    """Give the pool's task and result pipes room for a whole export (Linux; False elsewhere or
    where refused). With the default 64 KB a record crosses in many writes, each waiting for the
    reader: ~1 ms of a worker's CPU and ~0.3 ms of the server's a call, against ~0.4 and ~0.8
    (session 31). The pipes are the executor's own: it offers no way to size them."""
    try:
        import fcntl  # not on Windows, where the server runs too
    except ImportError:
        return False
    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None)
    queues = (getattr(pool, "_call_queue", None), getattr(pool, "_result_queue", None))
    readers = [getattr(queue, "_reader", None) for queue in queues]
    if setpipe is None or any(reader is None for reader in readers):
        return False
    try:
        for reader in readers:
            fcntl.fcntl(reader.fileno(), setpipe, PIPE_BYTES)
    except OSError:  # over /proc/sys/fs/pipe-max-size, or the user's pipe memory: keep the default
        return False
    return True


def default_count() -> int:
    """Workers when the server is not told: one per core, up to 8; none on a single core, where
    they would only take turns with the server process."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cores, 8) if cores > 1 else 0


class Workers:
    """A pool of `count` ingest worker processes, started on first use and again if one dies."""

    def __init__(self, count: int, redact_content: bool) -> None:
        self.count = count
        self._redact = redact_content
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def _open(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        pool = ProcessPoolExecutor(
            self.count, mp_context=context, initializer=_start, initargs=(self._redact, os.getpid())
        )
        widen_pipes(pool)
        return pool

    def submit(self, project_id: str, body: bytes, media: str, signal: str, overrides: Overrides) -> Future:
        """Prepare an export in a worker: a Future of prepare_record's answer. A pool broken by a
        dead worker is replaced, and what it held fails with BrokenProcessPool (the client retries)."""
        with self._lock:
            if self._pool is None:
                self._pool = self._open()
            try:
                return self._pool.submit(prepare_record, project_id, body, media, signal, overrides)
            except BrokenProcessPool:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._open()
                return self._pool.submit(prepare_record, project_id, body, media, signal, overrides)

    def close(self) -> None:
        """Finish what was handed out, then stop the workers."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
