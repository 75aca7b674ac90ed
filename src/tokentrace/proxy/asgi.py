"""The few ASGI steps the gateway needs, written directly: it answers hundreds of calls a second
and a framework's request and response objects would be most of its cost."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
_JSON = [(b"content-type", b"application/json")]


class BodyTooLarge(Exception):
    """The request body passed the gateway's limit."""


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; BodyTooLarge past `limit` bytes."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def start_response(send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A whole JSON answer."""
    await start_response(send, status, [*_JSON, *(headers or [])])
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def respond_json(send: Send, status: int, data: Any) -> None:
    await respond(send, status, orjson.dumps(data))


async def until_disconnect(receive: Receive) -> None:
    """Return when the client goes away (after the request body was read)."""
    while (await receive())["type"] != "http.disconnect":
        pass
