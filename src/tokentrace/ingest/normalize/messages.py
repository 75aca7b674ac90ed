"""Message content in other shapes → the gen_ai parts format ([{role, parts: [...]}]).

Families that record the provider's own message JSON (Langfuse) or flatten messages into
indexed attributes (OpenInference's `llm.input_messages.0.message.content`) are read into
the one format the store and the UI show.
"""

from __future__ import annotations

import re
from typing import Any

from tokentrace.ingest.normalize.fields import json_object


def _text_parts(content: Any) -> list[dict[str, Any]]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append({"type": "text", "content": block})
            elif isinstance(block, dict):
                text = block.get("text", block.get("content"))
                if isinstance(text, str):
                    parts.append({"type": "text", "content": text})
                else:
                    parts.append({"type": str(block.get("type") or "other"), "content": block})
        return parts
    return [{"type": "text", "content": str(content)}]


def _tool_call_part(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") if isinstance(call.get("function"), dict) else call
    return {
        "type": "tool_call",
        "id": call.get("id"),
        "name": function.get("name"),
        "arguments": json_object(function.get("arguments")),
    }


def from_openai(messages: Any, finish_reason: str | None = None) -> list[dict[str, Any]] | None:
    """Chat messages as the provider takes them (role, content, tool_calls) in the parts format."""
    messages = json_object(messages)
    if isinstance(messages, dict) and isinstance(messages.get("messages"), list):
        messages = messages["messages"]  # a whole request body
    if isinstance(messages, dict | str):
        messages = [messages if isinstance(messages, dict) else {"role": "assistant", "content": messages}]
    if not isinstance(messages, list):
        return None
    out = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = message.get("role") or "assistant"
        if role == "tool":
            parts = [
                {
                    "type": "tool_call_response",
                    "id": message.get("tool_call_id"),
                    "response": message.get("content"),
                }
            ]
        else:
            parts = _text_parts(message.get("content"))
            parts += [_tool_call_part(c) for c in message.get("tool_calls") or [] if isinstance(c, dict)]
        entry: dict[str, Any] = {"role": role, "parts": parts}
        if finish_reason and role == "assistant":
            entry["finish_reason"] = finish_reason
        out.append(entry)
    return out or None


_INDEXED = re.compile(r"^(\d+)\.message\.(.+)$")


def take_flattened(attrs: dict[str, Any], prefix: str) -> list[dict[str, Any]] | None:
    """Remove `prefix.N.message.*` keys from `attrs` and rebuild the messages they flatten."""
    found: dict[int, dict[str, Any]] = {}
    for key in [k for k in attrs if k.startswith(prefix)]:
        match = _INDEXED.match(key[len(prefix) + 1 :])
        if match is None:
            continue
        value = attrs.pop(key)
        found.setdefault(int(match.group(1)), {})[match.group(2)] = value
    if not found:
        return None
    messages = []
    for index in sorted(found):
        fields = found[index]
        content: Any = fields.get("content")
        if content is None:
            # contents.M.message_content.text / .type
            blocks: dict[int, dict[str, Any]] = {}
            for key, value in fields.items():
                parts = key.split(".")
                if parts[0] == "contents" and len(parts) >= 4 and parts[1].isdigit():
                    blocks.setdefault(int(parts[1]), {})[parts[3]] = value
            content = [blocks[m] for m in sorted(blocks)] or None
        calls: dict[int, dict[str, Any]] = {}
        for key, value in fields.items():
            parts = key.split(".")
            if parts[0] == "tool_calls" and len(parts) >= 4 and parts[1].isdigit():
                call = calls.setdefault(int(parts[1]), {"function": {}})
                name = ".".join(parts[3:])
                if name.startswith("function."):
                    call["function"][name.removeprefix("function.")] = value
                else:
                    call[name] = value
        message = {"role": fields.get("role"), "content": content}
        if calls:
            message["tool_calls"] = [calls[k] for k in sorted(calls)]
        if fields.get("tool_call_id"):
            message["tool_call_id"] = fields["tool_call_id"]
        messages.append(message)
    return from_openai(messages)
