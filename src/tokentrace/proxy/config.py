"""The gateway's configuration: upstreams and their keys, client keys and their tags, budgets.

A config file (TOML, `--config`) may hold:

    [upstreams.openai]
    url = "https://api.openai.com"
    api_key_env = "OPENAI_API_KEY"   # the gateway's own key; without one the client's passes through

    [[keys]]                         # client keys the gateway accepts, and the tags they carry;
    key = "tt-acme-1"                # when any are listed, every call must bring one of them
    tenant_id = "acme"

`--upstream NAME=URL` on the command line sets or overrides an upstream's URL.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tokentrace.budgets import Policy

PROVIDERS = ("openai", "anthropic")
#: Tags a client key may carry (the budget scopes, plus the other attribution tags).
KEY_TAGS = ("tenant_id", "user_id", "feature", "session_id", "prompt_template", "prompt_version")


class ConfigError(ValueError):
    """A configuration the gateway cannot start with; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Upstream:
    name: str
    url: str  # scheme://host[:port][/base], no trailing slash
    api_key: str | None = None  # replaces the client's key when set


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    upstreams: Mapping[str, Upstream]
    keys: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # client key -> tags
    policy: Policy = field(default_factory=Policy)
    redis_url: str | None = None
    admin_key: str | None = None  # needed to change budgets over the API
    service_name: str = "tokentrace-proxy"
    max_body_bytes: int = 32 * 1024 * 1024


def _url(value: object, where: str) -> str:
    """An upstream's base URL. Clients' paths (`/v1/...`) pass through as they are, so the
    provider's own base URL (`https://api.openai.com/v1`, what OPENAI_BASE_URL holds) counts
    the same as the host alone: its `/v1` is dropped rather than sent twice."""
    if not isinstance(value, str):
        raise ConfigError(f"{where}: the URL must be a string")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{where}: {value!r} is not an http(s) URL")
    base = value.rstrip("/")
    return base.removesuffix("/v1")


def parse_upstream_flags(flags: Sequence[str]) -> dict[str, str]:
    """`openai=URL` pairs from the command line."""
    urls = {}
    for flag in flags:
        name, sep, url = flag.partition("=")
        if not sep or name not in PROVIDERS:
            raise ConfigError(
                f"--upstream {flag!r}: expected NAME=URL with NAME one of {', '.join(PROVIDERS)}"
            )
        urls[name] = _url(url, f"--upstream {name}")
    return urls


def _upstreams(data: object, source: str) -> dict[str, Upstream]:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: upstreams must be a table")
    upstreams = {}
    for name, entry in data.items():
        where = f"{source}: upstreams.{name}"
        if name not in PROVIDERS:
            raise ConfigError(f"{where}: unknown upstream (use {', '.join(PROVIDERS)})")
        if not isinstance(entry, dict) or set(entry) - {"url", "api_key_env"}:
            raise ConfigError(f"{where}: give url and optionally api_key_env")
        key = None
        if "api_key_env" in entry:
            key = os.environ.get(str(entry["api_key_env"]))
            if not key:
                raise ConfigError(f"{where}: the environment variable {entry['api_key_env']} is not set")
        upstreams[name] = Upstream(name, _url(entry.get("url"), where), key)
    return upstreams


def _keys(data: object, source: str) -> dict[str, dict[str, str]]:
    if not isinstance(data, list):
        raise ConfigError(f"{source}: keys must be an array of tables ([[keys]])")
    keys: dict[str, dict[str, str]] = {}
    for number, entry in enumerate(data, 1):
        where = f"{source}: key {number}"
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str) or not entry["key"]:
            raise ConfigError(f'{where}: give the client\'s key as key = "..."')
        unknown = set(entry) - {"key", *KEY_TAGS}
        if unknown:
            raise ConfigError(f"{where}: unknown tags {sorted(unknown)}; use {', '.join(KEY_TAGS)}")
        if entry["key"] in keys:
            raise ConfigError(f"{where}: this key is listed twice")
        keys[entry["key"]] = {tag: str(value) for tag, value in entry.items() if tag != "key"}
    return keys


def build_config(
    config_path: str | Path | None = None,
    upstream_flags: Sequence[str] = (),
    policy: Policy | None = None,
    redis_url: str | None = None,
    admin_key: str | None = None,
) -> ProxyConfig:
    """The gateway's config from its file (if any) and command-line flags, checked."""
    data: dict = {}
    source = str(config_path)
    if config_path is not None:
        try:
            data = tomllib.loads(Path(config_path).read_text())
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read the config file: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from None
        unknown = set(data) - {"upstreams", "keys"}
        if unknown:
            raise ConfigError(f"{source}: unknown keys {sorted(unknown)}; use upstreams, keys")
    upstreams = _upstreams(data.get("upstreams", {}), source)
    for name, url in parse_upstream_flags(upstream_flags).items():
        upstreams[name] = Upstream(name, url, upstreams[name].api_key if name in upstreams else None)
    if not upstreams:
        raise ConfigError("no upstream: give --upstream openai=URL and/or --upstream anthropic=URL")
    return ProxyConfig(
        upstreams,
        _keys(data.get("keys", []), source),
        policy or Policy(),
        redis_url,
        admin_key,
    )
