"""Fields every span has, whatever its convention: identity, timing, status, resource, tags."""

from __future__ import annotations

import math
from typing import Any

import orjson

from tokentrace import semconv, vocab
from tokentrace.canonical import FIELD_NAMES, LLM_OPERATIONS, MODALITY_TOKEN_FIELDS, TOKEN_FIELDS
from tokentrace.ingest.normalize.attrmap import AttributeMap
from tokentrace.ingest.raw import SPAN_KINDS, STATUS_CODES, RawSpan, SpanRejected

_HEX = frozenset("0123456789abcdef")
_EMPTY_ROW = dict.fromkeys(FIELD_NAMES)

_TAGS = (
    ("user_id", semconv.USER_ID),
    ("session_id", semconv.SESSION_ID),
    ("tenant_id", semconv.TENANT_ID),
    ("feature", semconv.FEATURE),
    ("prompt_template", semconv.PROMPT_TEMPLATE),
    ("prompt_version", semconv.PROMPT_VERSION),
)
TAG_NAMES = tuple(field for field, _ in _TAGS)
_BAGGAGE = tuple((field, f"baggage:{field}") for field in TAG_NAMES)

# Span attributes first, then baggage-stamped copies (the resource sits between them).
_SPAN_MAP = AttributeMap(
    {
        **{field: keys for field, keys in _TAGS},
        **{f"baggage:{field}": tuple(f"baggage.{k}" for k in keys) for field, keys in _TAGS},
        "request_id": semconv.REQUEST_ID,
        "retry_attempt": semconv.RETRY_ATTEMPT,
        "service_tier": semconv.SERVICE_TIER,
        "conversation_id": (semconv.CONVERSATION_ID,),
        "error.type": (semconv.ERROR_TYPE,),
        "http_status": semconv.HTTP_STATUS,
    },
    keep=frozenset(
        {semconv.CONVERSATION_ID, semconv.ERROR_TYPE, *semconv.HTTP_STATUS}
        | {f"baggage.{k}" for _, keys in _TAGS for k in keys}
    ),
)


def is_id(value: str, length: int) -> bool:
    """A valid trace (32) or span (16) id: lowercase hex, not all zeros."""
    return len(value) == length and _HEX.issuperset(value) and value.count("0") != length


def check_id(value: str, length: int, what: str, allow_empty: bool = False) -> str:
    """`value` if it is a valid id (or empty, when allowed); SpanRejected says why not."""
    if not value and allow_empty:
        return ""
    if len(value) != length or not _HEX.issuperset(value):
        raise SpanRejected(f"{what} {value[:40]!r} must be {length} lowercase hex digits")
    if value.count("0") == length:
        raise SpanRejected(f"{what} must not be all zeros")
    return value


def take(attrs: dict[str, Any], keys: tuple[str, ...] | str) -> Any:
    """Remove every spelling of a concept from `attrs`; return the first one present."""
    if isinstance(keys, str):
        return attrs.pop(keys, None)
    found = None
    for key in keys:
        value = attrs.pop(key, None)
        if found is None and value is not None:
            found = value
    return found


def first(attrs: dict[str, Any], keys: tuple[str, ...] | str) -> Any:
    """The first spelling of a concept present in `attrs`, leaving it in place."""
    if isinstance(keys, str):
        return attrs.get(keys)
    for key in keys:
        value = attrs.get(key)
        if value is not None:
            return value
    return None


def text(value: Any) -> str | None:
    """A tag or name as text; empty strings count as absent."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    return None


def token_count(value: Any, key: str) -> int | None:
    """A provider-reported token count; rejects the span if it is negative or not a count."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise SpanRejected(f"{key} must be a non-negative integer, got {value!r}")
    if isinstance(value, int):
        count = value
    elif (isinstance(value, float) and math.isfinite(value) and value.is_integer()) or (
        isinstance(value, str) and value.strip().isdigit()
    ):
        count = int(value)
    else:
        raise SpanRejected(f"{key} must be a non-negative integer, got {value!r}")
    if count < 0:
        raise SpanRejected(f"{key} must be a non-negative integer, got {count}")
    return count


