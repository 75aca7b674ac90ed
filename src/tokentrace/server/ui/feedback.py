"""POST /traces/<trace_id>/feedback: a person's verdict on a trace from its page (thumbs up or
down, an optional label and comment), stored as the scores `human` (boolean) and `human_label`
(categorical) with source "human". One verdict a trace: a new one replaces it. The quality page
shows how often each evaluator agrees with these."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, quote, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tokentrace.canonical import HUMAN_LABEL, HUMAN_SCORE
from tokentrace.ingest.columns import tables
from tokentrace.ingest.pipeline import Overloaded
from tokentrace.ingest.prepare import Prepared
from tokentrace.ingest.raw import SpanRejected
from tokentrace.ingest.score_rows import ScoreRejected, score_row
from tokentrace.server.auth import Unauthorized, project_for
from tokentrace.server.state import ServerState
from tokentrace.server.ui.render import authorization, render

MAX_FORM_BYTES = 16_384


def _same_origin(request: Request) -> bool:
    """A form posted from this server's own pages: a browser names the page's origin on a POST,
    so another site's page cannot cast a verdict with the visitor's key or loopback access."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    return origin is None or urlsplit(origin).netloc == request.url.netloc


async def post_feedback(request: Request) -> Response:
    state: ServerState = request.app.state.tt
    trace_id = request.path_params["trace_id"]
    try:
        project = project_for(state, authorization(request))
    except Unauthorized:
        return RedirectResponse(f"/login?next={quote(f'/traces/{trace_id}')}", status_code=303)
    if not _same_origin(request):
        return render(request, "error.html", {"project": project, "message": "Not from this site."}, 403)
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return render(request, "error.html", {"project": project, "message": "Not saved: too long."}, 413)
    # The page's form is urlencoded (no files): read here rather than with python-multipart.
    form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    verdict, label, comment = ((form.get(k) or [""])[0].strip() for k in ("verdict", "label", "comment"))
    try:
        if verdict not in ("up", "down"):
            raise ScoreRejected("a verdict is up or down")
        rows = [
            score_row(
                project,
                trace_id=trace_id,
                name=HUMAN_SCORE,
                value=verdict == "up",
                comment=comment or None,
                score_id=f"{HUMAN_SCORE}:{trace_id}",
                source="human",
            )
        ]
        if label:
            rows.append(
                score_row(
                    project,
                    trace_id=trace_id,
                    name=HUMAN_LABEL,
                    value=label,
                    data_type="categorical",
                    score_id=f"{HUMAN_LABEL}:{trace_id}",
                    source="human",
                )
            )
    except SpanRejected as exc:  # ScoreRejected, or a trace id that is none
        return render(request, "error.html", {"project": project, "message": f"Not saved: {exc}."}, 400)
    try:
        state.pipeline.check_capacity()
        await asyncio.wrap_future(state.pipeline.submit(Prepared(tables(scores=rows), 0, [])))
    except (Overloaded, OSError) as exc:
        return render(request, "error.html", {"project": project, "message": f"Not saved: {exc}."}, 503)
    return RedirectResponse(f"/traces/{rows[0]['trace_id']}?feedback=saved", status_code=303)
