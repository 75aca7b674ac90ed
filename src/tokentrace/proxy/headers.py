"""Which headers cross the gateway, and the tags a client sends in its own."""

from __future__ import annotations

from collections.abc import Iterable

# Hop-by-hop headers (RFC 9110 §7.6.1) and the ones the gateway sets itself.
_NOT_FORWARDED = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
        b"accept-encoding",
        b"traceparent",
        b"tracestate",
    }
)
_NOT_RETURNED = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"trailer", b"upgrade"}
)
_CLIENT_KEYS = (b"authorization", b"x-api-key", b"api-key")

#: x-tokentrace-* request headers → the tag they set.
TAG_HEADERS = {
    b"x-tokentrace-tenant": "tenant_id",
    b"x-tokentrace-user": "user_id",
    b"x-tokentrace-feature": "feature",
    b"x-tokentrace-session": "session_id",
    b"x-tokentrace-prompt-template": "prompt_template",
    b"x-tokentrace-prompt-version": "prompt_version",
}


def client_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The provider key the client sent: `Authorization: Bearer …` (OpenAI) or `x-api-key` (Anthropic)."""
    for name, value in headers:
        if name in _CLIENT_KEYS:
            text = value.decode("latin-1").strip()
            if name == b"authorization":
                scheme, _, token = text.partition(" ")
                text = token.strip() if scheme.lower() == "bearer" else ""
            if text:
                return text
    return None


def tags_of(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    tags = {}
    for name, value in headers:
        tag = TAG_HEADERS.get(name)
        if tag is not None and value:
            tags[tag] = value.decode("utf-8", "replace")
    return tags


def upstream_headers(
    headers: Iterable[tuple[bytes, bytes]], provider: str, api_key: str | None
) -> list[tuple[bytes, bytes]]:
    """The client's headers for the upstream: hop-by-hop and tokentrace's own removed, the
    gateway's key in place of the client's when it has one, and an uncompressed answer asked for
    (the gateway reads usage from it)."""
    out = [
        (name, value)
        for name, value in headers
        if name not in _NOT_FORWARDED
        and not name.startswith(b"x-tokentrace-")
        and not (api_key and name in _CLIENT_KEYS)
    ]
    if api_key:
        if provider == "anthropic":
            out.append((b"x-api-key", api_key.encode()))
        else:
            out.append((b"authorization", b"Bearer " + api_key.encode()))
    out.append((b"accept-encoding", b"identity"))
    return out


def returned_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(name.lower(), value) for name, value in headers if name.lower() not in _NOT_RETURNED]


def as_text(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """Headers as the upstream client takes them."""
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]
