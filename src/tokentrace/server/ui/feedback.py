"""POST /traces/<trace_id>/feedback and /sessions/<session_id>/feedback: a person's verdict on a
trace or a whole session from its page (thumbs up or down, an optional label and comment),
stored as the scores `human` (boolean) and `human_label` (categorical) with source "human". One
verdict a trace or session: a new one replaces it. The quality page shows how often each
evaluator agrees with these."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tokentrace.canonical import HUMAN_LABEL, HUMAN_SCORE
from tokentrace.ingest.columns import tables
from tokentrace.ingest.pipeline import Overloaded
from tokentrace.ingest.prepare import Prepared
from tokentrace.ingest.raw import SpanRejected
from tokentrace.ingest.score_rows import ScoreRejected, score_row
from tokentrace.query.sessions import latest_trace
from tokentrace.server.auth import Unauthorized, project_for
from tokentrace.server.state import ServerState
from tokentrace.server.ui.render import authorization, render

MAX_FORM_BYTES = 16_384


def _same_origin(request: Request) -> bool:
    """A form posted from this server's own pages: a browser names the page's origin on a POST,
    so another site's page cannot cast a verdict with the visitor's key or loopback access."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    return origin is None or urlsplit(origin).netloc == request.url.netloc


async def _read_verdict(
    request: Request, state: ServerState, page: str
) -> tuple[str, tuple[str, str, str]] | Response:
    """(project, (verdict, label, comment)) of a feedback form, or the page that refuses it."""
    try:
        project = project_for(state, authorization(request))
    except Unauthorized:
        return RedirectResponse(f"/login?next={quote(page)}", status_code=303)
    if not _same_origin(request):
        return render(request, "error.html", {"project": project, "message": "Not from this site."}, 403)
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return render(request, "error.html", {"project": project, "message": "Not saved: too long."}, 413)
    # The page's form is urlencoded (no files): read here rather than with python-multipart.
    form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    verdict, label, comment = ((form.get(k) or [""])[0].strip() for k in ("verdict", "label", "comment"))
    return project, (verdict, label, comment)


def _rows(
    project: str, form: tuple[str, str, str], trace_id: str, session_id: str | None
) -> list[dict[str, Any]]:
    """The scores of one verdict: `human` (thumbs) and, with a label, `human_label`; their ids
    name the trace (or the session), so a new verdict replaces the last."""
    verdict, label, comment = form
    if verdict not in ("up", "down"):
        raise ScoreRejected("a verdict is up or down")
    target = f"session:{session_id}" if session_id is not None else trace_id
    common = {"trace_id": trace_id, "session_id": session_id, "source": "human"}
    rows = [
        score_row(
            project,
            name=HUMAN_SCORE,
            value=verdict == "up",
            comment=comment or None,
            score_id=f"{HUMAN_SCORE}:{target}",
            **common,
        )
    ]
    if label:
        rows.append(
            score_row(
                project,
                name=HUMAN_LABEL,
                value=label,
                data_type="categorical",
                score_id=f"{HUMAN_LABEL}:{target}",
                **common,
            )
        )
    return rows


async def _save(
    request: Request, state: ServerState, project: str, rows: list[dict[str, Any]], back: str
) -> Response:
    try:
        state.pipeline.check_capacity()
        await asyncio.wrap_future(state.pipeline.submit(Prepared(tables(scores=rows), 0, [])))
    except (Overloaded, OSError) as exc:
        return render(request, "error.html", {"project": project, "message": f"Not saved: {exc}."}, 503)
    return RedirectResponse(f"{back}?feedback=saved", status_code=303)


async def post_feedback(request: Request) -> Response:
    """A person's verdict on a trace."""
    state: ServerState = request.app.state.tt
    trace_id = request.path_params["trace_id"]
    found = await _read_verdict(request, state, f"/traces/{trace_id}")
    if isinstance(found, Response):
        return found
    project, form = found
    try:
        rows = _rows(project, form, trace_id, None)
    except SpanRejected as exc:  # ScoreRejected, or a trace id that is none
        return render(request, "error.html", {"project": project, "message": f"Not saved: {exc}."}, 400)
    return await _save(request, state, project, rows, f"/traces/{rows[0]['trace_id']}")


async def post_session_feedback(request: Request) -> Response:
    """A person's verdict on a whole session, given at its latest trace (whose tags and time the
    quality page counts it by, as a session evaluator's verdict)."""
    state: ServerState = request.app.state.tt
    session_id = request.path_params["session_id"]
    page = f"/sessions/{quote(session_id, safe='')}"
    found = await _read_verdict(request, state, page)
    if isinstance(found, Response):
        return found
    project, form = found
    latest = await run_in_threadpool(latest_trace, state.store, project, session_id)
    if latest is None:
        return render(request, "error.html", {"project": project, "message": "No such session."}, 404)
    try:
        rows = _rows(project, form, latest, session_id)
    except SpanRejected as exc:
        return render(request, "error.html", {"project": project, "message": f"Not saved: {exc}."}, 400)
    return await _save(request, state, project, rows, page)
