"""What a judge reads of the calls it grades: a call's question and answer (from its recorded
messages), and a session's conversation (each of its traces a turn: what the user asked first,
what the assistant answered last)."""

from __future__ import annotations

from typing import Any

#: The turns of a session a judge reads (the latest, when it has more), and the characters of
#: each message: a long session must not become a judge prompt past any model's context.
MAX_TURNS = 40
MAX_MESSAGE_CHARS = 2000


def text_of(parts: Any) -> str:
    """The text parts of a canonical message, joined."""
    return "".join(
        p.get("content", "") for p in parts or [] if isinstance(p, dict) and p.get("type") == "text"
    )


def question_and_answer(content: dict[str, Any]) -> tuple[str, str]:
    """The last user message of a call's input and the text of its output."""
    asked = [
        m for m in content.get("input_messages") or [] if isinstance(m, dict) and m.get("role") == "user"
    ]
    question = text_of(asked[-1].get("parts")) if asked else ""
    answer = "\n".join(
        text_of(m.get("parts")) for m in content.get("output_messages") or [] if isinstance(m, dict)
    )
    return question, answer


def _line(text: str) -> str:
    text = " ".join(text.split())  # one line a message: the judge reads "user:" / "assistant:" turns
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def transcript(turns: list[tuple[str, str]]) -> str:
    """A session's (question, answer) turns in order as the judge reads them, the latest
    MAX_TURNS of them (an earlier part left out says so)."""
    shown = turns[-MAX_TURNS:]
    lines = [f"({len(turns) - len(shown)} earlier turns left out)"] if len(shown) < len(turns) else []
    for question, answer in shown:
        lines += [f"user: {_line(question)}", f"assistant: {_line(answer)}"]
    return "\n".join(lines)
