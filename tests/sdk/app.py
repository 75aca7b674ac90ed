"""A small application instrumented with the tokentrace SDK, one scenario per run.

    python -m tests.sdk.app SCENARIO PROVIDER_URL TOKENTRACE_URL

It prints one JSON line of facts (trace ids, what the provider answered) for the test to
check against what the server stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import openai
import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tokentrace


def _trace_id() -> str:
    return format(trace.get_current_span().get_span_context().trace_id, "032x")


def agent(client: openai.OpenAI) -> dict:
    @tokentrace.observe(kind="retrieval", name="kb")
    def search(query: str) -> list[str]:
        return ["refunds take 5 days"]

    @tokentrace.observe(kind="tool")
    def lookup_order(order_id: str) -> dict:
        return {"id": order_id, "status": "shipped"}

    @tokentrace.observe(kind="agent", name="support")
    def handle(question: str) -> dict:
        docs = search(question)
        reply = client.chat.completions.create(
            model="gpt-4o",
            temperature=0.2,
            max_tokens=300,
            messages=[{"role": "system", "content": "; ".join(docs)}, {"role": "user", "content": question}],
        )
        lookup_order("A-1")
        return {"trace_id": _trace_id(), "usage": reply.usage.model_dump(), "model": reply.model}

    with tokentrace.context(
        tenant_id="acme",
        user_id="u42",
        feature="refund-chat",
        session_id="s-9",
        prompt_template="refund",
        prompt_version="v3",
    ):
        facts = handle("Where is my refund?")
    # the whole conversation rated once it ended: a score of the session, outside any trace
    facts["resolved_id"] = tokentrace.score("resolved", False, session_id="s-9", comment="asked twice")
    return facts


def suppressed(client: openai.OpenAI) -> dict:
    """A call made while OTel instrumentation is suppressed (as exporters and other
    instrumentations do for their own calls) records nothing; the next one does."""
    token = otel_context.attach(otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "quiet"}])
    finally:
        otel_context.detach(token)

    @tokentrace.observe(name="after")
    def run() -> str:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "loud"}])
        return _trace_id()

    return {"trace_id": run()}


def streams(client: openai.OpenAI) -> dict:
    facts = {}

    @tokentrace.observe(name="streams")
    def run() -> None:
        facts["trace_id"] = _trace_id()
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o-mini",
                stream=True,
                stream_options={"include_usage": True},
                messages=[{"role": "user", "content": "stream with usage"}],
            )
        )
        facts["with_usage"] = chunks[-1].usage.model_dump()
        with client.chat.completions.create(
            model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "no usage asked"}]
        ) as s:
            facts["without_usage_chunks"] = sum(1 for _ in s)
        response_events = list(
            client.responses.create(model="gpt-4o", input="stream a response", stream=True)
        )
        facts["responses_usage"] = response_events[-1].response.usage.model_dump()
        facts["embedding_tokens"] = client.embeddings.create(
            model="text-embedding-3-small", input="refund policy"
        ).usage.prompt_tokens

    run()
    return facts


def asynchronous(provider: str) -> dict:
    facts = {}

    async def main() -> None:
        client = openai.AsyncOpenAI(base_url=f"{provider}/v1", api_key="sk-sim", max_retries=0)

        @tokentrace.observe(name="async-root")
        async def root() -> None:
            facts["trace_id"] = _trace_id()

            async def tenant_call(tenant: str) -> None:
                with tokentrace.context(tenant_id=tenant):
                    await client.chat.completions.create(
                        model="gpt-4o", messages=[{"role": "user", "content": f"hello from {tenant}"}]
                    )

            with tokentrace.context(user_id="u-async", tenant_id="outer"):
                await asyncio.gather(tenant_call("t1"), tenant_call("t2"), tenant_call(None))
                stream = await client.chat.completions.create(
                    model="gpt-4o",
                    stream=True,
                    stream_options={"include_usage": True},
                    messages=[{"role": "user", "content": "async stream"}],
                )
                facts["stream_usage"] = [c async for c in stream][-1].usage.model_dump()

        await root()
        await client.close()

    asyncio.run(main())
    return facts


def threads(client: openai.OpenAI) -> dict:
    facts = {}

    @tokentrace.observe(name="thread-root")
    def run() -> None:
        facts["trace_id"] = _trace_id()
        with tokentrace.context(tenant_id="threaded", user_id="u-t"), ThreadPoolExecutor(2) as pool:
            list(
                pool.map(
                    lambda i: client.chat.completions.create(
                        model="gpt-4o", messages=[{"role": "user", "content": f"thread {i}"}]
                    ),
                    range(3),
                )
            )

    run()
    return facts


def failures(client: openai.OpenAI, provider: str) -> dict:
    facts = {}
    retrying = openai.OpenAI(base_url=f"{provider}/v1", api_key="sk-sim", max_retries=3)

    @tokentrace.observe(name="failures")
    def run() -> None:
        facts["trace_id"] = _trace_id()
        retrying.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "flaky"}],
            extra_headers={"x-simulate": "fail_first=2; retry_after_ms=1"},
        )
        for header, key in (("error=429", "rate_limit"), ("error=500", "server_error")):
            with contextlib.suppress(openai.APIError):
                client.chat.completions.create(
                    model="gpt-4o",
                    messages=[{"role": "user", "content": key}],
                    extra_headers={"x-simulate": header},
                )
        with contextlib.suppress(openai.BadRequestError):
            client.chat.completions.create(
                model="gpt-3.5-turbo", messages=[{"role": "user", "content": "w " * 40000}]
            )

    run()
    return facts


def claude(provider: str) -> dict:
    import anthropic

    client = anthropic.Anthropic(base_url=provider, api_key="sk-ant-sim", max_retries=2)
    system = [
        {
            "type": "text",
            "text": "Refund policy: " + "returns accepted within 30 days. " * 150,
            "cache_control": {"type": "ephemeral"},
        }
    ]
    facts: dict = {}

    async def async_calls() -> dict:
        async with anthropic.AsyncAnthropic(base_url=provider, api_key="sk", max_retries=0) as aclient:
            reply = await aclient.messages.create(
                model="claude-haiku-4-5", max_tokens=30, messages=[{"role": "user", "content": "async"}]
            )
            async with aclient.messages.stream(
                model="claude-haiku-4-5",
                max_tokens=30,
                messages=[{"role": "user", "content": "async helper"}],
            ) as stream:
                await stream.get_final_message()
            return reply.usage.model_dump()

    @tokentrace.observe(name="claude-root")
    def run() -> None:
        facts["trace_id"] = _trace_id()
        with tokentrace.context(tenant_id="acme"):
            first = client.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=200,
                system=system,
                messages=[{"role": "user", "content": "Can I return shoes?"}],
            )
            second = client.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=200,
                system=system,
                messages=[{"role": "user", "content": "And a hat?"}],
                extra_headers={"x-simulate": "fail_first=1; retry_after_ms=1"},
            )
            facts["first"], facts["second"] = first.usage.model_dump(), second.usage.model_dump()
            events = list(
                client.messages.create(
                    model="claude-haiku-4-5",
                    max_tokens=50,
                    stream=True,
                    messages=[{"role": "user", "content": "stream"}],
                )
            )
            facts["raw_stream_output"] = events[-2].usage.output_tokens
            with client.messages.stream(
                model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "helper"}]
            ) as stream:
                text = "".join(stream.text_stream)
                facts["helper_usage"] = stream.get_final_message().usage.model_dump()
            facts["helper_words"] = len(text.split())
            facts["async_usage"] = asyncio.run(async_calls())

    run()
    return facts


SECRETS = "I am jane.doe@example.com, card 4111 1111 1111 1111, key sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX"


def content(client: openai.OpenAI, provider: str) -> dict:
    """Prompts with secrets in them, tool calls, streams, JSON mode, a refusal, and scores."""
    import anthropic

    facts: dict = {}
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup_order",
                "parameters": {
                    "type": "object",
                    "properties": {"order_id": {"type": "string"}},
                    "required": ["order_id"],
                },
            },
        }
    ]

    @tokentrace.observe(name="content-root")
    def run() -> None:
        facts["trace_id"] = _trace_id()
        messages = [
            {"role": "system", "content": "You are a support agent."},
            {"role": "user", "content": SECRETS},
        ]
        plain = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        facts["plain_answer"] = plain.choices[0].message.content
        tool = client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, tools=tools, tool_choice="required"
        )
        tool_call = tool.choices[0].message.tool_calls[0]
        facts["tool_call"] = {
            "id": tool_call.id,
            "name": tool_call.function.name,
            "arguments": tool_call.function.arguments,
        }
        followup = [
            *messages,
            tool.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": tool_call.id, "content": '{"status": "shipped"}'},
        ]
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=followup, stream=True)
        facts["streamed_answer"] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        json_messages = [{"role": "user", "content": "Answer in JSON."}]
        good = client.chat.completions.create(
            model="gpt-4o-mini", messages=json_messages, response_format={"type": "json_object"}
        )
        facts["json_answer"] = good.choices[0].message.content
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=json_messages,
            response_format={"type": "json_object"},
            extra_headers={"x-simulate": "malformed_json=1"},
        )
        refused = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Help me"}],
            extra_headers={"x-simulate": "refuse=1"},
        )
        facts["refusal"] = refused.choices[0].message.refusal
        from pydantic import BaseModel

        class Answer(BaseModel):
            answer: str

        parsed = client.chat.completions.parse(
            model="gpt-4o-mini", messages=json_messages, response_format=Answer
        )
        facts["parsed"] = parsed.choices[0].message.parsed.answer
        with client.chat.completions.stream(model="gpt-4o-mini", messages=json_messages) as helper:
            facts["helper_answer"] = "".join(e.delta for e in helper if e.type == "content.delta")
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x" * 5000}]
        )
        client.responses.create(model="gpt-4o-mini", instructions="Be brief.", input="Where is my parcel?")
        claude = anthropic.Anthropic(base_url=provider, api_key="sk-ant-sim", max_retries=0)
        with claude.messages.stream(
            model="claude-haiku-4-5",
            max_tokens=60,
            system="Refund policy applies.",
            messages=[
                {"role": "user", "content": "Order 7?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "tu_1", "name": "lookup_order", "input": {"order_id": "7"}}
                    ],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "tu_1", "content": "shipped"}],
                },
            ],
        ) as claude_stream:
            facts["claude_answer"] = "".join(claude_stream.text_stream)
        facts["helpful_id"] = tokentrace.score("helpful", True, comment="thumbs up")

    run()
    facts["quality_id"] = tokentrace.score("quality", 0.8, trace_id=facts["trace_id"], data_type="numeric")
    with contextlib.suppress(ValueError):
        tokentrace.score("orphan", 1)  # outside any trace: refused in the app, nothing sent
        facts["orphan"] = "sent"
    return facts


def budgets(client: openai.OpenAI, provider: str) -> dict:
    """Calls held to the budgets file in TT_TEST_BUDGETS, counted in the Redis at TT_TEST_REDIS."""
    import anthropic

    tokentrace.budget.configure(os.environ["TT_TEST_BUDGETS"], redis=os.environ["TT_TEST_REDIS"])
    messages = [{"role": "user", "content": "Where is my refund?"}]
    facts: dict = {"acme": [], "beta": []}

    def ask(model: str, into: list, stream: bool = False) -> None:
        with tokentrace.budget.check(model=model, max_tokens=40, input=messages) as grant:
            if stream:
                chunks = client.chat.completions.create(
                    model=grant.model,
                    max_tokens=40,
                    messages=messages,
                    stream=True,
                    stream_options={"include_usage": True},
                )
                usages = [c.usage for c in chunks if c.usage]  # read to the end: the call ends there
                usage = usages[-1]
                answered = grant.model
            else:
                reply = client.chat.completions.create(model=grant.model, max_tokens=40, messages=messages)
                usage, answered = reply.usage, reply.model
            into.append({"model": answered, "usage": usage.model_dump(), "warnings": grant.warnings})

    with tokentrace.context(tenant_id="acme", feature="refund-chat"):
        try:
            for number in range(50):
                ask("gpt-4o", facts["acme"], stream=number % 2 == 1)
        except tokentrace.budget.BudgetExceeded as exc:
            facts["refused"] = {"message": str(exc), "budget": exc.budget, "retry_after_s": exc.retry_after_s}
    with tokentrace.context(tenant_id="beta"):
        for _ in range(4):
            ask("gpt-4o", facts["beta"])
    # A call that fails gives its reservation back.
    with (
        contextlib.suppress(openai.BadRequestError),
        tokentrace.context(tenant_id="gamma"),
        tokentrace.budget.check(model="gpt-4o", max_tokens=40, input="x" * 600_000),
    ):
        client.chat.completions.create(
            model="gpt-4o", max_tokens=40, messages=[{"role": "user", "content": "x" * 600_000}]
        )
    # Without the `with` block nothing settles by itself: the app passes the usage.
    claude = anthropic.Anthropic(base_url=provider, api_key="sk-ant-sim", max_retries=0)
    grant = tokentrace.budget.check(
        model="claude-haiku-4-5", provider="anthropic", max_tokens=30, input=messages, tenant_id="delta"
    )
    message = claude.messages.create(model=grant.model, max_tokens=30, messages=messages)
    grant.settle(message.usage)
    facts["delta"] = message.usage.model_dump()
    return facts


def _own_processor(provider) -> InMemorySpanExporter:
    """A span processor of the app's own (an exporter to another backend, say)."""
    mine = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(mine))
    return mine


