"""What a retrieval step returned, as the GenAI conventions record it: `gen_ai.retrieval.documents`
(a JSON array of {id, score, content}) and `gen_ai.retrieval.query.text`, put on an
`@observe(kind="retrieval")` span when content capture is on (redacted and capped like messages).
An evaluator judging an answer's groundedness reads the documents from there.

A retrieval may return a string, or a list of strings, dicts or objects (a LangChain Document's
`page_content`, a LlamaIndex node's `text`); what has no text of its own is not recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson

from tokentrace.sdk import content

log = logging.getLogger("tokentrace.sdk")

DOCUMENTS = "gen_ai.retrieval.documents"
QUERY = "gen_ai.retrieval.query.text"
_TEXT = ("content", "page_content", "text")
_ID = ("id", "doc_id", "id_")
_QUERY_NAMES = ("query", "question", "text", "q")


def _field(item: Any, names: tuple[str, ...]) -> Any:
    for name in names:
        value = item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)
        if value is not None:
            return value
    return None


def _document(item: Any) -> dict[str, Any] | None:
    if isinstance(item, str):
        return {"content": content.clean(item)}
    text = _field(item, _TEXT)
    node = None if text is not None else _field(item, ("node",))  # LlamaIndex's NodeWithScore
    if node is not None:
        text = _field(node, _TEXT)
    if not isinstance(text, str):
        return None
    found: dict[str, Any] = {}
    ident = _field(node if node is not None else item, _ID)
    if ident is not None:
        found["id"] = str(ident)
    score = _field(item, ("score",))
    if isinstance(score, int | float) and not isinstance(score, bool):
        found["score"] = score
    found["content"] = content.clean(text)
    return found


def documents(result: Any) -> str | None:
    """The documents a retrieval returned, as the attribute's JSON; None when it returned none
    with text."""
    items = [result] if isinstance(result, str | Mapping) else result
    if not isinstance(items, list | tuple):
        return None
    found = [d for d in map(_document, items) if d is not None]
    return orjson.dumps(found).decode() if found else None


def query(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str | None:
    """The query a retrieval was called with: a keyword argument named like one, else its first
    string argument."""
    for name in _QUERY_NAMES:
        if isinstance(kwargs.get(name), str):
            return content.clean(kwargs[name])
    return next((content.clean(a) for a in args if isinstance(a, str)), None)


def record(span: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], result: Any) -> None:
    """Put the retrieval's query and documents on its span; nothing unless capture is on, and
    nothing from a value that cannot be read (the app's call is never failed for it)."""
    if not content.capturing():
        return
    try:
        asked, found = query(args, kwargs), documents(result)
    except Exception:  # an object whose attributes raise: the step is recorded without them
        log.debug("retrieval result not recorded", exc_info=True)
        return
    if asked is not None:
        span.set_attribute(QUERY, asked)
    if found is not None:
        span.set_attribute(DOCUMENTS, found)
