"""`@observe(kind="retrieval")` records what the retrieval was asked and returned
(`gen_ai.retrieval.query.text`, `gen_ai.retrieval.documents`) when content capture is on, and
nothing when it is off; returns it cannot read are left unrecorded, the call unaffected."""

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
    assert _recorded(spans) == (None, None)
    content.configure(content.ContentPolicy())

    @observe(kind="retrieval")
    def search(question: str) -> str:
        return "private policy text"

    search("refund?")
    assert _recorded(spans) == (None, None)
