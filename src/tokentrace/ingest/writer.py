"""The batch writer: spooled batches → the store, in micro-batches (≥ 40k rows, ~1 s, or once
arrivals pause for `quiet_s`).

DuckDB pays ~6 ms per INSERT whatever its size, and a write looks for resent and duplicate spans
among the stored ones of its hour whatever its size, so rows are gathered before writing (at
10k rows a write took 16.5 µs of the server's CPU a span, at 40k 9.6); when
nothing more arrives for a moment (a burst ended) waiting longer only delays what is there.
The spool position of the newest record in a write is committed with it, so a restart
replays exactly what the store lacks. A failing store is retried, never skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from tokentrace.canonical import Tables
from tokentrace.ingest.spool import Position
from tokentrace.store.protocol import Store

log = logging.getLogger(__name__)


class BatchWriter:
    """Owns the thread that writes spooled batches into the store."""

    def __init__(
        self,
        store: Store,
        on_committed: Callable[[Position], None],
        max_rows: int = 40_000,
        max_delay_s: float = 1.0,
        quiet_s: float = 0.2,
        max_bytes: int = 128 * 1024 * 1024,
        rollup_lag_s: float = 120.0,
        rollup_every_s: float = 10.0,
    ) -> None:
        self._store = store
        # Minutes are rolled up once `rollup_lag_s` old: most of their spans are in by then, and
        # a later one recomputes its minute as it is written (store/duckdb/rollups.py).
        self._rollup_lag_s = rollup_lag_s
        self._rollup_every_s = rollup_every_s
        self._rolled_up_at = float("-inf")
        self._on_committed = on_committed
        self._max_rows = max_rows
        self._max_delay_s = max_delay_s
        self._quiet_s = quiet_s
        self._last_put = float("-inf")
        self._max_bytes = max_bytes
        self._pending: deque[tuple[Tables, Position | None]] = deque()
        self._pending_rows = 0
        self._pending_bytes = 0
        self.pending_bytes_peak = 0
        self._cond = threading.Condition()
        self._closing = False
        self._writing = False
        self._flush_requested = False
        self.last_error: str | None = None
        # Called with each write's spans once stored (the evaluation job's intake); on this
        # thread, so each must be quick and must not fail the write.
        self.on_written: list[Callable[[pa.Table], None]] = []
        self.rows_written = 0
        self.rows_per_s = 0.0  # the store's recent write speed (rows/s), for Retry-After
        self._thread = threading.Thread(target=self._run, name="tokentrace-writer", daemon=True)
        self._thread.start()

    @property
    def pending_rows(self) -> int:
        """Rows (spans, content, scores) acked (spooled) but not yet in the store."""
        return self._pending_rows

    @property
    def pending_bytes(self) -> int:
        """Memory held by what is pending (the bound ingest's 503 keeps)."""
        return self._pending_bytes

    def put(self, tables: Tables, position: Position | None) -> None:
        with self._cond:
            was_empty = not self._pending
            self._pending.append((tables, position))
            self._last_put = time.monotonic()
            self._pending_rows += tables.rows
            self._pending_bytes += tables.nbytes
            self.pending_bytes_peak = max(self.pending_bytes_peak, self._pending_bytes)
            # Wake the writer to start its delay clock, or to write a full batch now.
            if was_empty or self._full():
                self._cond.notify_all()

    def _full(self) -> bool:
        """A batch is worth writing now: enough rows, or enough memory held (under overload
        the backlog is written at once rather than after the delay)."""
        return self._pending_rows >= self._max_rows or self._pending_bytes >= self._max_bytes

    def flush(self, timeout: float = 30.0) -> bool:
        """Write everything pending now; True once the store has it all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()
            while self._pending or self._writing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Write what is pending, then stop (what is left stays in the spool for next start)."""
        self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def _take(self) -> list[tuple[Tables, Position | None]] | None:
        """Wait for a full batch, the delay, a pause in arrivals, a flush or close; take up to 4
        batches' rows. Empty when it is time to advance the rollups; None on close."""
        with self._cond:
            deadline = None
            while True:
                if self._pending:
                    now = time.monotonic()
                    deadline = deadline or now + self._max_delay_s
                    quiet_at = self._last_put + self._quiet_s
                    if (
                        self._full()
                        or self._flush_requested
                        or self._closing
                        or now >= min(deadline, quiet_at)
                    ):
                        break
                    self._cond.wait(min(deadline, quiet_at) - now)
                elif self._closing:
                    return None
                else:
                    self._flush_requested = False
                    if not self._cond.wait(self._rollup_every_s):
                        return []
            taken = []
            rows = 0
            while self._pending and rows < self._max_rows * 4:
                item = self._pending.popleft()
                rows += item[0].rows
                taken.append(item)
            if not self._pending:
                self._flush_requested = False
            self._writing = True
            return taken

    def _run(self) -> None:
        while True:
            batch = self._take()
            if time.monotonic() - self._rolled_up_at >= self._rollup_every_s:
                self._advance_rollups()
            if batch is None:
                return
            if not batch:
                continue
            parts = [b[0] for b in batch]
            tables = Tables.concat(parts)
            positions = [b[1] for b in batch if b[1] is not None]
            position = max(positions) if positions else None
            self._write(tables, position)
            with self._cond:
                self._pending_rows -= tables.rows
                self._pending_bytes -= sum(p.nbytes for p in parts)
                self._writing = False
                self._cond.notify_all()

    def _advance_rollups(self) -> None:
        self._rolled_up_at = time.monotonic()
        until = datetime.now(UTC) - timedelta(seconds=self._rollup_lag_s)
        try:
            self._store.advance_rollups(until)
        except Exception as exc:  # the next round tries again; spans answer meanwhile
            log.error("rolling up minutes before %s failed: %s: %s", until, type(exc).__name__, exc)

    def _write(self, tables: Tables, position: Position | None) -> None:
        delay = 0.1
        while True:
            started = time.monotonic()
            try:
                self._store.write_batch(tables, (position.segment, position.offset) if position else None)
                rate = tables.rows / max(time.monotonic() - started, 1e-3)
                self.rows_per_s = rate if not self.rows_per_s else 0.7 * self.rows_per_s + 0.3 * rate
                self.last_error = None
                self.rows_written += tables.rows
                break
            except Exception as exc:  # the store failed: keep the batch, retry
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("store write failed, retrying in %.1fs: %s", delay, self.last_error)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        for hook in self.on_written:
            try:
                hook(tables.spans)
            except Exception:  # a hook's failure is its own: the write is stored
                log.exception("after-write hook %r failed", hook)
        if position is not None:
            self._on_committed(position)
