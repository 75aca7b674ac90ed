"""The simulated provider as an LLM judge: a request whose system prompt is one of tokentrace's
evaluator prompts (evals/templates.py) gets a deterministic verdict instead of generated words,
so tests can plant a bad answer and see it graded.

The verdicts are word overlaps: groundedness is the share of the answer's words found in the
context, relevance the share of the question's words found in the answer, refusal 0 when the
answer declines (the simulated refusal, or "I can't"/"I cannot"), else 1. Of a session: task
completion 0 when the conversation's last answer declines, else 1; frustration the share of the
user's turns with no sign of it ("still", "again", "useless", "a human" …). Another criterion
scores 1.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from tokentrace.simulate.tokens import content_text

MARKER = "You are an evaluator of an AI assistant's answers."
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "i",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "we",
        "with",
        "you",
        "your",
    }
)
_DECLINES = ("i'm sorry, but i can't", "i can't", "i cannot", "i won't")
_UPSET = ("still", "again", "not what i asked", "useless", "a human", "ridiculous", "!!")
_TURN = re.compile(r"^(user|assistant): (.*)$", re.M)


def _section(text: str, name: str) -> str:
    found = re.search(rf"<{name}>\n?(.*?)\n?</{name}>", text, re.S)
    return found.group(1) if found else ""


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower())) - _STOP


def _share(part: set[str], whole: set[str]) -> float:
    return round(len(part & whole) / len(part), 2) if part else 0.0


def verdict(messages: list[Any]) -> str | None:
    """The judge's reply (a JSON verdict) when the messages ask for one, else None."""
    system = next(
        (
            content_text(m.get("content"))
            for m in messages
            if isinstance(m, dict) and m.get("role") == "system"
        ),
        "",
    )
    if not system.startswith(MARKER):
        return None
    user = next(
        (
            content_text(m.get("content"))
            for m in reversed(messages)
            if isinstance(m, dict) and m.get("role") == "user"
        ),
        "",
    )
    question, context, answer = (_section(user, n) for n in ("question", "context", "answer"))
    if "Criterion: groundedness" in system:
        score = _share(_words(answer), _words(context)) if context.strip() != "(none)" else 0.0
        label = "grounded" if score >= 0.8 else "partly_grounded" if score >= 0.4 else "ungrounded"
    elif "Criterion: relevance" in system:
        score = _share(_words(question), _words(answer))
        label = "relevant" if score >= 0.5 else "partly_relevant" if score > 0 else "irrelevant"
    elif "Criterion: refusal" in system:
        refused = answer.strip().lower().startswith(_DECLINES)
        score, label = (0.0, "refused") if refused else (1.0, "answered")
    elif "Criterion: task completion" in system:
        said = _TURN.findall(_section(user, "conversation"))
        last = next((text for role, text in reversed(said) if role == "assistant"), "")
        done = bool(last.strip()) and not last.strip().lower().startswith(_DECLINES)
        score, label = (1.0, "completed") if done else (0.0, "not_completed")
    elif "Criterion: frustration" in system:
        asked = [
            text.lower() for role, text in _TURN.findall(_section(user, "conversation")) if role == "user"
        ]
        upset = sum(any(sign in text for sign in _UPSET) for text in asked)
        score = round(1 - upset / len(asked), 2) if asked else 1.0
        label = "calm" if score >= 0.8 else "annoyed" if score >= 0.5 else "frustrated"
    else:
        score, label = 1.0, "pass"
    explanation = f"{label}: word overlap {score:.2f}"
    return orjson.dumps({"score": score, "label": label, "explanation": explanation}).decode()