def number(value: Any) -> float | None:
    """A request parameter as a float, or None when it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


_RESOURCE_CACHE: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}


def resource_fields(resource: dict[str, Any]) -> dict[str, Any]:
    """Service, environment and tags of a resource, computed once per resource object.

    Every span of an export shares its resource dict, so this runs once per resource.
    """
    cached = _RESOURCE_CACHE.get(id(resource))
    if cached is not None and cached[0] is resource:
        return cached[1]
    fields = {
        "service_name": text(resource.get(semconv.SERVICE_NAME)),
        "service_version": text(resource.get(semconv.SERVICE_VERSION)),
        "environment": text(first(resource, semconv.ENVIRONMENT)),
    }
    for field, keys in _TAGS:
        fields[field] = text(first(resource, keys))
    if len(_RESOURCE_CACHE) > 1024:
        _RESOURCE_CACHE.clear()
    _RESOURCE_CACHE[id(resource)] = (resource, fields)
    return fields


def base_row(span: RawSpan, project_id: str) -> dict[str, Any]:
    """The canonical row with every convention-independent field filled in."""
    trace_id = check_id(span.trace_id, 32, "trace id")
    span_id = check_id(span.span_id, 16, "span id")
    parent = check_id(span.parent_span_id, 16, "parent span id", allow_empty=True)
    start, end = span.start_unix_nano, span.end_unix_nano
    if start <= 0:
        raise SpanRejected("start time is missing")
    if end < start:
        raise SpanRejected(f"end time {end} is before start time {start}")
    if end >= 2**63:
        raise SpanRejected("end time is out of range")
    row = _EMPTY_ROW.copy()
    row["project_id"] = project_id
    row["trace_id"] = trace_id
    row["span_id"] = span_id
    row["parent_span_id"] = parent
    row["name"] = span.name
    row["kind"] = SPAN_KINDS[span.kind] if 0 <= span.kind < len(SPAN_KINDS) else "unspecified"
    row["start_time"] = start
    row["end_time"] = end
    row["duration_ms"] = (end - start) / 1e6
    row["status"] = STATUS_CODES[span.status_code] if 0 <= span.status_code < 3 else "unset"
    row["status_message"] = span.status_message or None
    row["operation"] = "other"
    row["retry_attempt"] = 0

    found = _SPAN_MAP.extract(span.attributes)
    resource = resource_fields(span.resource)
    row["service_name"] = resource["service_name"]
    row["service_version"] = resource["service_version"]
    row["environment"] = resource["environment"]
    if not found:  # most spans: a child step with no tags or request fields of its own
        for field in TAG_NAMES:
            row[field] = resource[field]
        if row["status"] == "error":
            _error_type(span, row, found)
        return row
    for field, baggage in _BAGGAGE:
        row[field] = text(found.get(field)) or resource[field] or text(found.get(baggage))
    if row["session_id"] is None:
        conversation = text(found.get("conversation_id"))
        # Microsoft Agent Framework sets a Responses API call's previous response id as its
        # conversation id: that chains two calls, it names no conversation.
        if conversation is not None and not conversation.startswith("resp_"):
            row["session_id"] = conversation

    row["request_id"] = text(found.get("request_id"))
    tier = text(found.get("service_tier"))
    row["service_tier"] = tier.lower() if tier else None
    attempt = integer(found.get("retry_attempt"))
    if attempt is not None and attempt >= 0:
        row["retry_attempt"] = attempt

    if row["status"] == "error" or "error.type" in found:
        _error_type(span, row, found)
    return row


def _error_type(span: RawSpan, row: dict[str, Any], found: dict[str, Any]) -> None:
    """The canonical error type of a failed span, from every clue it carries."""
    exception_type = next(
        (e.attributes.get("exception.type") for e in span.events if e.name == "exception"), None
    )
    row["error_type"] = vocab.error_type(
        found.get("error.type"),
        exception_type,
        span.status_message,
        http_status=integer(found.get("http_status")),
    )
    if row["error_type"] == "bad_request" and span.status_message:
        # A 400 whose message names the context window is a context-length error.
        refined = vocab.error_type(span.status_message)
        if refined == "context_length":
            row["error_type"] = refined


def fill_tags(row: dict[str, Any], values: dict[str, Any]) -> None:
    """Fill the attribution tags `row` still lacks from a family's own tag map (metadata,
    association properties…), read with the same spellings as span attributes."""
    for field, keys in _TAGS:
        if row[field] is None:
            row[field] = text(first(values, keys))


def json_object(value: Any) -> Any:
    """A value that may arrive as JSON text (a dict, list or quoted scalar) as Python; else as is."""
    if isinstance(value, str) and value[:1] in ("{", "[", '"'):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def dig(value: Any, *path: str) -> Any:
    """value[path[0]][path[1]]…, or None where a step is missing or not a mapping."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def add_cache_to_input(row: dict[str, Any]) -> None:
    """For sources that pass Anthropic's raw input count through (cache reads and writes
    excluded): make input_tokens the canonical total, cache included."""
    if row["input_tokens"] is None:
        return
    row["input_tokens"] += (row["cache_read_tokens"] or 0) + (row["cache_write_tokens"] or 0)
    if row["output_tokens"] is not None:
        row["total_tokens"] = row["input_tokens"] + row["output_tokens"]


