"""The pages over planted traffic: each renders, shows the API's numbers, filters through its
URL, and shows stored markup as text. (The same in a real browser: tests/e2e/test_ui.py.)"""

from __future__ import annotations

import functools
import html
import json
import re
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from markupsafe import escape
from starlette.testclient import TestClient

from tests.builders.planted import call
from tests.server.ui.conftest import HOSTILE, Site, planted, write
from tokentrace.query.budgets import budget_usage
from tokentrace.server.api import budgets as budgets_api
from tokentrace.server.app import create_app
from tokentrace.server.auth import hash_key
from tokentrace.server.config import ServerConfig
from tokentrace.server.runner import open_state
from tokentrace.server.ui import budgets as budgets_ui
from tokentrace.server.ui.formats import count, money, ms, pct
from tokentrace.store.filters import SpanFilter

PAGES = (
    "/",
    "/cost",
    "/traces",
    "/sessions",
    "/sessions/s1",
    "/latency",
    "/quality",
    "/evaluators",
    "/alerts",
    "/budgets",
    "/reconcile",
)


def kpi(page: str, name: str) -> str:
    found = re.search(rf'id="kpi-{name}"><span class="label">[^<]*</span><span class="value">([^<]*)<', page)
    assert found, f"no KPI {name}"
    return html.unescape(found[1])


def cells(page: str, table_id: str) -> list[dict[str, str]]:
    """A table's body rows: {data-group or first cell: ..., data-field: text}."""
    body = page.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    rows = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body.split("<tbody>", 1)[1], re.S):
        fields = dict(re.findall(r'data-field="([^"]+)">([^<]*)<', row))
        first = re.search(r"<td>(?:<a[^>]*>)?([^<]*)<", row)
        rows.append({"group": html.unescape(first[1]) if first else "", **fields})
    return rows


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_with_its_safety_headers(site: Site, path: str) -> None:
    response = site.client.get(path)
    assert response.status_code == 200, response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert float(response.headers["server-timing"].split("dur=")[1]) > 0
    assert '<a href="/cost?since=24h"' in response.text  # the nav carries the range


def test_the_overview_shows_the_apis_numbers(site: Site) -> None:
    api = site.client.get("/api/v1/overview", params={"since": "2h"}).json()
    page = site.client.get("/?since=2h").text
    t = api["totals"]
    assert t["requests"] == 64  # 60 steady calls, a failed one, the agent's two, the hostile one
    assert kpi(page, "spend") == money(t["cost_usd"])
    assert kpi(page, "requests") == count(t["requests"])
    assert kpi(page, "error-rate") == pct(t["error_rate"]) == pct(2 / 64)
    assert kpi(page, "p95-latency") == ms(t["p95_latency_ms"])
    assert sum(api["series"]["requests"]) == t["requests"]
    assert page.count('class="chart-data"') == 7
    # The rate now, over the range's last quarter hour: the calls came in the last hour of the
    # two, so the range's average is about half of it.
    until = datetime.fromisoformat(api["until"])
    recent = {"since": (until - timedelta(seconds=t["recent_seconds"])).isoformat(), "until": api["until"]}
    [row] = site.client.get("/api/v1/rollups", params=recent).json()["rows"]
    assert t["cost_per_hour_now"] == pytest.approx(row["cost_usd"] / t["recent_seconds"] * 3600)
    assert 14 * 60 <= t["recent_seconds"] <= 30 * 60 and t["cost_per_hour_now"] > 1.5 * t["cost_per_hour"]
    assert "Spend / hour, last" in page and kpi(page, "spend-rate") == money(t["cost_per_hour"])


