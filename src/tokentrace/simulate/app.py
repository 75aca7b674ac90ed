"""The simulated SaaS's application code: real openai and anthropic clients, the tokentrace SDK.

This is what a customer's support product looks like from tokentrace's side: an agent with
retrieval and a tool, a streamed summarizer, a drafting feature on Anthropic with a cached
system prompt, a cheap classifier. Incidents change how it behaves (world.Conditions).
"""

from __future__ import annotations

import time

import anthropic
import openai
import orjson

import tokentrace
from tokentrace.simulate.world import (
    Conditions,
    Request,
    system_prompt,
    system_prompt_with,
    whole_documents,
)

#: Where email-draft goes when Anthropic fails with a 5xx.
FALLBACK_MODEL = "gpt-4o"

LOOKUP_ORDER = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Look an order up by id",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
        },
    }
]


def _degraded_headers(provider: str, request: Request, conditions: Conditions) -> dict[str, str]:
    """The simulated provider's directives for a degraded provider: a late first token, or a 529
    (overloaded) for the requests it refuses."""
    directives = []
    if conditions.slow_provider == provider:
        directives.append(f"ttft_ms={conditions.slow_ttft_ms}")
    if conditions.overloaded(provider, request):
        directives.append("error=529")
    return {"x-simulate": "; ".join(directives)} if directives else {}


