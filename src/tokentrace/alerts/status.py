"""What the alerts say now: each rule's state per group, and the notifications sent (API and UI)."""

from __future__ import annotations

import json
from typing import Any

from tokentrace.store.protocol import AlertLog

_RANK = {"firing": 0, "pending": 1, "resolved": 2}
_EVENT_FIELDS = ("event_id", "rule", "status", "at", "delivered_at", "attempts", "last_error", "payload")


def states(store: AlertLog, project_id: str) -> list[dict[str, Any]]:
    """Every alert not at rest (pending, firing, or resolved in the last day), firing first."""
    found = [
        {
            "rule": row["rule"],
            "group": json.loads(row["group_key"]) if row["group_key"] else {},
            **{
                k: row[k]
                for k in ("status", "value", "active_since", "fired_at", "resolved_at", "evaluated_at")
            },
        }
        for row in store.alert_states(project_id)
    ]
    return sorted(found, key=lambda a: _RANK[a["status"]])


def events(store: AlertLog, project_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """The newest notifications (firing and resolved, one per notifier) with their delivery."""
    return [{k: e[k] for k in _EVENT_FIELDS} for e in store.alert_events(project_id, limit=limit)]