def test_the_cost_table_matches_the_rollups_and_drills_down(site: Site) -> None:
    api = site.client.get("/api/v1/rollups", params={"since": "24h", "group_by": "feature"}).json()
    want = {r["feature"]: r for r in api["rows"]}
    page = site.client.get("/cost").text
    rows = {r["group"]: r for r in cells(page, "cost-table")}
    assert {"refund-chat", "classify", HOSTILE} <= set(rows)
    for feature in ("refund-chat", "classify"):
        assert rows[feature]["cost_usd"] == money(want[feature]["cost_usd"])
        assert rows[feature]["requests"] == count(want[feature]["requests"])
    # Costliest first by default; ascending on request.
    costs = [want[r["group"]]["cost_usd"] for r in cells(page, "cost-table")]
    assert costs == sorted(costs, reverse=True)
    ascending = cells(site.client.get("/cost?sort=requests&dir=asc").text, "cost-table")
    calls = [want[r["group"]]["requests"] for r in ascending]
    assert calls == sorted(calls)
    # A row's link filters by it and groups by the next tag (the model).
    link = html.unescape(re.search(r'class="drill" href="([^"]+)">refund-chat<', page)[1])
    assert parse_qs(urlsplit(link).query) == {
        "since": ["24h"],
        "feature": ["refund-chat"],
        "group_by": ["request_model"],
    }
    drilled = cells(site.client.get(link).text, "cost-table")
    assert [r["group"] for r in drilled] == ["gpt-4o"]


def test_cost_by_agent_sums_every_call_the_agent_made(site: Site) -> None:
    """The agent's calls inherit its name: the cost page groups by it, as the API does."""
    api = site.client.get("/api/v1/rollups", params={"since": "24h", "group_by": "agent_name"}).json()
    [support] = [r for r in api["rows"] if r["agent_name"] == "support"]
    tree = site.client.get(f"/api/v1/traces/{site.agent_trace}").json()
    assert (support["requests"], support["cost_usd"]) == (2, pytest.approx(tree["totals"]["cost_usd"]))
    rows = {r["group"]: r for r in cells(site.client.get("/cost?group_by=agent_name").text, "cost-table")}
    # `by` is what links made before group_by said
    assert cells(site.client.get("/cost?by=agent_name").text, "cost-table") == list(rows.values())
    assert rows["support"]["cost_usd"] == money(support["cost_usd"])
    assert rows["support"]["requests"] == count(2)


def test_unpriced_models_are_listed(site: Site) -> None:
    page = site.client.get("/cost").text
    unpriced = page.split('id="unpriced"', 1)[1]
    assert str(escape(HOSTILE)) in unpriced  # a made-up model has no price
    assert "gpt-4o-mini" not in unpriced


def test_the_trace_list_filters_through_its_url(site: Site) -> None:
    everything = site.client.get("/api/v1/traces", params={"since": "24h", "limit": 1000}).json()["traces"]
    page = site.client.get("/traces").text
    assert len(everything) == 63
    assert page.count("data-trace-id=") == 50 and 'rel="next" href="/traces?since=24h&amp;offset=50"' in page
    rest = site.client.get("/traces?offset=50").text
    assert rest.count("data-trace-id=") == 13 and 'rel="next"' not in rest
    shown = re.findall(r'data-trace-id="([0-9a-f]+)"', page + rest)
    assert shown == [t["trace_id"] for t in everything]
    classify = site.client.get("/traces?feature=classify").text
    assert classify.count("data-trace-id=") == 21  # 20 steady and the failed one
    errors = site.client.get("/traces?status=error").text
    assert errors.count("data-trace-id=") == 2  # the failed call and the agent with its failed try
    assert site.client.get("/traces?error_type=rate_limit&feature=classify").text.count("data-trace-id=") == 1
    assert site.client.get("/traces?min_cost=1000").text.count("data-trace-id=") == 0
    assert site.client.get("/traces?q=invoke_agent").text.count("data-trace-id=") == 1


def test_bad_filters_answer_400_with_the_reason_and_unknown_ids_404(site: Site) -> None:
    bad = site.client.get("/traces?min_cost=lots")
    assert bad.status_code == 400 and "min_cost must be a number" in bad.text
    for odd in ("nan", "inf"):
        bad = site.client.get(f"/api/v1/traces?min_duration_ms={odd}")
        assert bad.status_code == 400 and "min_duration_ms must be a number" in bad.json()["error"]
    unknown = site.client.get("/cost?colour=red")
    assert unknown.status_code == 400 and "is not a field you can filter or group by" in html.unescape(
        unknown.text
    )
    assert site.client.get("/cost?group_by=trace_id").status_code == 400
    assert site.client.get("/traces?since=yesterday").status_code == 400
    assert site.client.get("/traces/" + "f" * 32).status_code == 404
    assert site.client.get("/sessions/nobody").status_code == 404