def _span_seen_by_http(provider: str, seen: list[str]) -> openai.OpenAI:
    """A client whose HTTP hook notes the kind of span current while each request is sent."""
    hook = {"request": [lambda request: seen.append(type(trace.get_current_span()).__name__)]}
    return openai.OpenAI(
        base_url=f"{provider}/v1",
        api_key="sk-sim",
        max_retries=0,
        http_client=openai.DefaultHttpxClient(event_hooks=hook),
    )


def _mine(exporter: InMemorySpanExporter) -> list[dict]:
    return [
        {"name": s.name, "trace_id": format(s.context.trace_id, "032x"), "attributes": dict(s.attributes)}
        for s in exporter.get_finished_spans()
    ]


def joined(provider: str, mine: InMemorySpanExporter) -> dict:
    """tokentrace joined the provider the app set up, processors and all: its calls get OTel
    SDK spans, which the app's own processor sees as well."""
    seen: list[str] = []
    client = _span_seen_by_http(provider, seen)
    with tokentrace.context(tenant_id="acme"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    tokentrace.flush()
    return {"seen": seen, "mine": _mine(mine)}


def added_processor(provider: str) -> dict:
    """An app that adds a processor of its own to tokentrace's provider after init(): calls
    from then on get OTel SDK spans, so that processor sees them."""
    seen: list[str] = []
    client = _span_seen_by_http(provider, seen)
    with tokentrace.context(tenant_id="acme"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "first"}])
        mine = _own_processor(trace.get_tracer_provider())
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "second"}])
    tokentrace.flush()
    return {"seen": seen, "mine": _mine(mine)}


