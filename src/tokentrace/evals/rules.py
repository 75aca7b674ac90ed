"""Evaluators that need no model: a regular expression the answer must (or must not) match, and
a JSON schema the answer must be valid JSON for."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from tokentrace.evals.verdict import Verdict


def regex_verdict(pattern: re.Pattern[str], must_match: bool, answer: str) -> Verdict:
    """1 when the answer matches `pattern` as it must (or does not, when it must not), else 0."""
    found = pattern.search(answer)
    passed = bool(found) == must_match
    if found:
        said = f"matches {pattern.pattern!r} at {found.start()}: {found.group(0)[:80]!r}"
    else:
        said = f"does not match {pattern.pattern!r}"
    return Verdict(1.0 if passed else 0.0, "pass" if passed else "fail", said)


@dataclass(frozen=True)
class JsonSchema:
    """A json_schema evaluator's schema: its text (what two evaluators compare by, so one
    parsed again from the same spec is the same evaluator) and its compiled validator."""

    text: str
    validator: Any = field(compare=False, repr=False)  # jsonschema_rs's


def schema_verdict(schema: JsonSchema, answer: str) -> Verdict:
    """1 when the answer is JSON valid for the schema, else 0 with the first reason."""
    try:
        document = orjson.loads(answer)
    except orjson.JSONDecodeError as exc:
        return Verdict(0.0, "invalid_json", f"not JSON: {exc}")
    for error in schema.validator.iter_errors(document):
        where = "/".join(str(p) for p in error.instance_path) or "(the document)"
        return Verdict(0.0, "schema_mismatch", f"{where}: {error.message}")
    return Verdict(1.0, "valid", None)
