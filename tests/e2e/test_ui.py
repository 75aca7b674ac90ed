"""The UI in a real browser (Playwright driving Debian's Chromium, kept off the network) against a
real server filled by the simulator: each page, its filters, a trace read as a conversation, the
numbers compared with the API's, and stored markup that never runs. Screenshots go to a temporary
folder (a test run changes no tracked file); `make screenshots` writes the README's to docs/img/."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

import tokentrace.simulate
from tests.builders import otlp
from tests.builders.processes import ServerProcess, run_demo
from tokentrace.server.ui.formats import count, money, pct

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HOSTILE = (
    '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
    '<a href="javascript:window.__pwned=3">link</a> {{7*7}} ${7*7}'
)
# Headless, no sandbox (containers), and nothing outside 127.0.0.1: the UI must work offline.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]

DEMO_BUDGETS = Path(tokentrace.simulate.__file__).parent / "demo_budgets.toml"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make test does)"
    ),
]


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A server with the demo's traffic (an expensive-model incident) and one hostile trace."""
    server = ServerProcess(tmp_path_factory.mktemp("ui") / "data", "--budgets", str(DEMO_BUDGETS)).start()
    run_demo(server.url, "expensive-model")
    trace = otlp.new_trace_id()
    content = json.dumps([{"role": "user", "parts": [{"type": "text", "content": HOSTILE}]}])
    hostile = otlp.chat(trace, model=HOSTILE, input_tokens=10, output_tokens=2)
    hostile["name"] = HOSTILE
    hostile["attributes"] |= {
        "gen_ai.input.messages": content,
        "user.id": HOSTILE,
        "session.id": HOSTILE,
        "tokentrace.feature": HOSTILE,
        "app.link": "javascript:window.__pwned=4",
    }
    assert server.post_traces(otlp.protobuf([hostile])).status_code == 200
    spans = server.get("/api/v1/stats")["spans"]
    server.wait_for_spans(spans)
    yield server, trace
    server.stop()


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
    page.problems = problems
    yield page
    context.close()
    assert not problems, problems


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where screenshots go: TOKENTRACE_SCREENSHOTS (`make screenshots`: docs/img), else a temp folder."""
    chosen = os.environ.get("TOKENTRACE_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shoot(page, shots: Path, name: str) -> None:
    path = shots / f"{name}.png"
    page.screenshot(path=str(path))
    assert path.stat().st_size > 0


def kpi(page, name: str) -> str:
    return page.locator(f"#kpi-{name} .value").inner_text()


def test_the_overview_shows_the_apis_numbers_and_draws_its_charts(filled, page, shots) -> None:
    server, _ = filled
    # 3h holds the whole demo (70 minutes): a window that cut through it would move between the
    # page and the API call, and one of them would count a request the other lost.
    page.goto(f"{server.url}/?since=3h")
    api = server.get("/api/v1/overview", since="3h")["totals"]
    assert kpi(page, "spend") == money(api["cost_usd"])
    assert kpi(page, "requests") == count(api["requests"])
    assert kpi(page, "error-rate") == pct(api["error_rate"])
    assert page.locator(".chart .uplot").count() == 7  # uPlot, served by the server, drew each
    page.locator("#cost-causes").wait_for()  # triage's movers, loaded by htmx after the page
    shoot(page, shots, "overview")
    charts = "window.tokentraceCharts"
    # no failed call: the error-rate axis runs to 1%, not uPlot's ±20 (2000%); values keep their scale
    assert page.evaluate(f"{charts}.yRange('%', 0, 0)") == [0, 0.01]
    assert page.evaluate(f"{charts}.yRange('%', null, null)") == [0, 0.01]
    assert page.evaluate(f"{charts}.yRange('ms', 120, 900)") == [0, pytest.approx(990)]
    # a priced call never reads as free, on the chart as on the page
    assert page.evaluate(f"{charts}.format('$', 0.00012345)") == money(0.00012345) == "$0.00012"


def test_the_cost_explorer_groups_sorts_and_drills_down(filled, page, shots) -> None:
    server, _ = filled
    page.goto(f"{server.url}/cost?since=3h")
    page.select_option("select[name=group_by]", "request_model")
    page.click("form.filters button")
    page.wait_for_url(re.compile(r"group_by=request_model"))
    api = server.get("/api/v1/rollups", since="3h", group_by="model")["rows"]
    want = {r["request_model"]: money(r["cost_usd"]) for r in api}
    rows = page.locator("#cost-table tbody tr")
    shown = {
        rows.nth(i).locator("td").first.inner_text(): rows.nth(i)
        .locator("[data-field=cost_usd]")
        .inner_text()
        for i in range(rows.count())
    }
    assert shown == {("(none)" if k is None else k): v for k, v in want.items()}
    assert page.locator(".chart .uplot").count() == 1
    page.click("#cost-table thead >> text=LLM calls")
    page.wait_for_url(re.compile(r"sort=requests"))
    calls = [
        int(t.replace(",", "")) for t in page.locator("#cost-table [data-field=requests]").all_inner_texts()
    ]
    assert calls == sorted(calls, reverse=True)
    shoot(page, shots, "cost")
    costliest = max((r for r in api if r["request_model"]), key=lambda r: r["cost_usd"])["request_model"]
    page.click(f"#cost-table a.drill >> text={costliest}")
    page.wait_for_url(re.compile(r"request_model="))
    assert page.locator(".active-filters").inner_text().startswith("Filtered to")


def test_traces_filter_open_and_read_as_a_conversation(filled, page, shots) -> None:
    server, _ = filled
    page.goto(f"{server.url}/traces?since=3h")
    assert page.locator("#trace-table tbody tr").count() == 50
    costs = sorted(t["cost_usd"] or 0 for t in server.get("/api/v1/traces", since="3h", limit=1000)["traces"])
    threshold = f"{costs[len(costs) // 2]:.6f}"  # the median trace's cost: about half the traces pass
    page.fill("input[name=min_cost]", threshold)
    page.click("#trace-filters button")  # htmx swaps the results and pushes the URL
    page.wait_for_url(f"{server.url}/traces?since=3h&min_cost={threshold}")  # empty inputs left out
    api = server.get("/api/v1/traces", since="3h", min_cost=threshold, limit=50)["traces"]
    ids = page.locator("#trace-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.traceId)")
    assert ids == [t["trace_id"] for t in api] and ids
    shoot(page, shots, "traces")
    page.click(f"tr[data-trace-id='{ids[0]}'] a")
    page.wait_for_url(re.compile(rf"/traces/{ids[0]}"))
    tree = server.get(f"/api/v1/traces/{ids[0]}")
    assert kpi(page, "cost") == money(tree["totals"]["cost_usd"])
    llm = page.locator("#waterfall tr.kind-llm a", has_text="chat ").first
    llm.click()  # the span panel comes through htmx, the URL names the span
    page.wait_for_url(re.compile(r"span="))
    page.locator("#span-detail .conversation .message.role-user").first.wait_for()
    assert page.locator("#span-detail .message.output").count() >= 1
    shoot(page, shots, "trace")


def test_sessions_latency_alerts_and_budgets(filled, page, shots) -> None:
    server, _ = filled
    page.goto(f"{server.url}/sessions?since=3h")
    first = page.locator("#session-table tbody tr a").first
    session = first.inner_text()
    shoot(page, shots, "sessions")
    first.click()
    api = server.get(f"/api/v1/sessions/{session}")
    assert kpi(page, "cost") == money(api["totals"]["cost_usd"])
    assert page.locator("#session-traces li").count() == len(api["traces"])
    page.goto(f"{server.url}/latency?since=3h")
    assert page.locator("#latency-by-model tbody tr").count() >= 2
    assert page.locator(".chart .uplot").count() == 1
    shoot(page, shots, "latency")
    page.goto(f"{server.url}/alerts")
    assert page.locator("h1").inner_text() == "Alerts"
    page.goto(f"{server.url}/budgets")
    api = server.get("/api/v1/budgets")["budgets"]
    rows = page.locator("#budget-table tbody tr")
    assert rows.count() == len(api) + sum(len(b["by_value"] or []) for b in api)
    tenants = next(b for b in api if b["name"] == "tenant-daily")
    top = tenants["by_value"][0]
    shown = page.locator(f'tr[data-budget="tenant-daily"][data-value="{top["value"]}"] [data-field="used"]')
    assert top["used"] > 0 and shown.inner_text() == money(top["used"])
    shoot(page, shots, "budgets")


@pytest.mark.parametrize(
    "path", ["/traces?since=3h", "/cost?since=3h&by=user_id", "/sessions?since=3h", "/latency?since=3h"]
)
def test_stored_markup_never_runs(filled, page, path) -> None:
    server, _ = filled
    page.goto(f"{server.url}{path}")
    page.wait_for_load_state("networkidle")
    assert HOSTILE in page.inner_text("main")  # shown, as text
    assert page.evaluate("window.__pwned") is None
    assert page.locator("main img").count() == 0
    assert page.locator("main script:not(.chart-data)").count() == 0
    assert page.locator("main a[href^='javascript']").count() == 0


def test_a_hostile_trace_is_read_as_text(filled, page) -> None:
    server, trace = filled
    page.goto(f"{server.url}/traces/{trace}")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("main img, main a[href^='javascript']").count() == 0
    assert HOSTILE in page.locator("#span-detail h2").inner_text()
    assert HOSTILE in page.locator("#span-detail .conversation").inner_text()
    assert "javascript:window.__pwned=4" in page.locator("#span-detail table.attributes").first.inner_text()


def test_reconcile_reads_a_chosen_export_file_and_shows_the_gaps(filled, page, shots, tmp_path) -> None:
    server, _ = filled
    midnight = int(time.time()) // 86400 * 86400
    line = {"object": "organization.costs.result", "amount": {"value": 12.5, "currency": "usd"}}
    bucket = {"object": "bucket", "start_time": midnight, "end_time": midnight + 86400}
    bill = tmp_path / "costs.jsonl"  # a page per line, as paging through the Costs API saves it
    bill.write_text(
        json.dumps({"object": "page", "data": [bucket | {"results": [line | {"line_item": "o3, output"}]}]})
        + "\n"
        + json.dumps({"object": "page", "data": []})
    )
    page.goto(f"{server.url}/reconcile")
    page.set_input_files("#export-file", str(bill))
    # The file is read into the form by app.js. Waited for with a locator assertion: a
    # wait_for_function string that has to poll is eval in the page, which its CSP refuses.
    expect(page.locator("#export-text")).not_to_have_value("", timeout=10_000)
    page.locator("#reconcile-form button[type=submit]").click()
    page.locator("#reconcile-table").wait_for()
    o3 = page.locator('#reconcile-table tr[data-model="o3"]')
    assert "$12.50" in o3.inner_text() and "billed but never traced" in o3.inner_text()
    assert "billed $12.50" in page.locator("#reconcile-total").inner_text()
    shoot(page, shots, "reconcile")


def test_the_quality_page_charts_scores_and_opens_the_lowest_scored_trace(filled, page) -> None:
    server, hostile = filled
    traces = [t["trace_id"] for t in server.get("/api/v1/traces", since="3h", limit=8)["traces"]]
    scores = [
        {"trace_id": t, "name": "groundedness", "value": round(0.3 + 0.1 * n, 2), "comment": "fine"}
        for n, t in enumerate(t for t in traces if t != hostile)
    ]
    # The lowest score is on the hostile trace, with markup in its explanation and label.
    scores.append({"trace_id": hostile, "name": "groundedness", "value": 0.05, "comment": HOSTILE})
    with server.client() as client:
        assert client.post("/api/v1/scores", json=scores).json()["accepted"] == len(scores)
    deadline = time.monotonic() + 20
    while not server.get("/api/v1/scores", since="3h", score_name="groundedness")["scores"]:
        assert time.monotonic() < deadline, "the scores were not stored"
        time.sleep(0.2)
    page.goto(f"{server.url}/quality?since=3h")
    assert page.locator(".chart .uplot").count() == 1
    lowest = page.locator("#quality-groundedness-lowest tbody tr")
    expect(lowest.first).to_have_attribute("data-trace-id", hostile)
    assert HOSTILE in lowest.first.inner_text()  # shown, as text
    assert page.evaluate("window.__pwned") is None
    assert page.locator("main img, main a[href^='javascript']").count() == 0
    lowest.first.locator("a").click()
    expect(page).to_have_url(re.compile(f"/traces/{hostile}$"))