def tiers(client: openai.OpenAI, provider: str) -> dict:
    """Calls served at each tier: flex and priority on gpt-5 (one streamed), the default,
    the Responses API on flex, and Anthropic's priority."""
    import anthropic

    claude_client = anthropic.Anthropic(base_url=provider, api_key="sk-ant-sim", max_retries=0)
    facts: dict = {"usage": {}}

    @tokentrace.observe(name="tiers")
    def run() -> None:
        facts["trace_id"] = _trace_id()
        ask = [{"role": "user", "content": "price me by my tier"}]
        for tier in ("flex", "priority", "auto"):
            answer = client.chat.completions.create(model="gpt-5", service_tier=tier, messages=ask)
            facts["usage"][tier] = answer.usage.model_dump()
        chunks = list(
            client.chat.completions.create(
                model="gpt-5",
                service_tier="priority",
                stream=True,
                stream_options={"include_usage": True},
                messages=[{"role": "user", "content": "stream me at priority"}],
            )
        )
        facts["usage"]["priority-stream"] = chunks[-1].usage.model_dump()
        response = client.responses.create(model="gpt-5", input="flex, by responses", service_tier="flex")
        facts["usage"]["responses-flex"] = response.usage.model_dump()
        message = claude_client.messages.create(
            model="claude-sonnet-4-5", max_tokens=40, service_tier="auto", messages=ask
        )
        facts["usage"]["anthropic"] = message.usage.model_dump()

    run()
    return facts


