"""The built-in judge prompts. Of one call: groundedness (the answer says only what its retrieved
context supports), answer relevance (it answers the question asked) and refusal (it answers at
all). Of a whole session: task completion (the user got what they came for) and frustration
(the user stays calm).

A call's template is a system prompt and a user prompt with `{question}`, `{answer}` and
`{context}` (the documents the call's retrieval spans returned; empty without any); a session's
has `{conversation}` (its turns in order). Every judge is asked for the same JSON verdict, which
judge.py reads."""

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
_SESSION_USER = "<conversation>\n{conversation}\n</conversation>"


_PLACES = re.compile(r"\{(question|answer|context|conversation)\}")


@dataclass(frozen=True)
class Template:
    system: str
    user: str

    @property
    def of_session(self) -> bool:
        """Whether it judges a whole conversation (its prompt has `{conversation}`)."""
        return "{conversation}" in self.user


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
    "task_completion": Template(
        _system(
            "task completion. Score 1 when, by the end of the conversation, the assistant has "
            "done what the user asked, 0 when it has not; label completed, partly_completed or "
            "not_completed."
        ),
        _SESSION_USER,
    ),
    "frustration": Template(
        _system(
            "frustration. Score 1 when the user stays calm and satisfied throughout, 0 when they "
            "end frustrated (repeating themselves, complaining, asking for a person); label calm, "
            "annoyed or frustrated."
        ),
        _SESSION_USER,
    ),
}


def render(template: Template, **values: str) -> list[dict[str, str]]:
    """The judge's messages: a call's `question`, `answer` and `context`, or a session's
    `conversation`, put in as they are (no format syntax is read from them)."""
    values.setdefault("context", "")
    values["context"] = values["context"] or "(none)"
    user = _PLACES.sub(lambda found: values.get(found[1], ""), template.user)
    return [{"role": "system", "content": template.system}, {"role": "user", "content": user}]
