"""A span's messages as one conversation, whichever way the instrumentation sent them.

The latest GenAI conventions send whole message lists (gen_ai.input.messages, ...) in
the parts format; v1.36 and earlier send one event per message (gen_ai.user.message,
gen_ai.choice, ...) whose body holds the message. Those are assembled here into the parts
format, in event time order, so every reader sees one shape.
"""

from __future__ import annotations

from typing import Any

_ROLE_OF_EVENT = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}


def _parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    content = message.get("content")
    if isinstance(content, str):
        parts.append({"type": "text", "content": content})
    elif isinstance(content, list):  # content blocks
        for block in content:
            if isinstance(block, dict) and isinstance(block.get("text"), str):
                parts.append({"type": "text", "content": block["text"]})
    for call in message.get("tool_calls") or []:
        if isinstance(call, dict):
            function = call.get("function") or {}
            parts.append(
                {
                    "type": "tool_call",
                    "id": call.get("id"),
                    "name": function.get("name"),
                    "arguments": function.get("arguments"),
                }
            )
    return parts


def from_events(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """(system_instructions, input_messages, output_messages) from per-message events."""
    system: list[dict[str, Any]] = []
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    for event in sorted(events, key=lambda e: e.get("time_unix_nano") or 0):
        name = event.get("name")
        body = event.get("body") if isinstance(event.get("body"), dict) else {}
        if name in _ROLE_OF_EVENT:
            role = body.get("role") or _ROLE_OF_EVENT[name]
            if role == "tool":
                parts = [
                    {"type": "tool_call_response", "id": body.get("id"), "response": body.get("content")}
                ]
                inputs.append({"role": "tool", "parts": parts})
            elif role == "system":
                system.extend(_parts(body))
            else:
                inputs.append({"role": role, "parts": _parts(body)})
        elif name == "gen_ai.choice":
            message = body.get("message") if isinstance(body.get("message"), dict) else {}
            outputs.append(
                {
                    "role": message.get("role") or "assistant",
                    "parts": _parts(message),
                    "finish_reason": body.get("finish_reason"),
                }
            )
    if not (system or inputs or outputs):
        return None
    return {"system_instructions": system or None, "input_messages": inputs, "output_messages": outputs}


def conversation(content: dict[str, Any] | None) -> dict[str, Any] | None:
    """The stored content of a span, events in time order, with its message lists filled from
    the events when the source sent messages only as events."""
    if content is None:
        return None
    if content.get("events"):
        # Parts merged from several exports are stored in arrival order.
        content["events"] = sorted(content["events"], key=lambda e: e.get("time_unix_nano") or 0)
    if content.get("input_messages") or content.get("output_messages"):
        return content
    assembled = from_events(content.get("events") or [])
    if assembled is None:
        return content
    return {**content, **{k: v for k, v in assembled.items() if content.get(k) is None}}