def test_a_trace_shows_retries_its_conversation_and_subtree_totals(site: Site) -> None:
    tree = site.client.get(f"/api/v1/traces/{site.agent_trace}").json()
    retried = tree["roots"][0]["children"][1]["span_id"]
    page = site.client.get(f"/traces/{site.agent_trace}?span={retried}").text
    assert "retry #1" in page and ">rate_limit<" in page
    assert kpi(page, "cost") == money(tree["totals"]["cost_usd"])
    detail = page.split('id="span-detail"', 1)[1]
    for text in (
        "You are a support agent.",
        "Where is my refund?",
        "lookup_order",
        "shipped",
        "Your refund was sent.",
    ):
        assert text in html.unescape(detail)
    for role in ("system", "user", "assistant", "tool"):
        assert f"role-{role}" in detail
    assert '"order": "A-17"' in html.unescape(detail)  # tool-call arguments, pretty-printed
    root = site.client.get(f"/traces/{site.agent_trace}").text  # the root is selected by default
    # who and what the trace was for, each a link to its traces
    assert tree["tags"] == {"user_id": "u1", "tenant_id": "acme", "feature": "refund-chat"} | {
        "prompt_template": "refund-chat",
        "prompt_version": "v1",
    }
    tags = root.split('id="trace-tags"', 1)[1].split("</p>", 1)[0]
    assert 'href="/traces?tenant=acme">tenant=acme</a>' in tags and ">user=u1</a>" in tags
    subtree = re.search(r'data-field="subtree_cost_usd">([^<]*)<', root)[1]
    assert subtree == money(tree["totals"]["cost_usd"])
    # the agent's run, summed: its two calls (the rate-limited one and its retry), their cost
    [run] = tree["agents"]
    assert (run["name"], run["calls"], run["cost_usd"]) == ("support", 2, tree["totals"]["cost_usd"])
    agents = root.split('id="agents"', 1)[1].split("</table>", 1)[0]
    assert ">support</a>" in agents
    assert re.search(r'data-field="calls">([^<]*)<', agents)[1] == "2"
    assert re.search(r'data-field="cost_usd">([^<]*)<', agents)[1] == money(run["cost_usd"])