_SUBTOTALS = tuple((field, semconv.SUBTOTAL + field) for field in (*TOKEN_FIELDS, *MODALITY_TOKEN_FIELDS))


def _serving_provider(row: dict[str, Any], attrs: dict[str, Any]) -> None:
    """The provider is who served the call: a router's `provider/model` name is split (the name
    as sent stays in attributes), and a framework's name in the provider's place gives way to the
    server's host or the model family."""
    provider = row["provider"]
    for field in ("request_model", "response_model"):
        routed, model = vocab.split_route(row[field], provider)
        if routed is not None:
            attrs[semconv.ROUTED_MODEL] = row[field]
            row[field] = model
            provider = routed
    if provider is None or vocab.is_framework(provider):
        provider = vocab.serving_provider(
            attrs.get(semconv.SERVER_ADDRESS), row["response_model"] or row["request_model"]
        )
    row["provider"] = provider


def _set_aside_subtotals(row: dict[str, Any], attrs: dict[str, Any]) -> None:
    """An agent run, a workflow or a chain that reports usage reports its children's totals: the
    counts move to `tokentrace.subtotal.*` attributes, shown and never added to a total. A remote
    agent (`invoke_agent` as a CLIENT span) is the one record of the calls made for it: it keeps
    its usage."""
    if row["kind"] == "client" and row["operation"] == "invoke_agent":
        return
    for field, key in _SUBTOTALS:
        value = row[field]
        if value is not None:
            attrs[key] = value
            row[field] = None


def _never_reached_a_model(row: dict[str, Any], attrs: dict[str, Any]) -> bool:
    """An in-process span of LLM kind with no usage, no answer (id, finish reason, output) and no
    error is a preparation step (LlamaIndex's `_prepare_chat_with_tools`), not a call. A CLIENT
    span did send a request: it stays a call, even when its library recorded nothing of the answer."""
    return (
        row["kind"] != "client"
        and row["status"] != "error"
        and row["input_tokens"] is None
        and row["output_tokens"] is None
        and row["response_id"] is None
        and row["finish_reason"] is None
        and semconv.OUTPUT_MESSAGES not in attrs
    )


def complete(row: dict[str, Any], attrs: dict[str, Any]) -> None:
    """What follows from the fields any family read: who served the call, usage that is a
    subtotal set aside, a preparation step that is no call, the total when only its parts were
    sent (an embedding has no output tokens), the streaming flag and the time per output token."""
    if row["provider"] is not None or row["request_model"] or row["response_model"]:
        _serving_provider(row, attrs)
    if row["operation"] in LLM_OPERATIONS and _never_reached_a_model(row, attrs):
        attrs[semconv.NOT_A_CALL] = row["operation"]
        row["operation"] = "other"
    if row["operation"] not in LLM_OPERATIONS and (
        row["input_tokens"] is not None or row["output_tokens"] is not None or row["total_tokens"] is not None
    ):
        _set_aside_subtotals(row, attrs)
    if row["total_tokens"] is None and row["input_tokens"] is not None:
        if row["output_tokens"] is not None:
            row["total_tokens"] = row["input_tokens"] + row["output_tokens"]
        elif row["operation"] == "embeddings":
            row["total_tokens"] = row["input_tokens"]
    if row["streaming"] is False:
        row["ttft_ms"] = None  # some libraries time the "first token" of a whole answer: that is latency
    elif row["ttft_ms"] is not None:
        row["streaming"] = True
    output = row["output_tokens"]
    if row["ttft_ms"] is not None and output and output > 1:
        row["tpot_ms"] = max(row["duration_ms"] - row["ttft_ms"], 0.0) / (output - 1)
