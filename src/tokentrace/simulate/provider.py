"""The simulated provider app: OpenAI- and Anthropic-compatible routes over one ProviderState."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tokentrace.simulate import anthropic_api, batches, openai_api
from tokentrace.simulate.state import ProviderState


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def ledger(request: Request) -> JSONResponse:
    """Every answer given so far (the newest 100,000), in order: what a tracing backend must have counted."""
    return JSONResponse(list(request.app.state.sim.ledger))


def create_app(state: ProviderState | None = None) -> Starlette:
    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/_simulate/ledger", ledger),
            *openai_api.routes,
            *anthropic_api.routes,
            *batches.routes,
        ]
    )
    app.state.sim = state or ProviderState()
    return app


def run(
    host: str = "127.0.0.1",
    port: int = 8300,
    seed: int = 0,
    realistic_latency: bool = False,
    short_ids: bool = False,
) -> None:
    import uvicorn

    app = create_app(ProviderState(seed=seed, realistic_latency=realistic_latency, short_ids=short_ids))
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
