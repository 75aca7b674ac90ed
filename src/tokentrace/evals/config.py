"""The evaluators file (`serve --evaluators FILE`): which evaluator grades which calls, how often,
and what it may spend.

```toml
[judge]                                # the default judge of every llm_judge evaluator
url = "https://api.openai.com/v1"      # OpenAI-compatible; api = "anthropic" for Anthropic's
model = "gpt-4o-mini"
api_key_env = "OPENAI_API_KEY"         # the key is read from this variable when the file loads
headers = { "x-team" = "support" }     # optional: sent with every request (a gateway's key …)

[[evaluators]]
name = "groundedness"
kind = "llm_judge"                     # llm_judge | regex | json_schema
template = "groundedness"              # built in: groundedness, relevance, refusal; or system + prompt
version = "1"                          # part of the score's identity: a new version scores again
where = { feature = "refund-chat" }    # canonical fields the call must have (tags, model …)
sample_rate = 0.25                     # of the calls that match, by trace id
rate_limit_per_minute = 60
daily_budget_usd = 2.0                 # the judge's own spend a UTC day, then it stops

[[evaluators]]
name = "resolved"
kind = "llm_judge"
scope = "session"                      # the whole conversation, once it has been quiet a while
template = "task_completion"           # built in for sessions: task_completion, frustration
quiet_minutes = 30

[[evaluators]]
name = "order-id"
kind = "regex"
pattern = 'ORD-\\d+'
must_match = true

[[evaluators]]
name = "answer-json"
kind = "json_schema"
schema = { type = "object", required = ["answer"] }
```
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from tokentrace.canonical import DERIVED_FIELDS, GROUPABLE_FIELDS
from tokentrace.evals.judge import JudgeEndpoint
from tokentrace.evals.rules import JsonSchema
from tokentrace.evals.templates import BUILT_IN, Template
from tokentrace.tomlfile import line_of

KINDS = ("llm_judge", "regex", "json_schema")
SCOPES = ("call", "session")
_EVALUATOR_KEYS = (
    "name",
    "kind",
    "scope",
    "quiet_minutes",
    "version",
    "operation",
    "where",
    "sample_rate",
    "rate_limit_per_minute",
    "daily_budget_usd",
    "template",
    "system",
    "prompt",
    "judge",
    "pattern",
    "must_match",
    "schema",
)
_JUDGE_KEYS = ("url", "model", "api", "api_key_env", "max_tokens", "timeout_s", "headers")


class EvaluatorsError(ValueError):
    """The evaluators file cannot be used as written; the message names the file and line."""


@dataclass(frozen=True)
class Evaluator:
    name: str
    kind: str
    version: str = "1"
    operation: str = "chat"
    where: tuple[tuple[str, str], ...] = ()
    sample_rate: float = 1.0
    rate_limit_per_minute: int | None = None
    daily_budget_usd: float | None = None
    template: Template | None = None  # llm_judge
    judge: JudgeEndpoint | None = None  # llm_judge
    pattern: re.Pattern[str] | None = None  # regex
    must_match: bool = True  # regex
    schema: JsonSchema | None = None  # json_schema
    scope: str = "call"  # call | session (an llm_judge over the whole conversation)
    quiet_minutes: float = 30.0  # session: how long without a call before it is judged
    project_id: str | None = None  # added through the API: that project's calls only (None: all)

    def chosen(self, calls: pa.Table) -> pa.Table:
        """The rows of `calls` (canonical columns: operation, trace_id, session_id, project_id
        and the `where` fields) this evaluator grades, or for a session evaluator the calls of
        the sessions it grades: its operation, its project, every `where` field, and the sample
        (by trace id, or by session id: a trace's calls, a session's traces are in or out
        together)."""
        mask = pc.equal(calls["operation"], self.operation)
        if self.project_id is not None:
            mask = pc.and_(mask, pc.equal(calls["project_id"], self.project_id))
        for name, value in self.where:
            mask = pc.and_(mask, pc.equal(calls[name].cast(pa.string()), value))
        unit = "session_id" if self.scope == "session" else "trace_id"
        mask = pc.and_(mask, pc.is_valid(calls[unit]))  # a session evaluator's call in no session
        found = calls.filter(pc.fill_null(mask, False))
        if self.sample_rate < 1:
            kept = [_fraction(self.name, u) < self.sample_rate for u in found[unit].to_pylist()]
            found = found.filter(pa.array(kept, pa.bool_()))
        return found

    def spent(self, spend: Mapping[tuple[str, str], float]) -> float:
        """What this evaluator's budget counts of `spend` (Store.evaluation_spend: by project
        and evaluator name): every project's calls for one from the evaluators file, its own
        project's for one added through the API (another project's of the same name is not it)."""
        if self.project_id is not None:
            return spend.get((self.project_id, self.name), 0.0)
        return sum(usd for (_, name), usd in spend.items() if name == self.name)


def _fraction(name: str, trace_id: str) -> float:
    digest = hashlib.blake2b(f"{name}:{trace_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _fail(text: str, source: str, index: int | None, key: str | None, message: str) -> EvaluatorsError:
    if not text:  # one evaluator from the API: no file, line or entry to name
        return EvaluatorsError(message)
    table = "evaluators" if index is not None else "judge"
    where = line_of(text, table, index or 0, key)
    entry = f"evaluators[{index}]: " if index is not None else ""
    return EvaluatorsError(f"{source}{where}: {entry}{message}")


def _judge(spec: Any, text: str, source: str, index: int | None) -> JudgeEndpoint:
    if not isinstance(spec, dict):
        raise _fail(text, source, index, "judge", "judge must be a table (url, model, api, api_key_env)")
    for key in spec:
        if key not in _JUDGE_KEYS:
            raise _fail(
                text, source, index, key, f"unknown judge key {key!r} (known: {', '.join(_JUDGE_KEYS)})"
            )
    url, model, api = spec.get("url"), spec.get("model"), spec.get("api", "openai")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise _fail(text, source, index, "url", f"the judge needs an http(s) url, got {url!r}")
    if not isinstance(model, str) or not model:
        raise _fail(text, source, index, "model", "the judge needs a model")
    if api not in ("openai", "anthropic"):
        raise _fail(text, source, index, "api", f"api must be openai or anthropic, got {api!r}")
    key = None
    if spec.get("api_key_env") is not None:
        key = os.environ.get(str(spec["api_key_env"]))
        if not key:
            raise _fail(text, source, index, "api_key_env", f"{spec['api_key_env']} is not set")
    headers = spec.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise _fail(text, source, index, "headers", "headers must be a table of names to text values")

    def fail(name: str, message: str) -> EvaluatorsError:
        return _fail(text, source, index, name, message)

    max_tokens = _number(spec, "max_tokens", fail, 1)
    if max_tokens is not None and max_tokens != int(max_tokens):
        raise fail("max_tokens", f"max_tokens must be a whole number, got {max_tokens!r}")
    timeout_s = _number(spec, "timeout_s", fail, 0.001)
    return JudgeEndpoint(
        url,
        model,
        api,
        key,
        300 if max_tokens is None else int(max_tokens),
        60.0 if timeout_s is None else float(timeout_s),
        tuple(sorted(headers.items())),
    )


def _number(entry: dict, key: str, fail: Any, low: float = 0, high: float | None = None) -> float | None:
    value = entry.get(key)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)  # TOML reads nan and inf, which compare false to any bound
        or value < low
        or (high and value > high)
    ):
        bound = f"from {low:g} to {high:g}" if high else f"at least {low:g}"
        raise fail(key, f"{key} must be a number {bound}, got {value!r}")
    return float(value)


def _evaluator(entry: Any, i: int, default_judge: JudgeEndpoint | None, text: str, source: str) -> Evaluator:
    def fail(key: str | None, message: str) -> EvaluatorsError:
        return _fail(text, source, i, key, message)

    if not isinstance(entry, dict):
        raise fail(None, "an evaluator must be a table: [[evaluators]]")
    for key in entry:
        if key not in _EVALUATOR_KEYS:
            raise fail(key, f"unknown key {key!r} (known: {', '.join(_EVALUATOR_KEYS)})")
    name, kind = entry.get("name"), entry.get("kind")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", name):
        raise fail("name", f"name must be 1-64 letters, digits or _.:-, got {name!r}")
    if kind not in KINDS:
        raise fail("kind", f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    scope = entry.get("scope", "call")
    if scope not in SCOPES:
        raise fail("scope", f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    if scope == "session" and kind != "llm_judge":
        raise fail("scope", "a session is judged by an llm_judge (regex and json_schema grade one answer)")
    if scope != "session" and "quiet_minutes" in entry:
        raise fail("quiet_minutes", 'quiet_minutes is for scope = "session"')
    where = entry.get("where", {})
    if not isinstance(where, dict):
        raise fail("where", "where must be a table of field = value")
    for field in where:
        if field not in GROUPABLE_FIELDS or field in DERIVED_FIELDS:
            raise fail("where", f"where: {field!r} is not a field calls can be told by")
    found: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "version": str(entry.get("version", "1")),
        "operation": str(entry.get("operation", "chat")),
        "where": tuple(sorted((str(k), str(v)) for k, v in where.items())),
        "sample_rate": _number(entry, "sample_rate", fail, 0, 1),
        "daily_budget_usd": _number(entry, "daily_budget_usd", fail),
        "scope": scope,
    }
    if scope == "session":
        quiet = _number(entry, "quiet_minutes", fail, 0.01)
        found["quiet_minutes"] = 30.0 if quiet is None else quiet
    if found["sample_rate"] is None:
        found["sample_rate"] = 1.0
    limit = _number(entry, "rate_limit_per_minute", fail, 1)
    found["rate_limit_per_minute"] = int(limit) if limit is not None else None
    if kind == "llm_judge":
        found["judge"] = _judge(entry["judge"], text, source, i) if "judge" in entry else default_judge
        if found["judge"] is None:
            raise fail(None, "an llm_judge needs a judge: [judge] at the top of the file, or judge = {…}")
        if "prompt" in entry or "system" in entry:
            if not isinstance(entry.get("prompt"), str) or not isinstance(entry.get("system"), str):
                raise fail("prompt", "a judge prompt of your own needs both system and prompt (text)")
            found["template"] = Template(entry["system"], entry["prompt"])
        else:
            template = entry.get("template")
            if template not in BUILT_IN:
                raise fail("template", f"template must be one of {', '.join(BUILT_IN)}, got {template!r}")
            found["template"] = BUILT_IN[template]
        if found["template"].of_session != (scope == "session"):
            if scope == "session":
                why = (
                    "a session's template judges {conversation}: task_completion, frustration, "
                    "or a prompt of your own with it"
                )
            else:
                why = 'a template with {conversation} judges a whole session: set scope = "session"'
            raise fail("template" if "template" in entry else "prompt", why)
    elif kind == "regex":
        try:
            found["pattern"] = re.compile(str(entry.get("pattern", "")))
        except re.error as exc:
            raise fail("pattern", f"pattern is not a regular expression: {exc}") from None
        if not entry.get("pattern"):
            raise fail("pattern", "a regex evaluator needs a pattern")
        found["must_match"] = bool(entry.get("must_match", True))
    else:
        import jsonschema_rs

        if not isinstance(entry.get("schema"), dict):
            raise fail("schema", "a json_schema evaluator needs schema = { … } (a JSON schema)")
        try:
            validator = jsonschema_rs.validator_for(entry["schema"])
            found["schema"] = JsonSchema(
                orjson.dumps(entry["schema"], option=orjson.OPT_SORT_KEYS).decode(), validator
            )
        except (jsonschema_rs.ValidationError, ValueError) as exc:
            first = str(exc).splitlines()[0]
            raise fail("schema", f"schema is not a valid JSON schema: {first}") from None
    return Evaluator(**found)


@dataclass(frozen=True)
class EvaluatorsFile:
    """An evaluators file: its default judge (the judge of the evaluators added through the API
    too) and its evaluators (every project's)."""

    judge: JudgeEndpoint | None
    evaluators: tuple[Evaluator, ...]


def parse_evaluators(text: str, source: str) -> tuple[Evaluator, ...]:
    """The evaluators of a file's text; EvaluatorsError names the file, line and entry."""
    return parse_file(text, source).evaluators


def parse_file(text: str, source: str) -> EvaluatorsFile:
    """An evaluators file's text, read; EvaluatorsError names the file, line and entry."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise EvaluatorsError(f"{source}: {exc}") from None
    for table in data:
        if table not in ("judge", "evaluators"):
            where = line_of(text, table)
            raise EvaluatorsError(
                f"{source}{where}: unknown table {table!r} (known: [judge], [[evaluators]])"
            )
    default = _judge(data["judge"], text, source, None) if "judge" in data else None
    entries = data.get("evaluators", [])
    if not isinstance(entries, list):
        raise EvaluatorsError(
            f"{source}{line_of(text, 'evaluators')}: evaluators must be tables: [[evaluators]]"
        )
    found = [_evaluator(entry, i, default, text, source) for i, entry in enumerate(entries)]
    names = [e.name for e in found]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise _fail(text, source, i, "name", f"an evaluator named {name!r} is already defined")
    return EvaluatorsFile(default, tuple(found))


def parse_spec(spec: Any, judge: JudgeEndpoint | None, project_id: str) -> Evaluator:
    """One evaluator of a project, added through the API (a JSON object with the keys of an
    [[evaluators]] entry). An llm_judge uses the server's judge (the file's [judge]): a spec
    naming a judge of its own is refused, since the server would send its key there and call
    any URL a project's key chose."""
    if isinstance(spec, dict) and "judge" in spec:
        raise EvaluatorsError(
            "an evaluator added through the API uses the server's judge ([judge] of its evaluators "
            "file); judge cannot be set here"
        )
    if isinstance(spec, dict) and spec.get("kind") == "llm_judge" and judge is None:
        raise EvaluatorsError(
            "the server has no judge ([judge] in its evaluators file): no llm_judge can run"
        )
    found = _evaluator(spec, 0, judge, "", "")
    return replace(found, project_id=project_id)


def load_evaluators(path: str | Path) -> EvaluatorsFile:
    """Read an evaluators file (EvaluatorsError when it cannot be used)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise EvaluatorsError(f"{path}: {exc.strerror}") from None
    return parse_file(text, str(path))
