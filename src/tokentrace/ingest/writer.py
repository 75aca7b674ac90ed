"""The batch writer: spooled batches → the store, in micro-batches (≥ 10k rows or ~1 s).

DuckDB pays ~6 ms per INSERT whatever its size, so rows are gathered before writing.
The spool position of the newest record in a write is committed with it, so a restart
replays exactly what the store lacks. A failing store is retried, never skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from tokentrace.canonical import Tables
from tokentrace.ingest.spool import Position
from tokentrace.store.base import Store

log = logging.getLogger(__name__)


class BatchWriter:
    """Owns the thread that writes spooled batches into the store."""

    def __init__(
        self,
        store: Store,
        on_committed: Callable[[Position], None],
        max_rows: int = 10_000,
        max_delay_s: float = 1.0,
    ) -> None:
        self._store = store
        self._on_committed = on_committed
        self._max_rows = max_rows
        self._max_delay_s = max_delay_s
        self._pending: deque[tuple[Tables, Position | None]] = deque()
        self._pending_rows = 0
        self._cond = threading.Condition()
        self._closing = False
        self._writing = False
        self._flush_requested = False
        self.last_error: str | None = None
        self.rows_written = 0
        self._thread = threading.Thread(target=self._run, name="tokentrace-writer", daemon=True)
        self._thread.start()

    @property
    def pending_rows(self) -> int:
        """Rows (spans, content, scores) acked (spooled) but not yet in the store."""
        return self._pending_rows

    def put(self, tables: Tables, position: Position | None) -> None:
        with self._cond:
            was_empty = not self._pending
            self._pending.append((tables, position))
            self._pending_rows += tables.rows
            # Wake the writer to start its delay clock, or to write a full batch now.
            if was_empty or self._pending_rows >= self._max_rows:
                self._cond.notify_all()

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

    def _take(self) -> list[tuple[Tables, Position | None]]:
        """Wait for a full batch, the delay, a flush or close; take up to 4 batches' rows."""
        with self._cond:
            deadline = None
            while True:
                if self._pending:
                    now = time.monotonic()
                    deadline = deadline or now + self._max_delay_s
                    if (
                        self._pending_rows >= self._max_rows
                        or self._flush_requested
                        or self._closing
                        or now >= deadline
                    ):
                        break
                    self._cond.wait(deadline - now)
                elif self._closing:
                    return []
                else:
                    self._flush_requested = False
                    self._cond.wait()
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
            if not batch:
                return
            tables = Tables.concat([b[0] for b in batch])
            positions = [b[1] for b in batch if b[1] is not None]
            position = max(positions) if positions else None
            self._write(tables, position)
            with self._cond:
                self._pending_rows -= tables.rows
                self._writing = False
                self._cond.notify_all()

    def _write(self, tables: Tables, position: Position | None) -> None:
        delay = 0.1
        while True:
            try:
                self._store.write_batch(tables, (position.segment, position.offset) if position else None)
                self.last_error = None
                self.rows_written += tables.rows
                break
            except Exception as exc:  # the store failed: keep the batch, retry
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("store write failed, retrying in %.1fs: %s", delay, self.last_error)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        if position is not None:
            self._on_committed(position)
