"""The floor under any Python gateway on this stack: uvicorn (uvloop, httptools) receiving, aiohttp
forwarding the bytes to one upstream, answer passed back; no parsing, no spans, no budgets.

bench/proxy.py runs it as the `bare` target, so the gateway's added latency can be split into
what the stack costs and what tokentrace adds on top of it.

    .venv/bin/python bench/bare_proxy.py UPSTREAM_URL PORT
"""

from __future__ import annotations

import sys

import aiohttp
import uvicorn

UPSTREAM = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
HOP_BY_HOP = {b"host", b"content-length", b"connection", b"transfer-encoding"}
client: aiohttp.ClientSession | None = None


async def app(scope, receive, send) -> None:
    global client
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                client = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await client.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/healthz":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {k.decode(): v.decode() for k, v in scope["headers"] if k not in HOP_BY_HOP}
    async with client.post(UPSTREAM + scope["path"], data=body, headers=headers) as response:
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(b"content-type", response.headers.get("content-type", "").encode())],
            }
        )
        async for chunk in response.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[2]),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
