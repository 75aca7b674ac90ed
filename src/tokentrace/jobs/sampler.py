"""Tail sampling by retention: sampling policies (TOML file or API JSON) and the loop that
applies them to the store (store/duckdb/sampling.py judges and drops).

A policy file:

    recent = "48h"                   # every trace keeps full detail this long after its last span
    base_rate = 0.05                 # and then this share of the traces no rule keeps, by trace id
    keep_errors = true
    keep_cost_above_usd = 0.25
    keep_slower_than_percentile = 99 # of traces with the same root span name (false: off)
    keep_scores = ["helpful<0.5", "refusal=true"]
    keep_alerted = true              # the example traces of firing alerts
    keep_tenants = ["acme"]
    keep_users = []
    max_open = "7d"                  # a trace still growing after this long is judged anyway
    keep_for = "30d"                 # a kept trace's detail ends then too (false: kept until deleted)

    [projects.internal]              # per project: replaces the top-level policy for it
    base_rate = 1.0

No policy, no sampling: every trace keeps its detail. A policy set through the API replaces the
file's for its project.
"""

from __future__ import annotations

import logging
import math
import tomllib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from tokentrace.jobs.periodic import Periodic
from tokentrace.store.filters import ScoreCondition
from tokentrace.store.protocol import Store
from tokentrace.store.sampling import SamplingPolicy
from tokentrace.timerange import duration_text, parse_duration

log = logging.getLogger("tokentrace.sampling")

_DURATIONS = ("recent", "max_open", "keep_for")
_LISTS = ("keep_tenants", "keep_users", "keep_scores")
_OPTIONAL = ("keep_cost_above_usd", "keep_slower_than_percentile", "keep_for")
_KNOWN = {f.name for f in fields(SamplingPolicy)}


class PolicyError(ValueError):
    """A sampling policy that cannot be applied as written."""


def parse_policy(spec: Mapping[str, Any]) -> SamplingPolicy:
    """A policy from its TOML table or API JSON object; PolicyError names what is wrong."""
    if not isinstance(spec, Mapping):
        raise PolicyError(f"a sampling policy must be an object of settings, got {type(spec).__name__}")
    unknown = set(spec) - _KNOWN
    if unknown:
        raise PolicyError(f"unknown sampling settings: {sorted(unknown)}; known: {sorted(_KNOWN)}")
    values: dict[str, Any] = {}
    try:
        for name, value in spec.items():
            if name in _OPTIONAL and (value is None or value is False):  # TOML has no null
                values[name] = None
            elif name in _DURATIONS:
                values[name] = parse_duration(str(value))
            elif name in _LISTS:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise PolicyError(f"{name} must be a list of strings")
                values[name] = (
                    tuple(ScoreCondition.parse(v) for v in value) if name == "keep_scores" else tuple(value)
                )
            elif name in ("keep_errors", "keep_alerted"):
                if not isinstance(value, bool):
                    raise PolicyError(f"{name} must be true or false")
                values[name] = value
            elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                values[name] = float(value)
            else:  # nan (TOML, or Python's JSON) passes no bound check: a cost above it keeps nothing
                raise PolicyError(f"{name} must be a number, got {value!r}")
        return SamplingPolicy(**values)
    except PolicyError:
        raise
    except ValueError as exc:  # a bad duration or score condition, or a value out of range
        raise PolicyError(str(exc)) from exc


def policy_spec(policy: SamplingPolicy) -> dict[str, Any]:
    """The policy as its API JSON (every setting, defaults included)."""
    out: dict[str, Any] = {}
    for f in fields(SamplingPolicy):
        value = getattr(policy, f.name)
        if f.name in _DURATIONS and value is not None:
            value = duration_text(value)
        elif f.name == "keep_scores":
            value = [f"{c.name}{c.op}{c.value}" for c in value]
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


@dataclass(frozen=True)
class PolicyFile:
    """The policies of a --sampling file: one for every project, and per-project ones."""

    default: SamplingPolicy | None = None
    projects: Mapping[str, SamplingPolicy] = field(default_factory=dict)


def load(path: Path) -> PolicyFile:
    """Read and check a policy file; PolicyError says which setting of which project is wrong."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"{path}: {exc}") from exc
    projects = data.pop("projects", {})
    try:
        default = parse_policy(data) if data else None
        per_project = {name: parse_policy(spec) for name, spec in projects.items()}
    except PolicyError as exc:
        raise PolicyError(f"{path}: {exc}") from exc
    return PolicyFile(default, per_project)


def summary(verdicts: pa.Table) -> dict[str, int]:
    """Counts of a sweep's verdicts: judged, kept (and why), dropped; and expired (kept traces
    past the policy's keep_for, their detail dropped now).

    Reads only the two columns it counts: the verdicts' timestamps are nanoseconds, which pyarrow
    turns into Python values only through pandas (and raises for without it)."""
    expired_flags = verdicts.column("expired").to_pylist()
    because = verdicts.column("kept_because").to_pylist()
    expired = sum(1 for flag in expired_flags if flag)
    reasons = Counter(reason for reason, flag in zip(because, expired_flags, strict=True) if not flag)
    dropped = reasons.pop(None, 0)
    judged = len(because) - expired
    return {"judged": judged, "kept": sum(reasons.values()), "dropped": dropped, "expired": expired} | reasons


class Sampler:
    """Applies each project's policy every `interval`, on its own thread; judging reads and
    deletes in one store transaction, so ingest waits only for that."""

    def __init__(self, store: Store, policies: PolicyFile | None, interval: timedelta) -> None:
        self.store = store
        self.policies = policies or PolicyFile()
        self.interval = interval
        self.schedule = Periodic("sampler", interval, self.run_once)

    def policy_for(self, project_id: str) -> tuple[SamplingPolicy | None, str]:
        """The policy that applies to a project, and where it comes from (api, file, none)."""
        stored = self.store.sampling_policies().get(project_id)
        if stored is not None:
            return parse_policy(orjson.loads(stored)), "api"
        found = self.policies.projects.get(project_id, self.policies.default)
        return found, "file" if found is not None else "none"

    def run_once(self, now: datetime | None = None) -> dict[str, dict[str, int]]:
        """One sweep of every project that has a policy; counts per project."""
        now = now or datetime.now(UTC)
        out = {}
        for project in self.store.projects():
            try:
                policy, _ = self.policy_for(project.project_id)
                if policy is None:
                    continue
                verdicts = self.store.apply_sampling(project.project_id, policy, now)
            except Exception:  # one project's failure must not stop the others
                log.exception("sampling project %r failed", project.project_id)
                continue
            out[project.project_id] = counts = summary(verdicts)
            if counts["judged"]:
                log.info("sampling %s: %s", project.project_id, counts)
        return out

    def start(self, only_while: Callable[[], bool] | None = None) -> None:
        """Sweep every `interval` on a thread of its own (each time only while `only_while()`)."""
        self.schedule.start(only_while)

    def stop(self) -> None:
        self.schedule.stop()
