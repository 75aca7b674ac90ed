"""The judge's own calls as spans: every request an evaluator sends, answered or not, traced and
priced like any LLM call, in a project of their own so they never mix into the application's
spend, budgets, alerts or triage.

They are stored in project JUDGE_PROJECT, tagged with whose they are: `tenant_id` is the project
whose call (or session) was judged, `feature` the evaluator, `prompt_version` its version. The
attempts of one evaluation (a 429, then the answer) share a trace, whose id comes from the
evaluation's: the trace of a judged call's score is found again from the score alone.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import orjson

from tokentrace.evals.judge import JudgeCall, JudgeEndpoint
from tokentrace.pricing.book import PriceBook
from tokentrace.vocab import error_type

#: Where the judge's calls are stored (every project's: a judge's spend and budget are the
#: evaluator's, and evaluators are the server's). A project key made for it reads them.
JUDGE_PROJECT = "tokentrace-evals"
SERVICE = "tokentrace-evaluator"


def judge_trace_id(project_id: str, score_id: str) -> str:
    """The trace of the judge's calls of one evaluation (named by its score's id)."""
    return hashlib.blake2b(f"{project_id}:{score_id}".encode(), digest_size=16).hexdigest()


def _error_type(call: JudgeCall) -> str:
    if call.timed_out:
        return "timeout"
    return error_type(http_status=call.status_code) if call.status_code is not None else "other"


def _messages(role_texts: list[tuple[str, str]]) -> str:
    return orjson.dumps(
        [{"role": role, "parts": [{"type": "text", "content": text}]} for role, text in role_texts]
    ).decode()


def judge_rows(
    call: JudgeCall,
    endpoint: JudgeEndpoint,
    evaluator: str,
    version: str,
    judged: dict[str, Any],
    score_id: str,
    prices: PriceBook,
) -> tuple[dict[str, Any], dict[str, Any], float]:
    """The canonical span and content rows of one judge request, and what it cost. `judged`
    names what was judged: project_id, trace_id, span_id (of a call) or session_id."""
    trace_id = judge_trace_id(judged["project_id"], score_id)
    span_id = os.urandom(8).hex()
    model = call.model or endpoint.model
    rates = prices.rates(endpoint.api, model, call.start_ns)
    cost = rates.cost(call.input_tokens, call.output_tokens, None, None) if rates is not None else 0.0
    answered = call.error is None
    attributes = {
        "tokentrace.evaluation.project": judged["project_id"],
        "tokentrace.evaluation.score_id": score_id,
        **{
            f"tokentrace.evaluation.{k}": judged[k]
            for k in ("trace_id", "span_id", "session_id")
            if judged.get(k)
        },
        **({"http.response.status_code": call.status_code} if call.status_code is not None else {}),
    }
    inputs, outputs = call.input_tokens, call.output_tokens
    span = {
        "project_id": JUDGE_PROJECT,
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": "",
        "name": f"judge {evaluator}",
        "kind": "client",
        "operation": "chat",
        "start_time": call.start_ns,
        "end_time": max(call.end_ns, call.start_ns),
        "duration_ms": max(call.end_ns - call.start_ns, 0) / 1e6,
        "status": "ok" if answered else "error",
        "status_message": None if answered else call.error,
        "error_type": None if answered else _error_type(call),
        "service_name": SERVICE,
        "provider": endpoint.api,
        "request_model": endpoint.model,
        "response_model": call.model,
        "input_tokens": inputs,
        "output_tokens": outputs,
        "total_tokens": None if inputs is None and outputs is None else (inputs or 0) + (outputs or 0),
        "cost_usd": cost,
        "cost_known": rates is not None or (inputs is None and outputs is None),
        "max_tokens": endpoint.max_tokens,
        "temperature": 0.0 if endpoint.api == "openai" else None,
        "streaming": False,
        "tenant_id": judged["project_id"],
        "feature": evaluator,
        "prompt_template": evaluator,
        "prompt_version": version,
        "attributes": orjson.dumps(attributes).decode(),
        "resource": orjson.dumps({"service.name": SERVICE}).decode(),
    }
    system = [{"type": "text", "content": m["content"]} for m in call.messages if m["role"] == "system"]
    asked = [(m["role"], m["content"]) for m in call.messages if m["role"] != "system"]
    content = {
        "project_id": JUDGE_PROJECT,
        "trace_id": trace_id,
        "span_id": span_id,
        "start_time": call.start_ns,
        "system_instructions": orjson.dumps(system).decode() if system else None,
        "input_messages": _messages(asked),
        "output_messages": _messages([("assistant", call.reply)]) if call.reply is not None else None,
        "events": None,
    }
    return span, content, cost
