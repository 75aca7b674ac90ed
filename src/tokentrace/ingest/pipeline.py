"""The ingest pipeline: prepare (decode → normalize → price → redact, in this process or in worker
processes) → spool (ack) → batch writer → store."""

from __future__ import annotations

import logging
import math
import random
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from tokentrace.ingest.columns import tables
from tokentrace.ingest.prepare import Prepared, Preparer, check_export
from tokentrace.ingest.record import decode_record, encode_record
from tokentrace.ingest.spool import Position, Spool
from tokentrace.ingest.workers import Workers
from tokentrace.ingest.writer import BatchWriter
from tokentrace.pricing import PriceBook
from tokentrace.store.protocol import Store

log = logging.getLogger(__name__)


class Overloaded(Exception):
    """More is acked than the store has caught up with: the client should retry later."""

    def __init__(self, message: str, retry_after_s: int = 2) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def _failed(error: Exception) -> Future[Prepared]:
    """A future failed with `error`, made outside the frame `error` was raised through: that frame
    (Pipeline.export's) holds the body, and a future it held too would keep both in a cycle."""
    failed: Future[Prepared] = Future()
    failed.set_exception(error)
    return failed


class Pipeline:
    """Owns the spool and the writer; the server hands it request bodies."""

    def __init__(
        self,
        store: Store,
        prices: PriceBook,
        spool_dir: Path,
        *,
        max_pending_rows: int = 1_000_000,
        max_pending_bytes: int = 256 * 1024 * 1024,
        batch_rows: int = 40_000,
        batch_delay_s: float = 1.0,
        fsync: bool = True,
        redact_content: bool = True,
        workers: int = 0,
    ) -> None:
        self.store = store
        self.prices = prices
        self.preparer = Preparer(prices, redact_content)
        # Worker processes prepare exports off this process's GIL; none: prepared here.
        self.workers = Workers(workers, redact_content) if workers else None
        self.max_pending_rows = max_pending_rows
        self.max_pending_bytes = max_pending_bytes
        # Half the memory bound pending is written at once: room stays for what arrives meanwhile.
        self.writer = BatchWriter(
            store, self._committed, batch_rows, batch_delay_s, max_bytes=max_pending_bytes // 2
        )
        self.spool = Spool(spool_dir, self._durable, fsync=fsync)
        self.replayed = self._replay()

    def _replay(self) -> int:
        stored = self.store.spool_position()
        after = Position(*stored) if stored else None
        rows = 0
        for payload, position in self.spool.replay(after):
            tables = decode_record(payload)
            self.writer.put(tables, position)
            rows += tables.rows
        if rows:
            log.info("replayed %d spooled rows into the store", rows)
        return rows

    def _durable(self, item: object, position: Position) -> None:
        self.writer.put(item, position)  # type: ignore[arg-type]

    def _committed(self, position: Position) -> None:
        self.spool.release(position)

    # --- the request path ------------------------------------------------------------
    def export(self, project_id: str, body: bytes, media: str, signal: str = "traces") -> Future[Prepared]:
        """The OTLP request path in one call: refuse when the store is behind (Overloaded, raised
        here), then decode the body (`media` PROTOBUF or JSON), normalize, price, redact and spool
        what is valid. The Future resolves to what was prepared once that is fsynced: answer the
        client then. It fails with DecodeError when the body cannot be read at all, OSError when
        the spool cannot write, Overloaded when a worker died. Invalid spans or records are
        rejected alone (Prepared says which)."""
        self.check_capacity()
        check_export(media, signal)
        if self.workers is None:
            try:
                prepared = self.preparer.export(project_id, body, media, signal)
            except Exception as exc:
                return _failed(exc)
            done: Future[Prepared] = Future()
            self._spool(prepared, encode_record(prepared.tables) if prepared.accepted else b"", done)
            return done
        done = Future()
        work = self.workers.submit(project_id, body, media, signal, self.prices.overrides)
        work.add_done_callback(lambda finished: self._prepared_elsewhere(finished, done))
        return done

    def _prepared_elsewhere(self, work: Future, done: Future[Prepared]) -> None:
        # The worker's error is passed on, not raised here: raised, its traceback would run through
        # this frame, which holds both futures, and tie them to it in a cycle (with the request that
        # awaited it, its body among that frame's locals) that only the cycle collector frees.
        error = work.exception()
        if isinstance(error, BrokenProcessPool):
            done.set_exception(Overloaded("an ingest worker stopped; retry", 1))
            return
        if error is not None:
            done.set_exception(error)
            return
        record, rejected, errors = work.result()
        prepared = Prepared(decode_record(record) if record else tables(), rejected, errors)
        self._spool(prepared, record, done)

    def _spool(self, prepared: Prepared, record: bytes, done: Future[Prepared]) -> None:
        """Resolve `done` with `prepared` once its record is fsynced (at once when it holds nothing)."""
        if not prepared.accepted:
            done.set_result(prepared)
            return
        try:
            stored = self.spool.append(record, prepared.tables)
        except OSError as exc:  # without its traceback, which ties this frame's `done` to it in a cycle
            done.set_exception(exc.with_traceback(None))
            return

        def durable(future: Future) -> None:
            error = future.exception()
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(prepared)

        stored.add_done_callback(durable)

    def prepare_scores(self, project_id: str, payload: Any) -> Prepared:
        """Scores of a REST request body; bad ones are rejected alone."""
        return self.preparer.scores(project_id, payload)

    def check_capacity(self) -> None:
        """Raise Overloaded when the store is failing or too far behind to take more: what is
        acked but not stored stays within max_pending_rows and max_pending_bytes of memory."""
        writer = self.writer
        if writer.last_error is not None:
            raise Overloaded(f"the store is failing ({writer.last_error}); retry later", 5)
        rows, held = writer.pending_rows, writer.pending_bytes
        if rows >= self.max_pending_rows or held >= self.max_pending_bytes:
            # Come back when the backlog should be written at the store's recent speed, the
            # senders spread over two seconds so they do not all return at once.
            drain_s = rows / writer.rows_per_s if writer.rows_per_s else 1.0
            raise Overloaded(
                f"{rows} rows ({held // 2**20} MiB) are waiting for the store; retry later",
                min(max(math.ceil(drain_s), 1), 30) + random.randint(0, 1),
            )

    def submit(self, prepared: Prepared) -> Future:
        """Spool a prepared export; the Future resolves once it is fsynced (then ack)."""
        return self.spool.append(encode_record(prepared.tables), prepared.tables)

    def close(self) -> None:
        if self.workers is not None:
            self.workers.close()
        self.spool.close()
        self.writer.close()
