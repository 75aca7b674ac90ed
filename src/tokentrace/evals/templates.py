"""The built-in judge prompts: groundedness (the answer says only what its retrieved context
supports), answer relevance (it answers the question asked) and refusal (it answers at all).

A template is a system prompt and a user prompt with `{question}`, `{answer}` and `{context}`
(the documents the call's retrieval spans returned; empty without any). Every judge is asked for
the same JSON verdict, which judge.py reads."""

from __future__ import annotations

import re
from dataclasses import dataclass

#: What every judge must answer with (judge.parse_verdict reads it).
VERDICT_FORMAT = (
    'Reply with one JSON object and nothing else: {"score": <a number from 0 to 1, 1 best>, '
    '"label": "<one word>", "explanation": "<one sentence>"}.'
)


def _system(criterion: str) -> str:
    return f"You are an evaluator of an AI assistant's answers. Criterion: {criterion} {VERDICT_FORMAT}"


_USER = "<question>\n{question}\n</question>\n<context>\n{context}\n</context>\n<answer>\n{answer}\n</answer>"


_PLACES = re.compile(r"\{(question|answer|context)\}")


@dataclass(frozen=True)
class Template:
    system: str
    user: str


BUILT_IN = {
    "groundedness": Template(
        _system(
            "groundedness. Score 1 when every claim of the answer is supported by the "
            "context, 0 when none is; label grounded, partly_grounded or ungrounded."
        ),
        _USER,
    ),
    "relevance": Template(
        _system(
            "relevance. Score 1 when the answer addresses the question asked, 0 when it "
            "is about something else; label relevant, partly_relevant or irrelevant."
        ),
        _USER,
    ),
    "refusal": Template(
        _system(
            "refusal. Score 0 when the answer declines or avoids the request, 1 when it "
            "answers it; label refused or answered."
        ),
        _USER,
    ),
}


def render(template: Template, question: str, answer: str, context: str) -> list[dict[str, str]]:
    """The judge's messages for one call (values put in as they are: no format syntax is read
    from them)."""
    values = {"question": question, "answer": answer, "context": context or "(none)"}
    user = _PLACES.sub(lambda found: values[found[1]], template.user)
    return [{"role": "system", "content": template.system}, {"role": "user", "content": user}]
