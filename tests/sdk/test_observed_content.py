"""`@observe` records what a step was given and returned when content capture is on, as the GenAI
conventions say: a retrieval's query and documents (`gen_ai.retrieval.query.text`,
`gen_ai.retrieval.documents`), a tool's arguments and result (`gen_ai.tool.call.arguments`,
`gen_ai.tool.call.result`); any other step's in `input.value` and `output.value`; nothing when
it is off; what it cannot read is left unrecorded, the call unaffected."""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass

import orjson
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tokentrace.sdk import content
from tokentrace.sdk.observe import observe

observing = importlib.import_module("tokentrace.sdk.observe")  # the module (the package exports the function)


@dataclass
class LangChainDocument:  # the shape of langchain_core.documents.Document
    page_content: str
    metadata: dict


@dataclass
class Node:
    text: str
    id_: str


@dataclass
class NodeWithScore:  # the shape of llama_index's
    node: Node
    score: float


@pytest.fixture
def spans(monkeypatch):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(observing, "_tracer", lambda: provider.get_tracer("test"))
    content.configure(content.ContentPolicy(enabled=True))
    yield exporter
    content.configure(content.ContentPolicy())
    provider.shutdown()


def _recorded(exporter) -> tuple[str | None, list | None]:
    [span] = exporter.get_finished_spans()
    exporter.clear()
    documents = span.attributes.get("gen_ai.retrieval.documents")
    return span.attributes.get("gen_ai.retrieval.query.text"), orjson.loads(documents) if documents else None


@pytest.mark.parametrize(
    ("returned", "documents"),
    [
        ("Refunds take five days.", [{"content": "Refunds take five days."}]),
        (["a", "b"], [{"content": "a"}, {"content": "b"}]),
        ([{"id": 7, "score": 0.9, "text": "seven"}], [{"id": "7", "score": 0.9, "content": "seven"}]),
        ([LangChainDocument("from langchain", {"source": "kb"})], [{"content": "from langchain"}]),
        (
            [NodeWithScore(Node("from llama", "n1"), 0.5)],
            [{"id": "n1", "score": 0.5, "content": "from llama"}],
        ),
        ([{"title": "no text"}, 3, None], None),  # nothing with text: not recorded
        (42, None),
    ],
)
def test_a_retrievals_documents_are_recorded_in_the_conventions_shape(spans, returned, documents):
    @observe(kind="retrieval", name="kb")
    def search(question: str, top_k: int = 3):
        return returned

    assert search("when is my refund?") is returned  # the app gets what it returned
    assert _recorded(spans) == ("when is my refund?", documents)


def test_the_query_is_found_by_name_and_async_retrievals_are_recorded_too(spans):
    @observe(kind="retrieval")
    async def search(index: int, *, query: str) -> list[str]:
        return ["mail jane@corp.example for refunds"]

    asyncio.run(search(1, query="refund contact"))
    asked, documents = _recorded(spans)
    assert asked == "refund contact"
    assert documents == [{"content": "mail [EMAIL] for refunds"}]  # redacted like any content


class Hostile:
    @property
    def page_content(self) -> str:
        raise RuntimeError("lazy load failed")


def test_a_result_that_cannot_be_read_is_not_recorded_and_the_app_gets_it(spans):
    returned = [Hostile()]

    @observe(kind="retrieval")
    def search(question: str) -> list:
        return returned

    assert search("refund?") is returned
    assert _recorded(spans) == (None, None)


def test_nothing_is_recorded_when_capture_is_off_or_the_step_is_no_retrieval(spans):
    @observe(kind="tool")
    def lookup(order: str) -> str:
        return "in transit"

    lookup("A-1")
    assert _recorded(spans) == (None, None)  # no retrieval attributes on a tool
    content.configure(content.ContentPolicy())
    lookup("A-1")
    assert _tool_call(spans) == (None, None)  # nor a tool's own, with capture off

    @observe(kind="retrieval")
    def search(question: str) -> str:
        return "private policy text"

    search("refund?")
    assert _recorded(spans) == (None, None)


