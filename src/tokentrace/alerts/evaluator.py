"""The alert evaluator: checks every rule on a schedule, moves each (rule, group) through
pending → firing → resolved, and delivers the notifications each move owes.

State and owed notifications are written to the store in one transaction before anything is
sent, and a notification is marked delivered only once its receiver took it: a restart
neither repeats a firing nor loses one (a crash between sending and marking may resend one).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson

from tokentrace.alerts import conditions, notify
from tokentrace.alerts.conditions import Observation
from tokentrace.alerts.rules import Notifier, Rule, RuleError, RuleFile, parse_rule
from tokentrace.jobs.periodic import Periodic
from tokentrace.query.triage import triage
from tokentrace.query.triage.causes import Cause
from tokentrace.store.protocol import Store

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("tokentrace.alerts")

_KEEP_RESOLVED = timedelta(hours=24)  # a resolved alert stays listed this long
_MAX_ATTEMPTS = 50  # a notification no receiver takes is given up after this many tries
_TRIAGE_BASELINE = timedelta(hours=1)


def group_key(group: Mapping[str, Any]) -> str:
    """A stable text key for a group's labels ("" for an ungrouped rule)."""
    return json.dumps(dict(group), sort_keys=True, default=str) if group else ""


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


@dataclass(frozen=True)
class Move:
    """What one evaluation does to one (rule, group): its new state (None: at rest) and the
    notification it owes, if any."""

    state: dict[str, Any] | None
    notify: str | None  # "firing" or "resolved"


def step(rule: Rule, previous: dict[str, Any] | None, seen: Observation | None, now: datetime) -> Move:
    """The state machine. A breach goes pending, then firing once it has lasted `for`; the end
    of a firing breach (or of its data) resolves it; a pending one that ends was never news."""
    prev = previous or {}
    status = prev.get("status")
    state = {
        "rule": rule.name,
        "group_key": group_key(seen.group) if seen else prev.get("group_key", ""),
        "value": seen.value if seen else prev.get("value"),
        "evaluated_at": now,
        "active_since": None,
        "fired_at": None,
        "resolved_at": None,
    }
    if seen is not None and seen.breached:
        since = prev["active_since"] if status in ("pending", "firing") else now
        if status == "firing":
            return Move(
                {**state, "status": "firing", "active_since": since, "fired_at": prev["fired_at"]}, None
            )
        if now - since >= rule.for_:
            return Move({**state, "status": "firing", "active_since": since, "fired_at": now}, "firing")
        return Move({**state, "status": "pending", "active_since": since}, None)
    if status == "firing":
        resolved = {"active_since": prev["active_since"], "fired_at": prev["fired_at"], "resolved_at": now}
        return Move({**state, "status": "resolved", **resolved}, "resolved")
    if status == "resolved" and now - prev["resolved_at"] < _KEEP_RESOLVED:
        return Move({**prev, "evaluated_at": now}, None)
    return Move(None, None)


