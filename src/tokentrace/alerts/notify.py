"""Notifiers: a generic JSON webhook, a Slack-compatible webhook, and the log."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from tokentrace.alerts.rules import Notifier

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("tokentrace.alerts")


class DeliveryError(RuntimeError):
    """The receiver did not take the notification (it will be sent again)."""


def headline(payload: dict[str, Any]) -> str:
    """One line: `[FIRING] refund spend (feature=refund-chat): cost_per_hour 62.1 > 50`."""
    group = ", ".join(f"{k}={v}" for k, v in payload["group"].items())
    where = f" ({group})" if group else ""
    return f"[{payload['status'].upper()}] {payload['rule']}{where}: {payload['detail']}"


def _cause_lines(payload: dict[str, Any]) -> list[str]:
    triage = payload.get("triage") or {}
    causes = [*(triage.get("causes") or []), *(triage.get("error_causes") or [])]
    return [f"{n}. {c['evidence']}" for n, c in enumerate(causes, 1)]


def slack_body(payload: dict[str, Any]) -> dict[str, Any]:
    """Slack's incoming-webhook shape: `text` (the fallback) and blocks."""
    lines = _cause_lines(payload)
    text = headline(payload)
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*"}}]
    if lines:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": "What changed:\n" + "\n".join(lines)}}
        )
    return {"text": text, "blocks": blocks}


def send(notifier: Notifier, payload: dict[str, Any], client: httpx.Client) -> None:
    """Deliver one notification; raises DeliveryError when the receiver did not accept it."""
    if notifier.type == "log":
        log.warning("%s%s", headline(payload), "".join(f"\n  {line}" for line in _cause_lines(payload)))
        return
    import httpx  # here: an idle server need not load httpx (nor the rich and click its CLI loads)

    body = slack_body(payload) if notifier.type == "slack" else payload
    try:
        response = client.post(notifier.url, json=body, headers=dict(notifier.headers))
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{notifier.name}: {exc.__class__.__name__}: {exc}") from exc
    if response.status_code >= 300:
        raise DeliveryError(f"{notifier.name}: HTTP {response.status_code}")
