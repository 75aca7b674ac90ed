"""Alert rules and notifier settings: their model, defaults and validation (TOML file or API JSON).

A rules file:

    [[notifiers]]
    name = "oncall"
    type = "webhook"            # webhook (JSON), slack (Slack-compatible), log
    url = "http://127.0.0.1:9000/hook"

    [[rules]]
    name = "refund spend"
    kind = "threshold"          # threshold, baseline, anomaly, slo_burn, prompt_drift, retry_storm,
                                # agent_loop
    metric = "cost_per_hour"    # any measure of tokentrace.query.measures
    above = 50
    window = "15m"
    where = { feature = "refund-chat" }
    group_by = ["request_model"]
    notify = ["oncall"]         # default: the log
    project = "default"         # the project whose spans it reads (rules from the API: the caller's)
    for = "2m"                  # how long a breach lasts before it fires (default 0s)
    min_requests = 5            # fewer calls in the window are no evidence either way

Per kind: baseline takes `factor` (1.2) and `baseline` ("1h"); anomaly `z` (3) and `history`
("24h"); slo_burn `objective` (0.99), `window` ("1h"), `short_window` ("5m") and `burn_rate`
(14.4); prompt_drift `factor` (1.3, both ways) and `history` ("7d"); retry_storm `above` (1.5);
agent_loop (per agent: a run far past the agent's usual turns, or one tool run again and again
in a run) `factor` (3, times the median turns per run over `history`, "24h") and `above` (10:
the fewest turns that loop, and the bound where no history is known).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from tokentrace.query import filters, measures
from tokentrace.timerange import TimeRangeError, duration_text, parse_duration

KINDS = ("threshold", "baseline", "anomaly", "slo_burn", "prompt_drift", "retry_storm", "agent_loop")
NOTIFIER_TYPES = ("webhook", "slack", "log")
#: The measure each kind compares when the rule names none.
DEFAULT_METRIC = {
    "retry_storm": "attempts_per_request",
    "prompt_drift": "input_tokens_per_request",
    "slo_burn": "error_rate",
    "agent_loop": "requests",  # LLM calls per run: an agent's turns
}
_DURATIONS = ("window", "for", "baseline", "history", "short_window")


class RuleError(ValueError):
    """A rule or notifier that cannot be evaluated as written."""


@dataclass(frozen=True)
class Rule:
    """One alert rule. Durations are timedeltas; `where` and `group_by` use canonical fields."""

    name: str
    kind: str
    metric: str
    window: timedelta = timedelta(minutes=5)
    above: float | None = None
    below: float | None = None
    where: Mapping[str, str] = field(default_factory=dict)
    group_by: tuple[str, ...] = ()
    for_: timedelta = timedelta(0)  # how long a breach must last before it fires
    min_requests: int = 5  # fewer calls in the window is no evidence either way
    notify: tuple[str, ...] = ("log",)
    project: str = "default"
    severity: str = "warning"
    description: str = ""
    factor: float | None = None  # baseline: current > factor * baseline; prompt_drift: ratio
    baseline: timedelta = timedelta(hours=1)
    z: float = 3.0
    history: timedelta = timedelta(hours=24)
    objective: float = 0.99  # slo_burn: share of calls that must succeed
    short_window: timedelta = timedelta(minutes=5)
    burn_rate: float = 14.4  # slo_burn: both windows must burn at least this fast

    def describe(self) -> str:
        """The condition in words, e.g. `cost_per_hour > 50 over 15m`."""
        window = duration_text(self.window)
        if self.kind == "threshold" or self.kind == "retry_storm":
            parts = []
            if self.above is not None:
                parts.append(f"> {self.above:g}")
            if self.below is not None:
                parts.append(f"< {self.below:g}")
            return f"{self.metric} {' or '.join(parts)} over {window}"
        if self.kind == "baseline":
            return (
                f"{self.metric} > {self.factor:g} x the {duration_text(self.baseline)} before, over {window}"
            )
        if self.kind == "anomaly":
            history = duration_text(self.history)
            return f"{self.metric} {self.z:g} sigma from its {history} history, over {window}"
        if self.kind == "slo_burn":
            return (
                f"error budget of a {self.objective:.2%} SLO burning > {self.burn_rate:g}x "
                f"over {window} and {duration_text(self.short_window)}"
            )
        if self.kind == "agent_loop":
            return (
                f"an agent's run past {self.factor:g}x its usual turns (at least {self.above:g}), "
                f"or one tool run again and again, over {window}"
            )
        return f"{self.metric} of the newest prompt version vs the previous one beyond {self.factor:g}x"


@dataclass(frozen=True)
class Notifier:
    name: str
    type: str
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


def _duration(name: str, value: Any) -> timedelta:
    try:
        delta = parse_duration(str(value))
    except TimeRangeError as exc:
        raise RuleError(f"{name}: {exc}") from exc
    return delta


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RuleError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):  # TOML and Python's JSON read nan and inf: no bound compares to them
        raise RuleError(f"{name} must be finite, got {value!r}")
    return float(value)


def parse_rule(data: Mapping[str, Any]) -> Rule:
    """A Rule from a TOML table or API JSON object; anything unknown or inconsistent is a RuleError."""
    known = {f.name for f in fields(Rule)} - {"for_"} | {"for"}
    unknown = set(data) - known
    if unknown:
        raise RuleError(f"unknown rule keys: {sorted(unknown)}; known: {sorted(known)}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RuleError("a rule needs a name")
    where = f"rule {name!r}"
    kind = data.get("kind")
    if kind not in KINDS:
        raise RuleError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    values: dict[str, Any] = {"name": name.strip(), "kind": kind}
    metric = data.get("metric", DEFAULT_METRIC.get(kind))
    if metric is None:
        raise RuleError(f"{where}: a {kind} rule needs a metric")
    try:
        values["metric"] = measures.check(metric)
        if kind == "anomaly" and metric not in measures.BUCKETED:
            raise RuleError(
                f"{where}: anomaly rules need a metric with a history: {', '.join(measures.BUCKETED)}"
            )
        values["group_by"] = tuple(filters.canonical_field(g) for g in data.get("group_by", ()))
        values["where"] = {filters.canonical_field(k): str(v) for k, v in dict(data.get("where", {})).items()}
    except (measures.UnknownMeasure, filters.FilterError) as exc:
        raise RuleError(f"{where}: {exc}") from exc
    if kind == "slo_burn":  # the classic pair: an hour, confirmed by the last five minutes
        values["window"] = timedelta(hours=1)
    for key in _DURATIONS:
        if key in data:
            values["for_" if key == "for" else key] = _duration(f"{where}: {key}", data[key])
    for key in ("above", "below", "factor", "z", "objective", "burn_rate"):
        if key in data:
            values[key] = _number(f"{where}: {key}", data[key])
    for key in ("project", "severity", "description"):
        if key in data:
            values[key] = str(data[key])
    if "min_requests" in data:
        values["min_requests"] = int(_number(f"{where}: min_requests", data["min_requests"]))
    if "notify" in data:
        notify = data["notify"]
        values["notify"] = (notify,) if isinstance(notify, str) else tuple(str(n) for n in notify)
    return _with_defaults(Rule(**values), where)


def _with_defaults(rule: Rule, where: str) -> Rule:
    changes: dict[str, Any] = {}
    if rule.kind == "threshold" and rule.above is None and rule.below is None:
        raise RuleError(f"{where}: a threshold rule needs above, below or both")
    if rule.kind == "retry_storm" and rule.above is None:
        changes["above"] = 1.5
    if rule.kind == "agent_loop":
        changes["factor"] = rule.factor or 3.0
        changes["above"] = rule.above if rule.above is not None else 10.0
        if rule.group_by not in ((), ("agent_name",)):
            raise RuleError(f"{where}: an agent_loop rule is per agent: group_by is agent_name")
        changes["group_by"] = ("agent_name",)
    if rule.kind == "baseline" and rule.factor is None:
        changes["factor"] = 1.2
    if rule.kind == "prompt_drift":
        changes["factor"] = rule.factor or 1.3
        if rule.history == Rule.history:
            changes["history"] = timedelta(days=7)
        if "prompt_template" not in rule.group_by:
            changes["group_by"] = (*rule.group_by, "prompt_template")
        if rule.factor is not None and rule.factor <= 1:
            raise RuleError(f"{where}: factor must be above 1")
    if rule.kind == "slo_burn":
        if not 0 < rule.objective < 1:
            raise RuleError(f"{where}: objective must be between 0 and 1, e.g. 0.99")
        if rule.short_window >= rule.window:
            raise RuleError(f"{where}: short_window must be shorter than window")
    if rule.kind == "anomaly" and rule.history < rule.window * 6:
        raise RuleError(f"{where}: history must hold at least 6 windows")
    if rule.window < timedelta(seconds=10):
        raise RuleError(f"{where}: window must be at least 10s")
    return Rule(**{**_fields(rule), **changes})


def _fields(rule: Rule) -> dict[str, Any]:
    return {f.name: getattr(rule, f.name) for f in fields(Rule)}


def rule_spec(rule: Rule) -> dict[str, Any]:
    """The rule as JSON-ready data that parse_rule reads back (durations as text)."""
    spec: dict[str, Any] = {}
    for key, value in _fields(rule).items():
        name = "for" if key == "for_" else key
        if isinstance(value, timedelta):
            spec[name] = duration_text(value)
        elif isinstance(value, tuple):
            spec[name] = list(value)
        elif isinstance(value, Mapping):
            spec[name] = dict(value)
        elif value is not None:
            spec[name] = value
    return spec


def parse_notifier(data: Mapping[str, Any]) -> Notifier:
    name, kind = data.get("name"), data.get("type")
    if not isinstance(name, str) or not name:
        raise RuleError("a notifier needs a name")
    if kind not in NOTIFIER_TYPES:
        raise RuleError(f"notifier {name!r}: type must be one of {', '.join(NOTIFIER_TYPES)}")
    url = data.get("url")
    if kind != "log" and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise RuleError(f"notifier {name!r}: a {kind} notifier needs an http(s) url")
    unknown = set(data) - {"name", "type", "url", "headers"}
    if unknown:
        raise RuleError(f"notifier {name!r}: unknown keys {sorted(unknown)}")
    return Notifier(name, kind, url, dict(data.get("headers", {})))


@dataclass(frozen=True)
class RuleFile:
    rules: tuple[Rule, ...]
    notifiers: Mapping[str, Notifier]


def load(path: Path) -> RuleFile:
    """Rules and notifiers from a TOML file; every rule's notifiers must exist."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RuleError(f"{path}: {exc}") from exc
    notifiers = {"log": Notifier("log", "log")}
    for table in data.get("notifiers", []):
        notifier = parse_notifier(table)
        notifiers[notifier.name] = notifier
    rules = tuple(parse_rule(table) for table in data.get("rules", []))
    names = [r.name for r in rules]
    if len(names) != len(set(names)):
        raise RuleError(f"{path}: rule names must be unique")
    for rule in rules:
        check_notifiers(rule, notifiers)
    return RuleFile(rules, notifiers)


def check_notifiers(rule: Rule, notifiers: Mapping[str, Notifier]) -> None:
    missing = [n for n in rule.notify if n not in notifiers]
    if missing:
        raise RuleError(
            f"rule {rule.name!r} notifies unknown notifiers {missing}; known: {sorted(notifiers)}"
        )
