"""`/login` and `/logout`: a browser keeps its API key in an HttpOnly cookie, since it cannot
send an Authorization header on navigation. Loopback servers without keys need no login."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tokentrace.server.auth import Unauthorized, project_for
from tokentrace.server.body import BodyTooLarge, read_body
from tokentrace.server.state import ServerState
from tokentrace.server.ui.render import KEY_COOKIE, render


def _next(value: str | None) -> str:
    """Only a path on this server (never `//elsewhere` or a scheme) may follow the login."""
    return value if value and value.startswith("/") and not value.startswith("//") else "/"


async def login(request: Request) -> Response:
    state: ServerState = request.app.state.tt
    target = _next(request.query_params.get("next"))
    if request.method == "GET":
        return render(request, "login.html", {"project": None, "next": target, "message": None})
    try:
        form = parse_qs((await read_body(request, 16 * 1024)).decode("utf-8", "replace"))
    except BodyTooLarge:
        return render(request, "login.html", {"project": None, "next": target, "message": "Too long."}, 413)
    key = (form.get("key") or [""])[0].strip()
    target = _next((form.get("next") or [target])[0])
    try:
        project_for(state, f"Bearer {key}" if key else None)
    except Unauthorized as exc:
        return render(request, "login.html", {"project": None, "next": target, "message": str(exc)}, 401)
    response = RedirectResponse(target, status_code=303)
    if key:
        response.set_cookie(KEY_COOKIE, key, httponly=True, samesite="strict", max_age=30 * 86400)
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(KEY_COOKIE)
    return response


routes = [Route("/login", login, methods=["GET", "POST"]), Route("/logout", logout, methods=["POST"])]