def audio(client: openai.OpenAI) -> dict:
    """gpt-audio hears a second of speech and answers aloud, then a text-only call on the same
    model: the first call's audio tokens are priced at gpt-audio's audio rates."""
    facts: dict = {"usage": []}

    @tokentrace.observe(name="voice")
    def run() -> None:
        facts["trace_id"] = _trace_id()
        heard = {"type": "input_audio", "input_audio": {"data": "A" * 43000, "format": "wav"}}
        spoken = client.chat.completions.create(
            model="gpt-audio",
            modalities=["text", "audio"],
            audio={"voice": "alloy", "format": "wav"},
            messages=[{"role": "user", "content": [{"type": "text", "text": "what did I say?"}, heard]}],
        )
        facts["transcript"] = spoken.choices[0].message.audio.transcript
        written = client.chat.completions.create(
            model="gpt-audio", messages=[{"role": "user", "content": "and in writing?"}]
        )
        facts["usage"] = [spoken.usage.model_dump(), written.usage.model_dump()]

    run()
    return facts


def self_hosted(client: openai.OpenAI) -> dict:
    """Three calls to a Llama served on our own GPUs (the simulated provider stands in for vLLM's
    OpenAI-compatible server) and one to gpt-4o-mini: the Llama calls share the deployment's hour."""
    facts: dict = {"usage": []}

    @tokentrace.observe(name="self-hosted")
    def run() -> None:
        facts["trace_id"] = _trace_id()
        for n in range(3):
            content = "summarize this ticket " * (20 * (n + 1))
            reply = client.chat.completions.create(
                model="llama-3.1-8b-instruct", messages=[{"role": "user", "content": content}]
            )
            facts["usage"].append(reply.usage.model_dump())
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])

    run()
    return facts


