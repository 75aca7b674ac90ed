"""`/reconcile`: the provider's bill against the traced calls. The page takes the provider's cost
or usage export (pasted, or read from a file by app.js) in a plain form and shows, per day and
model, billed, traced, the gap and its likely reasons; what `tokentrace reconcile` prints."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tokentrace.query.invoices import PROVIDERS, InvoiceError, read_export
from tokentrace.query.reconcile import reconcile
from tokentrace.server.api.reconcile import BODY_LIMIT
from tokentrace.server.body import BodyTooLarge, read_body
from tokentrace.server.state import ServerState
from tokentrace.server.ui.render import render, ui_route


@ui_route
def reconcile_page(request: Request, state: ServerState, project: str) -> Response:
    form: dict[str, list[str]] = getattr(request.state, "form", {})
    provider = (form.get("provider") or ["openai"])[0]
    export = (form.get("export") or [""])[0]
    context = {"project": project, "providers": PROVIDERS, "provider": provider, "export": export}
    if request.method != "POST":
        return render(request, "reconcile.html", context)
    try:
        result = reconcile(state.store, project, provider, read_export(provider, export))
    except (InvoiceError, ValueError) as exc:
        return render(request, "reconcile.html", context | {"problem": str(exc)}, status_code=400)
    return render(request, "reconcile.html", context | {"result": result})


async def reconcile_form(request: Request) -> Response:
    """The form's POST: its fields read here (the body is url-encoded), then the page."""
    try:
        body = await read_body(request, BODY_LIMIT)
    except BodyTooLarge:
        return PlainTextResponse(f"the export is larger than {BODY_LIMIT:,} bytes", status_code=413)
    request.state.form = parse_qs(body.decode("utf-8", "replace"))
    return await reconcile_page(request)


routes = [
    Route("/reconcile", reconcile_page, methods=["GET"]),
    Route("/reconcile", reconcile_form, methods=["POST"]),
]