class Evaluator:
    """Evaluates the rules of the file and of the API (per project) every `interval`."""

    def __init__(
        self,
        store: Store,
        rule_file: RuleFile | None = None,
        *,
        interval: timedelta = timedelta(seconds=30),
        base_url: str = "http://127.0.0.1:4318",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.file = rule_file or RuleFile((), {"log": Notifier("log", "log")})
        self.interval = interval
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        self._client: httpx.Client | None = None  # made on the first webhook sent
        self.schedule = Periodic("alerts", interval, self.evaluate)

    # --- rules ---------------------------------------------------------------------------
    @property
    def notifiers(self) -> Mapping[str, Notifier]:
        return self.file.notifiers

    def rules(self, project_id: str | None = None) -> list[tuple[Rule, str]]:
        """(rule, source) for every rule, from the file ("file") and the API ("api")."""
        found = [(r, "file") for r in self.file.rules if project_id in (None, r.project)]
        for project, name, spec in self.store.alert_rules(project_id):
            try:
                found.append((parse_rule({**orjson.loads(spec), "project": project}), "api"))
            except RuleError as exc:  # stored before a rule change made it invalid: skip it, say so
                log.error("alert rule %r of project %r is not valid any more: %s", name, project, exc)
        return found

    # --- one evaluation -------------------------------------------------------------------
    def evaluate(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Evaluate every rule once at `now`, then deliver what is owed; returns the new events."""
        now = now or self.clock()
        events: list[dict[str, Any]] = []
        by_project: dict[str, list[Rule]] = {}
        for rule, _ in self.rules():
            by_project.setdefault(rule.project, []).append(rule)
        for project, rules in by_project.items():
            events += self._evaluate_project(project, rules, now)
        self.deliver()
        return events

    def _evaluate_project(self, project: str, rules: list[Rule], now: datetime) -> list[dict[str, Any]]:
        previous = {(s["rule"], s["group_key"]): s for s in self.store.alert_states(project)}
        states, cleared, events = [], [], []
        for rule in rules:
            try:
                seen = {group_key(o.group): o for o in conditions.observe(self.store, rule, now)}
            except Exception:  # one broken rule must not stop the others
                log.exception("alert rule %r could not be evaluated", rule.name)
                continue
            keys = set(seen) | {key for (name, key) in previous if name == rule.name}
            for key in sorted(keys):
                move = step(rule, previous.get((rule.name, key)), seen.get(key), now)
                if move.state is not None:
                    states.append(move.state)
                elif (rule.name, key) in previous:
                    cleared.append((rule.name, key))
                if move.notify:
                    state = move.state or {}
                    group = seen[key].group if key in seen else json.loads(key or "{}")
                    events += self._events(project, rule, group, seen.get(key), state, move.notify, now)
        self.store.save_alert_evaluation(project, states, cleared, events)
        return events

    def _events(
        self,
        project: str,
        rule: Rule,
        group: dict[str, Any],
        seen: Observation | None,
        state: dict[str, Any],
        status: str,
        now: datetime,
    ) -> list[dict[str, Any]]:
        detail = seen.detail if seen else "no calls in the window"
        payload = {
            "status": status,
            "project_id": project,
            "rule": rule.name,
            "kind": rule.kind,
            "severity": rule.severity,
            "description": rule.description,
            "condition": rule.describe(),
            "metric": rule.metric,
            "group": group,
            "value": state.get("value"),
            "detail": detail,
            "active_since": _iso(state.get("active_since")),
            "at": _iso(now),
            "links": self._links(project, rule, group, now),
        }
        if status == "firing":
            payload["triage"] = self._triage(project, rule, group, now)
        incident = uuid.uuid4().hex
        return [
            {
                "event_id": f"{incident}-{name}",
                "rule": rule.name,
                "group_key": group_key(group),
                "status": status,
                "at": now,
                "payload": {**payload, "notifier": name},
            }
            for name in rule.notify
        ]

    def _links(self, project: str, rule: Rule, group: dict[str, Any], now: datetime) -> dict[str, str]:
        since, until = _iso(now - rule.window), _iso(now)
        tags = {**rule.where, **{k: v for k, v in group.items() if v is not None}}
        window = int(max(rule.window, timedelta(minutes=1)).total_seconds() // 60)
        return {
            "traces": f"{self.base_url}/api/v1/traces?{urlencode({**tags, 'since': since, 'until': until})}",
            "triage": f"{self.base_url}/api/v1/triage?{urlencode({'since': f'{window}m', 'until': until})}",
        }

    def _triage(
        self, project: str, rule: Rule, group: dict[str, Any], now: datetime
    ) -> dict[str, Any] | None:
        """What changed in the rule's window against the hour before it, in the rule's slice (its
        `where` and the alerting group: a feature's alert names causes inside that feature)."""
        where = {**rule.where, **{k: str(v) for k, v in group.items() if v is not None}}
        window = max(rule.window, timedelta(minutes=1))
        try:
            found = triage(self.store, project, window, _TRIAGE_BASELINE, now, where)
        except Exception:  # the notification matters more than its explanation
            log.exception("triage for alert %r failed", rule.name)
            return None
        keep = ("dimension", "value", "filters", "metric", "before", "after", "contribution", "evidence")

        def top(causes: list[Cause]) -> list[dict[str, Any]]:
            return [
                {**{k: getattr(c, k) for k in keep}, "example_trace_ids": c.example_trace_ids[:3]}
                for c in causes[:3]
            ]

        return {
            "window": asdict(found.window),
            "baseline": asdict(found.baseline),
            "causes": top(found.causes),
            # (an error rate's alert is explained by where the failing calls come from: calls that
            # fail for good cost nothing, so no cost cause names them)
            "error_causes": top(found.errors.causes),
        }

    # --- delivery -------------------------------------------------------------------------
    def deliver(self) -> int:
        """Send every owed notification (oldest first); returns how many were delivered."""
        delivered = 0
        for event in self.store.alert_events(undelivered=True, limit=1000):
            if event["attempts"] >= _MAX_ATTEMPTS:
                continue
            payload = event["payload"]
            notifier = self.notifiers.get(payload["notifier"])
            if notifier is None:
                self.store.mark_alert_event(event["event_id"], False, f"no notifier {payload['notifier']!r}")
                continue
            try:
                notify.send(notifier, {**payload, "event_id": event["event_id"]}, self._http())
            except notify.DeliveryError as exc:
                log.warning("alert notification not delivered (will retry): %s", exc)
                self.store.mark_alert_event(event["event_id"], False, str(exc))
                continue
            self.store.mark_alert_event(event["event_id"], True)
            delivered += 1
        return delivered

    def _http(self) -> httpx.Client:
        """The webhooks' HTTP client, made on first use: an idle server need not load httpx."""
        if self._client is None:
            import httpx

            self._client = httpx.Client(timeout=5.0)
        return self._client

    # --- schedule -------------------------------------------------------------------------
    def start(self, only_while: Callable[[], bool] | None = None) -> None:
        """Evaluate every `interval` in a background thread until stop() (each time only while
        `only_while()`: this node holds the job's lease)."""
        self.schedule.start(only_while)

    def stop(self) -> None:
        self.schedule.stop()
        if self._client is not None:
            self._client.close()