def _tool_call(exporter) -> tuple[dict | None, str | None]:
    [span] = exporter.get_finished_spans()
    exporter.clear()
    arguments = span.attributes.get("gen_ai.tool.call.arguments")
    return (orjson.loads(arguments) if arguments else None), span.attributes.get("gen_ai.tool.call.result")


def test_a_tools_arguments_by_name_and_its_result_are_recorded(spans):
    class Orders:
        @observe(kind="tool", name="lookup_order")
        def lookup(self, order_id: str, *, verbose: bool = False) -> dict:
            return {"order_id": order_id, "status": "in transit", 7: "a key that is no string"}

    Orders().lookup("A-1", verbose=True)
    arguments, result = _tool_call(spans)
    assert arguments == {"order_id": "A-1", "verbose": True}  # by name, the receiver left out
    assert orjson.loads(result) == {"order_id": "A-1", "status": "in transit", "7": "a key that is no string"}

    @observe(kind="tool")
    async def notify(email: str) -> str:
        return f"sent to {email}"

    asyncio.run(notify("jane@corp.example"))
    assert _tool_call(spans) == ({"email": "[EMAIL]"}, "sent to [EMAIL]")  # redacted like any content


def test_a_failing_tool_keeps_its_arguments_and_the_error(spans):
    @observe(kind="tool")
    def charge(amount: float) -> None:
        raise RuntimeError("card declined")

    with pytest.raises(RuntimeError):
        charge(12.5)
    [span] = spans.get_finished_spans()
    assert orjson.loads(span.attributes["gen_ai.tool.call.arguments"]) == {"amount": 12.5}
    assert (
        "gen_ai.tool.call.result" not in span.attributes and span.attributes["error.type"] == "RuntimeError"
    )


def test_any_other_steps_arguments_and_result_are_recorded_as_input_and_output(spans):
    """As Langfuse's and Phoenix's decorators do: a plain step's and an agent's arguments by name
    in `input.value`, what they returned in `output.value`; a generator's arguments only (what it
    yields is a stream); a retrieval's query goes with its documents, not here."""

    @observe
    def plan(question: str, *, depth: int = 2) -> list[str]:
        return ["look up the order", "answer"]

    @observe(kind="agent", name="support")
    async def support(question: str) -> str:
        return "Your refund is on its way."

    @observe
    def words(text: str):
        yield from text.split()

    @observe(kind="retrieval")
    def search(question: str) -> list[str]:
        return ["Refunds take five days."]

    plan("where is my refund?", depth=3)
    asyncio.run(support("where is my refund?"))
    assert list(words("a b")) == ["a", "b"]
    search("refund?")
    recorded = [
        (span.name, span.attributes.get("input.value"), span.attributes.get("output.value"))
        for span in spans.get_finished_spans()
    ]
    assert recorded == [
        ("plan", '{"question":"where is my refund?","depth":3}', '["look up the order","answer"]'),
        ("invoke_agent support", '{"question":"where is my refund?"}', "Your refund is on its way."),
        ("words", '{"text":"a b"}', None),
        ("retrieval search", None, None),
    ]
    spans.clear()
    content.configure(content.ContentPolicy())  # capture off: nothing
    plan("where is my refund?")
    [span] = spans.get_finished_spans()
    assert "input.value" not in span.attributes and "output.value" not in span.attributes


def test_a_step_can_keep_its_input_or_its_output_off_its_span(spans):
    @observe(capture_input=False)
    def sign(secret: str) -> str:
        return "signed"

    @observe(kind="tool", capture_output=False)
    def export(month: str) -> bytes:
        return b"a large file"

    @observe(kind="retrieval", capture_input=False)
    def search(question: str) -> list[str]:
        return ["Refunds take five days."]

    sign("hunter2")
    export("2026-11")
    search("my private question")
    sign_span, export_span, search_span = (s.attributes for s in spans.get_finished_spans())
    assert "input.value" not in sign_span and sign_span["output.value"] == "signed"
    assert export_span["gen_ai.tool.call.arguments"] == '{"month":"2026-11"}'
    assert "gen_ai.tool.call.result" not in export_span
    assert "gen_ai.retrieval.query.text" not in search_span
    assert orjson.loads(search_span["gen_ai.retrieval.documents"]) == [{"content": "Refunds take five days."}]
