"""The ingest pipeline: decode → normalize → price → spool (ack) → batch writer → store."""

from __future__ import annotations

import logging
import math
import random
import struct
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from tokentrace import semconv
from tokentrace.canonical import CONTENT_SCHEMA, SCORE_SCHEMA, SPAN_SCHEMA, Tables
from tokentrace.ingest import otlp_json, otlp_proto, score_rows
from tokentrace.ingest.columns import tables
from tokentrace.ingest.logs import from_logs
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.raw import RawLogRecord, RawSpan
from tokentrace.ingest.redact import redact
from tokentrace.ingest.spool import Position, Spool
from tokentrace.ingest.writer import BatchWriter
from tokentrace.pricing import PriceBook
from tokentrace.store.protocol import Store

log = logging.getLogger(__name__)

#: The OTLP encodings an export body may have (a transport maps its own names onto these).
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
#: The OTLP signals tokentrace receives.
SIGNALS = ("traces", "logs")

_LEN = struct.Struct("<I")
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")
_RECORD_V2 = b"TTR2"


class Overloaded(Exception):
    """More is acked than the store has caught up with: the client should retry later."""

    def __init__(self, message: str, retry_after_s: int = 2) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass
class Prepared:
    """A normalized, priced export: what is spooled and what the client is told."""

    tables: Tables
    rejected: int
    errors: list[str]

    @property
    def accepted(self) -> int:
        return self.tables.rows

    def error_message(self) -> str:
        """OTLP partial_success.error_message: the first few reasons, and how many more."""
        if not self.errors:
            return ""
        shown = "; ".join(self.errors[:5])
        more = len(self.errors) - 5
        return shown + (f"; and {more} more" if more > 0 else "")


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=_IPC_OPTIONS) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def encode_record(tables: Tables) -> bytes:
    """A spool record: the priced canonical spans, content and scores, as Arrow IPC streams."""
    parts = [_RECORD_V2]
    for table in (tables.spans, tables.content, tables.scores):
        data = _ipc(table)
        parts += [_LEN.pack(len(data)), data]
    return b"".join(parts)


def _current(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A table spooled by an older version, with the canonical fields added since as nulls."""
    if table.schema.names == list(schema.names):
        return table
    columns = [
        table.column(f.name) if f.name in table.schema.names else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def decode_record(payload: bytes) -> Tables:
    if not payload.startswith(_RECORD_V2):
        # A record spooled by a version without scores: spans, then content to the end.
        (length,) = _LEN.unpack_from(payload)
        spans = pa.ipc.open_stream(payload[4 : 4 + length]).read_all()
        content = pa.ipc.open_stream(payload[4 + length :]).read_all()
        scores = SCORE_SCHEMA.empty_table()
        return Tables(_current(spans, SPAN_SCHEMA), _current(content, CONTENT_SCHEMA), scores)
    tables = []
    at = len(_RECORD_V2)
    for _ in range(3):
        (length,) = _LEN.unpack_from(payload, at)
        tables.append(pa.ipc.open_stream(payload[at + 4 : at + 4 + length]).read_all())
        at += 4 + length
    spans, content, scores = tables
    return Tables(_current(spans, SPAN_SCHEMA), _current(content, CONTENT_SCHEMA), scores)


def price_rows(book: PriceBook, rows: list[dict[str, Any]]) -> None:
    """Cost each canonical row in place and record which price it used."""
    costs, known, used = book.price_columns(
        [r["provider"] for r in rows],
        [r["response_model"] or r["request_model"] for r in rows],
        [r["start_time"] for r in rows],
        [r["input_tokens"] for r in rows],
        [r["output_tokens"] for r in rows],
        [r["cache_read_tokens"] for r in rows],
        [r["cache_write_tokens"] for r in rows],
    )
    for row, cost, is_known, rates in zip(rows, costs, known, used, strict=True):
        row["cost_usd"] = cost
        row["cost_known"] = is_known
        if rates is not None:
            attrs = row["attributes"]
            attrs[semconv.PRICE_MODEL] = rates.model
            attrs[semconv.PRICE_PROVIDER] = rates.provider
            attrs[semconv.PRICE_SOURCE] = rates.source


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
        batch_rows: int = 10_000,
        batch_delay_s: float = 1.0,
        fsync: bool = True,
        redact_content: bool = True,
    ) -> None:
        self.store = store
        self.redact_content = redact_content
        self.prices = prices
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
    def _prepared(self, tables: Tables, errors: list[str]) -> Prepared:
        """What is spooled: secrets and PII redacted first, unless the server was told not to."""
        return Prepared(redact(tables) if self.redact_content else tables, len(errors), errors)

    def prepare(self, project_id: str, spans: list[RawSpan], decode_errors: list[str]) -> Prepared:
        """Normalize and price decoded spans; invalid ones are rejected with their reason."""
        batch = normalize(spans, project_id)
        price_rows(self.prices, batch.rows)
        errors = decode_errors + batch.errors
        return self._prepared(tables(batch.rows, batch.content, batch.scores), errors)

    def export(
        self, project_id: str, body: bytes, media: str, signal: str = "traces"
    ) -> tuple[Prepared, Future]:
        """The OTLP request path in one call: refuse when the store is behind (Overloaded), decode
        the body (`media` PROTOBUF or JSON; DecodeError when it cannot be read at all), normalize,
        price, redact and spool what is valid. The Future resolves once that is fsynced: answer
        the client then. Invalid spans or records are rejected alone (Prepared says which)."""
        self.check_capacity()
        prepared = self.prepare_export(project_id, body, media, signal)
        if not prepared.accepted:
            done: Future = Future()
            done.set_result(None)
            return prepared, done
        return prepared, self.submit(prepared)

    def prepare_export(self, project_id: str, body: bytes, media: str, signal: str = "traces") -> Prepared:
        """`export` without the capacity check and the spool: what would be stored."""
        if signal not in SIGNALS or media not in (PROTOBUF, JSON):
            raise ValueError(f"no OTLP {signal!r} export in {media!r}")
        if signal == "traces":
            protobuf, json = self.prepare_protobuf, self.prepare_json
        else:
            protobuf, json = self.prepare_logs_protobuf, self.prepare_logs_json
        return protobuf(project_id, body) if media == PROTOBUF else json(project_id, body)

    def prepare_protobuf(self, project_id: str, body: bytes) -> Prepared:
        return self.prepare(project_id, otlp_proto.decode_traces(body), [])

    def prepare_json(self, project_id: str, body: bytes) -> Prepared:
        spans, errors = otlp_json.decode_traces(body)
        return self.prepare(project_id, spans, errors)

    def prepare_logs(
        self, project_id: str, records: list[RawLogRecord], decode_errors: list[str]
    ) -> Prepared:
        """Content and scores of decoded OTLP log records; bad records are rejected alone."""
        batch = from_logs(records, project_id)
        errors = decode_errors + batch.errors
        return self._prepared(tables(content=batch.content, scores=batch.scores), errors)

    def prepare_logs_protobuf(self, project_id: str, body: bytes) -> Prepared:
        return self.prepare_logs(project_id, otlp_proto.decode_logs(body), [])

    def prepare_logs_json(self, project_id: str, body: bytes) -> Prepared:
        records, errors = otlp_json.decode_logs(body)
        return self.prepare_logs(project_id, records, errors)

    def prepare_scores(self, project_id: str, payload: Any) -> Prepared:
        """Scores of a REST request body; bad ones are rejected alone."""
        rows, errors = score_rows.from_request(project_id, payload)
        return self._prepared(tables(scores=rows), errors)

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
        self.spool.close()
        self.writer.close()
