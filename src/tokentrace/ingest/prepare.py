"""An OTLP export's body → what ingest spools: decoded, normalized, priced and redacted tables,
and the reasons for what was rejected. Runs in the server process, or in ingest worker
processes (ingest/workers.py) where it is handed the same arguments."""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from tokentrace import semconv
from tokentrace.canonical import MODALITY_TOKEN_FIELDS, Tables
from tokentrace.ingest import otlp_json, otlp_proto, score_rows
from tokentrace.ingest.columns import tables
from tokentrace.ingest.logs import from_logs
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.raw import RawLogRecord, RawSpan
from tokentrace.ingest.redact import redact
from tokentrace.pricing import PriceBook
from tokentrace.pricing.deployments import PENDING

#: The OTLP encodings an export body may have (a transport maps its own names onto these).
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
#: The OTLP signals tokentrace receives.
SIGNALS = ("traces", "logs")


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


_MODALITIES = itemgetter(*MODALITY_TOKEN_FIELDS)  # a row's audio and image counts, in C


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
        [r["service_tier"] for r in rows],
        list(map(_MODALITIES, rows)),
    )
    for row, cost, is_known, rates in zip(rows, costs, known, used, strict=True):
        row["cost_usd"] = cost
        row["cost_known"] = is_known
        if rates is not None:
            row["attributes"].update(rates.provenance())
    if book.overrides.deployments:
        _assign_deployments(book, rows)


def _assign_deployments(book: PriceBook, rows: list[dict[str, Any]]) -> None:
    """Calls a self-hosted deployment served: no per-token price, a share of their hour once the
    amortize job has split it (pending until then)."""
    find = book.overrides.deployment
    for row in rows:
        model = row["response_model"] or row["request_model"]
        if row["cost_known"] is None or not model:
            continue  # no tokens reported: not a call to price
        attributes = row["attributes"]
        served = find(row["provider"] or "", model, attributes.get(semconv.SERVER_ADDRESS), row["start_time"])
        if served is None:
            continue
        row["cost_usd"] = None
        row["cost_known"] = True
        row["deployment"] = served.name
        for key in semconv.PRICE_PROVENANCE:
            attributes.pop(key, None)
        attributes.update(served.provenance(PENDING))


def check_export(media: str, signal: str) -> None:
    """ValueError unless `signal` is one tokentrace receives, in an encoding it reads."""
    if signal not in SIGNALS or media not in (PROTOBUF, JSON):
        raise ValueError(f"no OTLP {signal!r} export in {media!r}")


@dataclass
class Preparer:
    """Decode, normalize, price and redact: the CPU of the request path, with no state but the
    prices and whether to redact."""

    prices: PriceBook
    redact_content: bool = True

    def _prepared(self, tables: Tables, errors: list[str]) -> Prepared:
        """What is spooled: secrets and PII redacted first, unless the server was told not to."""
        return Prepared(redact(tables) if self.redact_content else tables, len(errors), errors)

    def export(self, project_id: str, body: bytes, media: str, signal: str = "traces") -> Prepared:
        """An OTLP export body (`media` PROTOBUF or JSON) of `signal`; DecodeError when it cannot be
        read at all, each invalid span or record rejected alone."""
        check_export(media, signal)
        if signal == "traces":
            return self.protobuf(project_id, body) if media == PROTOBUF else self.json(project_id, body)
        if media == PROTOBUF:
            return self.logs(project_id, otlp_proto.decode_logs(body), [])
        records, errors = otlp_json.decode_logs(body)
        return self.logs(project_id, records, errors)

    def spans(self, project_id: str, spans: list[RawSpan], decode_errors: list[str]) -> Prepared:
        """Normalize and price decoded spans; invalid ones are rejected with their reason."""
        batch = normalize(spans, project_id)
        price_rows(self.prices, batch.rows)
        errors = decode_errors + batch.errors
        return self._prepared(tables(batch.rows, batch.content, batch.scores), errors)

    def protobuf(self, project_id: str, body: bytes) -> Prepared:
        return self.spans(project_id, otlp_proto.decode_traces(body), [])

    def json(self, project_id: str, body: bytes) -> Prepared:
        spans, errors = otlp_json.decode_traces(body)
        return self.spans(project_id, spans, errors)

    def logs(self, project_id: str, records: list[RawLogRecord], decode_errors: list[str]) -> Prepared:
        """Content and scores of decoded OTLP log records; bad records are rejected alone."""
        batch = from_logs(records, project_id)
        errors = decode_errors + batch.errors
        return self._prepared(tables(content=batch.content, scores=batch.scores), errors)

    def scores(self, project_id: str, payload: Any) -> Prepared:
        """Scores of a REST request body; bad ones are rejected alone."""
        rows, errors = score_rows.from_request(project_id, payload)
        return self._prepared(tables(scores=rows), errors)