def test_the_span_panel_is_a_fragment_for_htmx_and_a_redirect_otherwise(site: Site) -> None:
    tree = site.client.get(f"/api/v1/traces/{site.agent_trace}").json()
    span = tree["roots"][0]["span_id"]
    path = f"/traces/{site.agent_trace}/spans/{span}"
    fragment = site.client.get(path, headers={"HX-Request": "true"})
    assert (
        fragment.status_code == 200
        and "<html" not in fragment.text
        and "invoke_agent support" in fragment.text
    )
    plain = site.client.get(path, follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"] == f"/traces/{site.agent_trace}?span={span}"


def test_the_span_panel_lists_audio_and_image_tokens_only_where_a_call_had_them(site: Site) -> None:
    spoken = call(
        datetime.now(UTC) - timedelta(minutes=2),
        model="gpt-audio",
        input_tokens=900,
        output_tokens=700,
        extra={"gen_ai.usage.audio.input_tokens": 600, "gen_ai.usage.audio.output_tokens": 520},
    )
    write(site.state, [spoken])
    panel = site.client.get(
        f"/traces/{spoken.trace_id}/spans/{spoken.span_id}", headers={"HX-Request": "true"}
    ).text
    assert re.search(r'data-field="input_audio_tokens">([^<]*)<', panel)[1] == count(600)
    assert re.search(r'data-field="output_audio_tokens">([^<]*)<', panel)[1] == count(520)
    assert "of input: image" not in panel
    tree = site.client.get(f"/api/v1/traces/{site.agent_trace}").json()
    plain = tree["roots"][0]["children"][0]["span_id"]
    assert "audio" not in site.client.get(f"/traces/{site.agent_trace}/spans/{plain}").text


def test_a_session_lists_its_traces_in_order_with_its_totals(site: Site) -> None:
    api = site.client.get("/api/v1/sessions/s1").json()
    page = site.client.get("/sessions/s1").text
    assert kpi(page, "traces") == count(api["totals"]["traces"]) == "60"
    assert kpi(page, "cost") == money(api["totals"]["cost_usd"])
    ids = re.findall(r'<li data-trace-id="([0-9a-f]+)"', page)
    assert ids == [t["trace_id"] for t in api["traces"]]
    starts = [t["start_time"] for t in api["traces"]]
    assert starts == sorted(starts)
    # whose session it is: the user and tenant of its first trace
    assert (api["user_id"], api["tenant_id"]) == (api["traces"][0]["user_id"], "acme")
    assert ">tenant=acme</a>" in page.split('id="session-tags"', 1)[1].split("</p>", 1)[0]
    listed = cells(site.client.get("/sessions").text, "session-table")
    assert {"s1", HOSTILE} <= {r["group"] for r in listed}


def test_a_session_is_scored_by_the_api_and_judged_by_a_person_from_its_page(site: Site) -> None:
    """A score of a whole session (no trace named) and a person's thumbs on its page are the
    session's: on its page and in its API answer, the thumbs given at its latest trace, a new
    verdict replacing the last; what cannot be one is refused and stores nothing."""
    accepted = site.client.post(
        "/api/v1/scores",
        json=[
            {"session_id": "s1", "name": "resolved", "value": 0.25, "comment": "gave up"},
            {"name": "resolved", "value": 1},  # neither a trace nor a session
            {"session_id": "s1", "span_id": "a" * 16, "name": "resolved", "value": 1},
        ],
    ).json()
    assert accepted["accepted"] == 1 and len(accepted["errors"]) == 2
    assert "a score needs a trace_id (or a session_id)" in accepted["errors"][0]
    assert "a span's score needs its trace_id" in accepted["errors"][1]

    def judge(session_id: str, verdict: str, **headers: str):
        return site.client.post(
            f"/sessions/{quote(session_id, safe='')}/feedback",
            data={"verdict": verdict, "comment": "went in circles"},
            headers=headers,
            follow_redirects=False,
        )

    page = site.client.get("/sessions/s1").text
    assert 'action="/sessions/s1/feedback"' in page and 'name="verdict" value="down"' in page
    assert judge("s1", "up").status_code == 303
    saved = judge("s1", "down")  # replaces the first
    assert saved.status_code == 303 and saved.headers["location"] == "/sessions/s1?feedback=saved"
    assert judge(HOSTILE, "up").headers["location"] == f"/sessions/{quote(HOSTILE, safe='')}?feedback=saved"
    assert judge("s1", "down", origin="https://evil.example").status_code == 403
    assert judge("nobody", "up").status_code == 404
    assert judge("s1", "meh").status_code == 400
    assert site.state.pipeline.writer.flush()

    api = site.client.get("/api/v1/sessions/s1").json()
    by_name = {s["name"]: s for s in api["scores"]}
    assert set(by_name) == {"resolved", "human"} and len(api["scores"]) == 2
    assert (by_name["resolved"]["trace_id"], by_name["resolved"]["session_id"]) == ("", "s1")
    human = by_name["human"]
    assert (human["value"], human["source"], human["comment"]) == (0.0, "human", "went in circles")
    assert human["trace_id"] == api["traces"][-1]["trace_id"] and human["span_id"] == ""
    page = site.client.get("/sessions/s1?feedback=saved").text
    shown = page.split('id="session-scores"', 1)[1].split("</p>", 1)[0]
    assert 'data-score="resolved"' in shown and 'data-score="human"' in shown
    assert "Your verdict is saved" in page
    # the latest trace's page shows the person's verdict as the session's
    trace = site.client.get(f"/traces/{human['trace_id']}").text
    assert 'human = false (<a href="/sessions/s1">of the session</a>)' in trace
    # the quality page's lowest thumbs lead to the session, not to the trace it was given at
    lowest = site.client.get("/quality").text.split('id="quality-human-lowest"', 1)[1].split("</table>", 1)[0]
    assert '<a href="/sessions/s1">session s1</a>' in lowest
    assert [
        s["name"] for s in site.client.get(f"/api/v1/sessions/{quote(HOSTILE, safe='')}").json()["scores"]
    ] == ["human"]


def test_the_overviews_filters_reach_its_movers_and_the_triage_api(site: Site) -> None:
    every = site.client.get("/api/v1/triage?since=30m&baseline=30m").json()
    classify = site.client.get("/api/v1/triage?since=30m&baseline=30m&feature=classify").json()
    assert 0 < classify["window"]["requests"] < every["window"]["requests"]
    assert all("refund-chat" not in str(c) for c in classify["causes"] + classify["checks"])
    movers = site.client.get("/overview/movers?since=30m&feature=classify").text
    assert f"→ {money(classify['window']['cost_per_hour'])};" in movers
    assert site.client.get("/api/v1/triage?since=30m&nothing=1").status_code == 400  # no such field


def test_the_movers_say_where_calls_that_now_fail_come_from(site: Site) -> None:
    now = datetime.now(UTC)
    failing = [
        call(now - timedelta(minutes=9, seconds=-20 * n), feature="summarize", error="context_length")
        for n in range(12)
    ]
    write(site.state, failing)
    found = site.client.get("/api/v1/triage?since=10m&baseline=10m").json()["errors"]  # the movers' own
    first = found["causes"][0]
    assert "summarize" in (first["value"], first["filters"].get("feature")) and found["after_rate"] > 0.5
    movers = site.client.get("/overview/movers?since=10m").text
    listed = movers.split('id="error-causes"')[1].split("</ol>")[0]
    assert html.escape(first["evidence"], quote=False) in listed and "context_length (400) 12" in listed
    assert f'href="/traces/{first["example_trace_ids"][0]}"' in listed


def test_latency_by_model_and_input_length(site: Site) -> None:
    api = site.client.get("/api/v1/latency", params={"since": "24h", "group_by": "model"}).json()
    page = site.client.get("/latency").text
    rows = {r["group"]: r for r in cells(page, "latency-by-model")}
    for row in api["rows"]:
        assert rows[row["request_model"]]["duration_ms.p95"] == ms(row["duration_ms"]["p95"])
    assert "&lt;1k" in page.split('id="latency-by-input"', 1)[1]
    hourly = site.client.get("/api/v1/latency", params={"since": "24h", "bucket": "1h"}).json()
    assert hourly["bucket_seconds"] == 3600 and hourly["rows"]
    assert all(r["bucket"][13:] == ":00:00.000000000Z" and r["duration_ms"]["p50"] for r in hourly["rows"])
    assert sum(r["requests"] for r in hourly["rows"]) == sum(r["requests"] for r in api["rows"])


def test_rollups_without_distinct_counts_have_the_same_totals(site: Site) -> None:
    params = {"since": "24h", "group_by": "tenant_id"}
    counted = site.client.get("/api/v1/rollups", params=params).json()["rows"]
    plain = site.client.get("/api/v1/rollups", params={**params, "distinct": "false"}).json()["rows"]
    assert [(r["tenant_id"], r["requests"], r["cost_usd"]) for r in plain] == [
        (r["tenant_id"], r["requests"], r["cost_usd"]) for r in counted
    ]
    assert all(r["traces"] for r in counted) and not any(r["traces"] for r in plain)
    bad = site.client.get("/api/v1/rollups", params={**params, "distinct": "maybe"})
    assert bad.status_code == 400 and "distinct must be true or false" in bad.text


@pytest.mark.parametrize(
    "path", ["/traces", "/cost", "/cost?by=request_model", "/cost?by=user_id", "/sessions", "/latency"]
)
def test_stored_markup_is_shown_as_text(site: Site, path: str) -> None:
    page = site.client.get(path).text
    assert str(escape(HOSTILE)) in page  # the page shows it, as text
    assert "<script>window.__pwned" not in page and "<img src=x" not in page
    assert 'href="javascript:' not in page


def test_stored_markup_in_a_trace_is_text_everywhere_it_appears(site: Site) -> None:
    page = site.client.get(f"/traces/{site.hostile_trace}").text
    assert "<script>window.__pwned" not in page and "<img src=x" not in page
    assert page.count(str(escape(HOSTILE))) >= 4  # span name, model, attribute, conversation
    # Template syntax is not evaluated (not "49" anywhere: the trace's own id may hold it).
    assert "__pwned=3 {{7*7}} {% raw %}${7*7}" in page and "__pwned=3 49" not in page


def test_vendored_javascript_is_served_by_the_server(site: Site) -> None:
    for path in ("/static/vendor/htmx.min.js", "/static/vendor/uPlot.iife.min.js", "/static/app.js"):
        response = site.client.get(path)
        assert response.status_code == 200, f"{path} missing: `make install` builds it from the npm lockfile"


def test_keyed_servers_send_browsers_to_the_login_page(tmp_path) -> None:
    state = open_state(ServerConfig(data_dir=tmp_path / "data", fsync=False, require_key=True))
    state.store.create_project("acme", hash_key("tt_secret"))
    try:
        with TestClient(create_app(state)) as client:
            first = client.get("/cost?since=1h", follow_redirects=False)
            assert first.status_code == 303 and first.headers["location"] == "/login?next=/cost%3Fsince%3D1h"
            wrong = client.post("/login", data={"key": "tt_nope", "next": "/cost"}, follow_redirects=False)
            assert wrong.status_code == 401 and "unknown API key" in wrong.text
            assert "tt_key" not in wrong.cookies
            right = client.post("/login", data={"key": "tt_secret", "next": "/cost"}, follow_redirects=False)
            assert right.status_code == 303 and right.headers["location"] == "/cost"
            assert (
                "HttpOnly" in right.headers["set-cookie"] and "SameSite=strict" in right.headers["set-cookie"]
            )
            page = client.get("/cost")
            assert page.status_code == 200 and "project <b>acme</b>" in page.text
            away = client.post(
                "/login", data={"key": "tt_secret", "next": "//evil.example"}, follow_redirects=False
            )
            assert away.headers["location"] == "/"
            client.post("/logout")
            assert client.get("/", follow_redirects=False).status_code == 303
    finally:
        state.pipeline.close()
        state.store.close()


PAGE_BUDGETS = """
[[budgets]]
tenant_id = "acme"
usd_per_day = 0.05

[[budgets]]
feature = "*"
usd_per_day = 0.02
action = "warn"
"""


def _budget_row(page: str, budget: str, value: str | None = None) -> dict[str, str]:
    marker = f'data-budget="{escape(budget)}"' + (f' data-value="{escape(value)}"' if value else ">")
    row = page.split(marker, 1)[1].split("</tr>", 1)[0]
    fields = {k: html.unescape(v) for k, v in re.findall(r'data-field="([^"]+)">([^<]*)<', row)}
    refused = re.search(r'data-field="refused">(?:<a href="([^"]*)">)?([^<]*)<', row)
    fields["refused"] = refused[2]
    fields["refused_link"] = html.unescape(refused[1] or "")
    fields["meter"] = re.search(r'<meter [^>]*value="([^"]+)"', row)[1]
    return fields


def test_the_budgets_page_shows_each_budget_against_the_traced_spend(tmp_path, monkeypatch) -> None:
    budgets = tmp_path / "budgets.toml"
    budgets.write_text(PAGE_BUDGETS)
    state = open_state(ServerConfig(data_dir=tmp_path / "data", fsync=False, budgets_file=budgets))
    # usd_per_day counts from 00:00 UTC: read the budgets at yesterday's noon, not the clock, so
    # the planted hour lies in the day read whenever the test runs (at 00:0x it was yesterday's)
    now = (datetime.now(UTC) - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    for page in (budgets_api, budgets_ui):
        monkeypatch.setattr(page, "budget_usage", functools.partial(budget_usage, now=now.timestamp()))
    spans, _, _ = planted(now)
    write(state, [*spans, call(now, error="budget_exceeded")])  # a call a budget refused
    try:
        with TestClient(create_app(state)) as client:
            api = {b["name"]: b for b in client.get("/api/v1/budgets").json()["budgets"]}
            page = client.get("/budgets").text
            acme = api["tenant_id=acme/usd_per_day"]
            row = _budget_row(page, acme["name"])
            assert acme["used"] > 0 and acme["refused"] == 1
            assert row["used"] == money(acme["used"]) and row["calls"] == count(acme["calls"])
            assert float(row["meter"]) == pytest.approx(min(acme["share"], 1))
            assert row["refused"] == "1"
            refused = client.get(row["refused_link"]).text  # the link lists the refused call's trace
            assert row["refused_link"].startswith("/traces?") and "budget" in refused
            features = api["feature=*/usd_per_day"]
            assert {v["value"] for v in features["by_value"]} == {"refund-chat", "classify", HOSTILE}
            for value in features["by_value"]:
                shown = _budget_row(page, features["name"], value["value"])
                assert shown["used"] == money(value["used"])
            assert str(escape(HOSTILE)) in page and "<script>window.__pwned" not in page
    finally:
        state.pipeline.close()
        state.store.close()


def test_the_reconcile_page_shows_the_apis_rows_for_a_posted_export(site: Site) -> None:
    midnight = int(time.time()) // 86400 * 86400
    page = {
        "object": "page",
        "data": [
            {
                "object": "bucket",
                "start_time": midnight,
                "end_time": midnight + 86400,
                "results": [
                    {
                        "object": "organization.costs.result",
                        "amount": {"value": 0.5, "currency": "usd"},
                        "line_item": "gpt-4o-2024-08-06, input",
                    },
                    {
                        "object": "organization.costs.result",
                        "amount": {"value": 0.25, "currency": "usd"},
                        "line_item": "web search tool calls",
                    },
                ],
            }
        ],
    }
    export = json.dumps(page)
    api = site.client.post("/api/v1/reconcile", json={"provider": "openai", "export": export}).json()
    shown = site.client.post("/reconcile", data={"provider": "openai", "export": export})
    assert shown.status_code == 200, shown.text
    text = shown.text
    for row in api["rows"]:
        model = re.escape(str(escape(row["model"])))
        found = re.search(rf'<tr data-day="{row["day"]}" data-model="{model}"[^>]*>(.*?)</tr>', text, re.S)
        assert found, row["model"]
        assert money(row["traced_usd"]) in found[1] and money(row["billed_usd"]) in found[1]
        for reason in row["reasons"]:
            assert str(escape(reason)) in found[1]
    assert api["billed_usd"] == 0.75 and money(0.75) in text.split('id="reconcile-total"')[1]
    # the hostile model's row: its name is text
    assert "<script>window.__pwned" not in text and "&lt;script&gt;window.__pwned" in text

    refused = site.client.post("/reconcile", data={"provider": "openai", "export": "{not json"})
    assert refused.status_code == 400 and "line 1: not JSON" in refused.text
    assert "{not json" in refused.text  # the form keeps what was pasted


def test_the_quality_page_shows_each_score_by_version_and_model_with_its_lowest_calls(site: Site) -> None:
    empty = site.client.get("/quality").text
    assert "No numeric score in this range" in empty
    # An evaluator grades the planted calls: refund-chat (gpt-4o) well, classify (gpt-4o-mini) badly.
    calls = site.state.store.spans(
        SpanFilter("default", equals={"operation": ("chat",)}), ("trace_id", "span_id", "feature")
    ).to_pylist()
    graded = [c for c in calls if c["feature"] in ("refund-chat", "classify")]
    payload = [
        {
            "trace_id": c["trace_id"],
            "span_id": c["span_id"],
            "name": "groundedness",
            "value": 0.9 if c["feature"] == "refund-chat" else 0.2 + 0.01 * (n % 5),
            "comment": "supported" if c["feature"] == "refund-chat" else "a claim the context lacks",
        }
        for n, c in enumerate(graded)
    ]
    assert site.client.post("/api/v1/scores", json=payload).json()["accepted"] == len(graded)
    assert site.state.pipeline.writer.flush()
    page = site.client.get("/quality").text
    api = site.client.get("/api/v1/scores", params={"score_name": "groundedness", "group_by": "model"}).json()
    by_model = {r["group"]: r for r in cells(page, "quality-groundedness-by-request_model")}
    assert {m: float(r["mean"]) for m, r in by_model.items()} == {
        r["request_model"]: round(r["mean"], 2) for r in api["scores"]
    }
    assert float(by_model["gpt-4o-mini"]["mean"]) < 0.3 < 0.8 < float(by_model["gpt-4o"]["mean"])
    lowest = page.split('id="quality-groundedness-lowest"', 1)[1].split("</table>", 1)[0]
    first = re.search(
        r'data-trace-id="([0-9a-f]{32})".*?href="/traces/\1".*?data-field="value">([^<]*)<', lowest, re.S
    )
    assert first and first[2] == "0.20"  # the lowest first, one click from its trace
    assert "a claim the context lacks" in lowest and "supported" not in lowest.split("</tr>", 1)[0]
    # A filter narrows it: refund-chat alone has no low score.
    narrowed = site.client.get("/quality", params={"feature": "refund-chat"}).text
    assert [r["group"] for r in cells(narrowed, "quality-groundedness-by-request_model")] == ["gpt-4o"]


def test_a_person_judges_a_trace_from_its_page_and_the_quality_page_shows_who_agrees(site: Site) -> None:
    calls = site.state.store.spans(
        SpanFilter("default", equals={"operation": ("chat",)}), ("trace_id", "span_id", "feature")
    ).to_pylist()
    good = [c for c in calls if c["feature"] == "refund-chat"][:2]
    bad = [c for c in calls if c["feature"] == "classify"][:2]
    judged = [{**c, "value": 0.9} for c in good] + [{**c, "value": 0.1} for c in bad]
    payload = [
        {"trace_id": c["trace_id"], "span_id": c["span_id"], "name": "groundedness", "value": c["value"]}
        for c in judged
    ]
    assert site.client.post("/api/v1/scores", json=payload).json()["accepted"] == 4
    page = site.client.get(f"/traces/{good[0]['trace_id']}").text
    assert 'action="/traces/' in page and 'name="verdict" value="up"' in page

    def judge(call: dict, verdict: str, **form: str):
        return site.client.post(
            f"/traces/{call['trace_id']}/feedback", data={"verdict": verdict, **form}, follow_redirects=False
        )

    first = judge(bad[0], "up", label="fine", comment="looked right")
    assert (
        first.status_code == 303
        and first.headers["location"] == f"/traces/{bad[0]['trace_id']}?feedback=saved"
    )
    # A second verdict on the same trace replaces the first: one human score a trace.
    assert judge(bad[0], "down", label="wrong policy", comment="invents a voucher").status_code == 303
    assert judge(good[0], "up").status_code == 303
    assert judge(bad[1], "up").status_code == 303  # a person and the judge disagree here
    # Refused, nothing stored: another site's form, no verdict, a trace id that is none.
    forged = site.client.post(
        f"/traces/{good[1]['trace_id']}/feedback",
        data={"verdict": "down"},
        headers={"origin": "https://evil.example"},
    )
    assert forged.status_code == 403
    assert judge(good[1], "meh").status_code == 400
    assert site.client.post("/traces/nothex/feedback", data={"verdict": "up"}).status_code == 400
    assert site.state.pipeline.writer.flush()

    scores = site.client.get(f"/api/v1/traces/{bad[0]['trace_id']}").json()["scores"]
    human = {s["name"]: s for s in scores if s["source"] == "human"}
    assert human["human"]["value"] == 0.0 and human["human"]["comment"] == "invents a voucher"
    assert human["human_label"]["string_value"] == "wrong policy" and len(human) == 2
    untouched = site.client.get(f"/api/v1/traces/{good[1]['trace_id']}").json()["scores"]
    assert [s["source"] for s in untouched] == ["api"]
    assert "Your verdict is saved" in site.client.get(f"/traces/{bad[0]['trace_id']}?feedback=saved").text

    quality = site.client.get("/quality").text
    section = quality.split('id="score-groundedness"', 1)[1].split("</section>", 1)[0]
    assert "People agree on 2 of 3 traces they judged too (66.67%)" in section
    people = quality.split('id="score-human"', 1)[1].split("</section>", 1)[0]
    assert re.search(r'data-field="mean">mean 0.67<', people)  # two thumbs up of three
