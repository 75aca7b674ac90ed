"""API keys → projects. Keys are stored only as SHA-256 hashes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets

from tokentrace.server.state import ServerState

DEFAULT_PROJECT = "default"
PROJECT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class Unauthorized(Exception):
    """No valid key: answered 401 and nothing is written."""


def new_key() -> str:
    return "tt_" + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _candidates(authorization: str | None) -> list[str]:
    """Keys offered by a Bearer token, or by HTTP Basic (either half: Langfuse sends pk:sk)."""
    if not authorization:
        return []
    authorization = authorization.strip()
    if authorization[:9].lower() == "bearer%20":
        # OTEL_EXPORTER_OTLP_HEADERS values are URL-encoded ("Bearer%20<key>"); some exporters
        # (Microsoft Agent Framework's) send them without decoding.
        authorization = "Bearer " + authorization[9:]
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return [value]
    if scheme.lower() == "basic" and value:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return []
        return [k for k in (password, user) if k]
    return []


def project_for(state: ServerState, authorization: str | None) -> str:
    """The project a request acts for; raises Unauthorized."""
    offered = _candidates(authorization)
    if not offered:
        if authorization:
            raise Unauthorized("malformed Authorization header: use 'Bearer <key>'")
        if state.config.anonymous_allowed:
            return DEFAULT_PROJECT
        raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
    for key in offered:
        project = state.store.project_for_key(hash_key(key))
        if project is not None:
            return project
    raise Unauthorized("unknown API key")


def is_admin(state: ServerState, authorization: str | None) -> bool:
    """Project management: the admin token, or any anonymous caller of a loopback-only server."""
    token = state.config.admin_token
    offered = _candidates(authorization)
    if token and any(hmac.compare_digest(k, token) for k in offered):
        return True
    return not authorization and state.config.anonymous_allowed