def batch_jobs(client: openai.OpenAI, provider: str) -> dict:
    """Batches through the real SDKs' helpers: an OpenAI batch of three chat requests created in
    acme's context and its output file read (twice) elsewhere; an Anthropic message batch of
    two requests and one that fails, its results read with messages.batches.results."""
    import anthropic

    claude = anthropic.Anthropic(base_url=provider, api_key="sk-ant-sim", max_retries=0)
    requests = [
        {
            "custom_id": f"ticket-{n}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": f"Summarize {n} " * (n + 1)}],
            },
        }
        for n in range(3)
    ]
    facts: dict = {}

    @tokentrace.observe(name="nightly")
    def run() -> None:
        facts["trace_id"] = _trace_id()
        with tokentrace.context(tenant_id="acme", feature="nightly-summary"):
            data = b"".join(orjson.dumps(r) + b"\n" for r in requests)
            upload = client.files.create(file=("tickets.jsonl", data), purpose="batch")
            batch = client.batches.create(
                input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
            asked = claude.messages.batches.create(
                requests=[
                    {
                        "custom_id": "draft-1",
                        "params": {
                            "model": "claude-haiku-4-5",
                            "max_tokens": 40,
                            "messages": [{"role": "user", "content": "hi"}],
                        },
                    },
                    {
                        "custom_id": "draft-2",
                        "params": {
                            "model": "claude-haiku-4-5",
                            "max_tokens": 20,
                            "messages": [{"role": "user", "content": "bye"}],
                        },
                    },
                    {
                        "custom_id": "broken",
                        "params": {
                            "model": "claude-haiku-4-5",
                            "messages": [{"role": "user", "content": "?"}],
                        },
                    },
                ]
            )
        with tokentrace.context(tenant_id="globex"):  # read elsewhere: the batch's tags hold
            done = client.batches.retrieve(batch.id)
            text = client.files.content(done.output_file_id).text
            client.files.content(done.output_file_id)  # read twice: counted once
            results = list(claude.messages.batches.results(asked.id))

            async def read_async() -> None:  # and a third time, by the async client
                aclient = openai.AsyncOpenAI(base_url=f"{provider}/v1", api_key="sk-sim", max_retries=0)
                await aclient.files.content(done.output_file_id)
                await aclient.close()

            asyncio.run(read_async())
        facts["openai"] = {"batch": batch.id, "results": [orjson.loads(line) for line in text.splitlines()]}
        facts["anthropic"] = {"batch": asked.id, "results": [r.model_dump(mode="json") for r in results]}

    run()
    return facts


def main() -> None:
    scenario, provider, server = sys.argv[1:4]
    capture = scenario == "content"
    if scenario == "joined":
        app_provider = TracerProvider(resource=Resource.create({"service.name": "sdk-test-app"}))
        mine = _own_processor(app_provider)
        trace.set_tracer_provider(app_provider)
    tokentrace.init(
        service_name="sdk-test-app",
        endpoint=server,
        environment="test",
        capture_content=capture or None,
        max_content_chars=2000,
    )
    client = openai.OpenAI(base_url=f"{provider}/v1", api_key="sk-sim", max_retries=0)
    if scenario == "agent":
        facts = agent(client)
    elif scenario == "suppressed":
        facts = suppressed(client)
    elif scenario == "streams":
        facts = streams(client)
    elif scenario == "async":
        facts = asynchronous(provider)
    elif scenario == "threads":
        facts = threads(client)
    elif scenario == "anthropic":
        facts = claude(provider)
    elif scenario == "failures":
        facts = failures(client, provider)
    elif scenario == "content":
        facts = content(client, provider)
    elif scenario == "joined":
        facts = joined(provider, mine)
    elif scenario == "added-processor":
        facts = added_processor(provider)
    elif scenario == "budgets":
        facts = budgets(client, provider)
    elif scenario == "tiers":
        facts = tiers(client, provider)
    elif scenario == "audio":
        facts = audio(client)
    elif scenario == "self-hosted":
        facts = self_hosted(client)
    elif scenario == "batches":
        facts = batch_jobs(client, provider)
    elif scenario == "backend-down":
        facts = agent(client)
        print(orjson.dumps(facts).decode(), flush=True)
        sys.stdin.readline()  # the test starts the server, then lets us flush
        tokentrace.flush()
        return
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    tokentrace.flush()
    print(orjson.dumps(facts).decode(), flush=True)


if __name__ == "__main__":
    main()
