"""Request bodies read with a size limit, stopping as soon as it is passed."""

from __future__ import annotations

from starlette.requests import Request


class BodyTooLarge(Exception):
    """The body is larger than the server's limit (answered 413)."""


def declared_length(request: Request) -> int:
    """The body's length as its Content-Length header says (0 when it says nothing usable)."""
    declared = request.headers.get("content-length", "")
    return int(declared) if declared.isdigit() else 0


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or BodyTooLarge once more than `limit` bytes are declared or read."""
    if declared_length(request) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)