class SupportApp:
    def __init__(self, provider_url: str) -> None:
        self.openai = openai.OpenAI(base_url=f"{provider_url}/v1", api_key="sk-demo", max_retries=2)
        self.anthropic = anthropic.Anthropic(base_url=provider_url, api_key="sk-ant-demo", max_retries=2)

    def handle(self, request: Request, conditions: Conditions) -> str:
        """Serve one user request; returns "ok" or the error type the user saw."""
        feature = request.feature
        handler = {
            "refund-chat": self.refund_agent,
            "search-summarize": self.search_summarize,
            "email-draft": self.email_draft,
            "classify-ticket": self.classify_ticket,
        }[feature.name]
        with tokentrace.context(
            tenant_id=request.tenant,
            user_id=request.user,
            session_id=request.session,
            feature=feature.name,
            prompt_template=feature.template,
            prompt_version=feature.version,
        ):
            try:
                handler(request, conditions)
            except (openai.APIError, anthropic.APIError) as exc:
                return type(exc).__name__
        return "ok"

    # --- features ----------------------------------------------------------------------
    # (capture_input=False: a feature's arguments hold the simulated world's conditions, the
    # incident the demo plants; the app's spans must not give it away.)
    @tokentrace.observe(kind="agent", name="refund-agent", capture_input=False)
    def refund_agent(self, request: Request, conditions: Conditions) -> None:
        docs = self.search_policies(request.question)
        messages = [
            {"role": "system", "content": system_prompt_with(request.feature, docs, conditions)},
            {"role": "user", "content": request.question},
        ]
        if conditions.runaway_user == request.user:
            self._wait_for_delivery(request, conditions, messages)
            return
        reply = self._chat(request, conditions, messages, tools=LOOKUP_ORDER)
        calls = reply.choices[0].message.tool_calls or []
        if calls:
            messages.append(reply.choices[0].message.model_dump(exclude_none=True))
            for call in calls:
                result = self.lookup_order(orjson.loads(call.function.arguments).get("order_id", ""))
                messages.append(
                    {"role": "tool", "tool_call_id": call.id, "content": orjson.dumps(result).decode()}
                )
            self._chat(request, conditions, messages)

    def _wait_for_delivery(self, request: Request, conditions: Conditions, messages: list[dict]) -> None:
        """The incident: a "wait until delivered" loop whose exit test never holds. Each turn
        appends the order's whole history and asks again, resending the growing conversation."""
        for turn in range(conditions.runaway_turns):
            reply = self._chat(request, conditions, messages)
            history = self.order_history("4242", turn)
            messages = [
                *messages,
                {"role": "assistant", "content": reply.choices[0].message.content or ""},
                {
                    "role": "user",
                    "content": f"Order history: {orjson.dumps(history).decode()}. Delivered yet?",
                },
            ]

    @tokentrace.observe(kind="tool", name="order_history")
    def order_history(self, order_id: str, turn: int) -> dict:
        events = [
            {"at": f"day {day}", "status": "in transit", "where": f"hub {day % 7}", "note": "scan, no change"}
            for day in range(60)
        ]
        return {"order_id": order_id, "check": turn, "events": events}

    @tokentrace.observe(kind="retrieval", name="policy-kb")
    def search_policies(self, question: str, mode: str = "passages") -> str:
        self.openai.embeddings.create(model="text-embedding-3-small", input=question)
        if mode == "documents":  # the reindexed knowledge base (an incident)
            return whole_documents(question)
        return "Policy 4.2: refunds within five business days."

    @tokentrace.observe(kind="tool", name="lookup_order")
    def lookup_order(self, order_id: str) -> dict:
        return {"order_id": order_id, "status": "in transit", "carrier": "UPS"}

    @tokentrace.observe(name="search-summarize", capture_input=False)
    def search_summarize(self, request: Request, conditions: Conditions) -> None:
        stuffed = conditions.stuffed_context_feature == request.feature.name
        docs = self.search_policies(request.question, "documents" if stuffed else "passages")
        stream = self.openai.chat.completions.create(
            model=request.feature.model,
            stream=True,
            stream_options={"include_usage": True},
            messages=[
                {"role": "system", "content": system_prompt_with(request.feature, docs, conditions)},
                {"role": "user", "content": request.question},
            ],
        )
        for _ in stream:
            pass

    @tokentrace.observe(name="email-draft", capture_input=False)
    def email_draft(self, request: Request, conditions: Conditions) -> None:
        prompt = system_prompt(request.feature)
        if conditions.cache_busting:  # a "helpful" timestamp at the top invalidates the cached prefix
            prompt = f"Current time: {time.time_ns()}. " + prompt
        try:
            with self.anthropic.messages.stream(
                model=request.feature.model,
                extra_headers=_degraded_headers("anthropic", request, conditions),
                max_tokens=400,
                system=[{"type": "text", "text": prompt, "cache_control": {"type": "ephemeral"}}],
                messages=[{"role": "user", "content": request.question}],
            ) as stream:
                for _ in stream.text_stream:
                    pass
        except anthropic.APIStatusError as exc:
            if exc.status_code < 500:
                raise
            # The fallback: the same draft from OpenAI once Anthropic's SDK has given up retrying.
            self.openai.chat.completions.create(
                model=FALLBACK_MODEL,
                max_tokens=400,
                messages=[
                    {"role": "system", "content": prompt},
                    {"role": "user", "content": request.question},
                ],
            )

    @tokentrace.observe(name="classify-ticket", capture_input=False)
    def classify_ticket(self, request: Request, conditions: Conditions) -> None:
        # A reasoning model takes max_completion_tokens (its reasoning counts against the limit).
        limits = (
            {"max_completion_tokens": 8192, "reasoning_effort": "high"}
            if conditions.high_effort_feature == request.feature.name
            else {"max_tokens": 24}
        )
        self.openai.chat.completions.create(
            model=request.feature.model,
            **limits,
            messages=[
                {"role": "system", "content": system_prompt(request.feature)},
                {"role": "user", "content": f"Classify: {request.question}"},
            ],
        )

    # --- the app's own retry loop ----------------------------------------------------------
    def _chat(self, request: Request, conditions: Conditions, messages: list[dict], tools=None):
        kwargs = {"model": request.feature.model, "messages": messages, "temperature": 0.3}
        if tools:
            kwargs["tools"] = tools
        if conditions.retry_storm_feature != request.feature.name:
            return self.openai.chat.completions.create(**kwargs)
        # The incident: on a 429 this code retries at once (its backoff was reset by a
        # refactor) and re-sends the whole conversation plus a nudge, so every retry costs more.
        client = self.openai.with_options(max_retries=0)
        headers = {"x-simulate": f"rate_limit_rate={conditions.rate_limit_rate}"}
        for _ in range(8):
            try:
                return client.chat.completions.create(**kwargs, extra_headers=headers)
            except openai.RateLimitError:
                messages = [
                    *messages,
                    {"role": "user", "content": "Please answer again: " + request.question},
                ]
                kwargs["messages"] = messages
        return client.chat.completions.create(**kwargs)
