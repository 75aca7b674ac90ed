"""The CLI against a running server: cost, traces, export, reprice, projects."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time

import click
import orjson
import pandas
import polars
import pyarrow.parquet as pq
import pytest

from tests.builders.cli import cli
from tests.builders.otlp import chat, new_trace_id, protobuf, span
from tests.builders.processes import free_port
from tokentrace.canonical import FIELD_NAMES
from tokentrace.cli import main


def _fill(server) -> list[str]:
    trace_ids = []
    spans = []
    for tenant, model, tokens in [
        ("acme", "gpt-4o", 1000),
        ("acme", "gpt-4o-mini", 2000),
        ("globex", "gpt-4o", 500),
    ]:
        trace_id = new_trace_id()
        trace_ids.append(trace_id)
        root = span(trace_id, name="request", attributes={"user.id": f"user-{tenant}"})
        llm = chat(trace_id, parent=root["span_id"], model=model, input_tokens=tokens, output_tokens=10)
        llm["attributes"]["tenant.id"] = tenant
        spans += [root, llm]
    assert server.post_traces(protobuf(spans)).status_code == 200
    server.wait_for_spans(len(spans))
    return trace_ids


def test_cost_and_traces_tables(server):
    trace_ids = _fill(server)
    out = cli("cost", "--by", "tenant_id,model", "--since", "1h", server=server).stdout
    assert "acme" in out and "globex" in out and "gpt-4o-mini" in out and "Total: $" in out
    # the root spans (no tenant, no LLM call) make a group of no requests and no cost: not listed
    assert "—" not in out.split("Total")[0]
    out = cli("traces", "--since", "1h", "--user", "user-globex", server=server).stdout
    assert trace_ids[2] in out and trace_ids[0] not in out


def _in_terminal(*args: str, columns: int = 100) -> str:
    """The CLI's output in a terminal `columns` wide (a pseudo-terminal), as a person sees it."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal of that width, then the CLI
        fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        os.execve(sys.executable, [sys.executable, "-m", "tokentrace.cli", *args], env)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    return re.sub(r"\x1b\[[0-9;]*m", "", out.decode(errors="replace"))


def test_trace_ids_are_whole_in_a_narrow_terminal_and_scripts_get_json(server):
    trace_ids = _fill(server)
    shown = _in_terminal("traces", "--since", "1h", "--server", server.url)
    assert all(t in shown for t in trace_ids), shown
    page = json.loads(cli("traces", "--since", "1h", "--json", server=server).stdout)
    assert sorted(t["trace_id"] for t in page["traces"]) == sorted(trace_ids)
    cost = json.loads(cli("cost", "--by", "tenant_id", "--since", "1h", "--json", server=server).stdout)
    # the API's answer as it is: the root spans' group (no tenant) is there, with no requests
    assert {r["tenant_id"]: (r["requests"], r["input_tokens"]) for r in cost["rows"]} == {
        "acme": (2, 3000),
        "globex": (1, 500),
        None: (0, 0),
    }


def test_sessions_list_in_a_table_and_as_json(server):
    trace_id = new_trace_id()
    root = span(trace_id, name="turn", attributes={"session.id": "conversation-" + "9" * 40, "user.id": "u7"})
    llm = chat(trace_id, parent=root["span_id"], model="gpt-4o", input_tokens=700, output_tokens=10)
    assert server.post_traces(protobuf([root, llm])).status_code == 200
    server.wait_for_spans(2)
    page = json.loads(cli("sessions", "--since", "1h", "--json", server=server).stdout)
    [found] = [s for s in page["sessions"] if s["session_id"].startswith("conversation-")]
    assert (found["user_id"], found["traces"], found["llm_calls"], found["total_tokens"]) == ("u7", 1, 1, 710)
    shown = _in_terminal("sessions", "--since", "1h", "--server", server.url)
    assert found["session_id"] in shown and "u7" in shown  # the id whole, in a narrow terminal too


def test_simulating_sampling_without_a_policy_says_how_to_give_one(server):
    # the shared server runs without --sampling: nothing to simulate but what the command is given
    result = cli("sampling", "simulate", "--since", "7d", server=server, check=False)
    assert result.returncode != 0 and "--policy FILE" in result.stderr and "Traceback" not in result.stderr


def test_export_jsonl_and_parquet_use_canonical_names(server, tmp_path):
    _fill(server)
    jsonl = tmp_path / "spans.jsonl"
    cli("export", "--format", "jsonl", "--since", "7d", "-o", str(jsonl), server=server)
    rows = [orjson.loads(line) for line in jsonl.read_bytes().splitlines()]
    assert len(rows) == 6 and list(rows[0]) == list(FIELD_NAMES)
    assert rows[0]["start_time"].endswith("Z") and isinstance(rows[0]["attributes"], dict)

    parquet = tmp_path / "spans.parquet"
    cli("export", "--format", "parquet", "-o", str(parquet), server=server)
    table = pq.read_table(parquet)
    assert table.num_rows == 6 and table.schema.names == list(FIELD_NAMES)
    assert str(table.schema.field("start_time").type) == "timestamp[ns, tz=UTC]"
    assert sum(v or 0 for v in table.column("input_tokens").to_pylist()) == 3500

    # The file loads as it is in the two dataframe libraries people use, with the same names.
    frame = pandas.read_parquet(parquet)
    assert list(frame.columns) == list(FIELD_NAMES) and frame["input_tokens"].sum() == 3500
    assert str(frame["start_time"].dtype) == "datetime64[ns, UTC]"
    polar = polars.read_parquet(parquet)
    assert polar.columns == list(FIELD_NAMES) and polar["input_tokens"].sum() == 3500
    assert polar.schema["start_time"] == polars.Datetime("ns", "UTC")
    assert polar.filter(polars.col("operation") == "chat").height == frame[frame.operation == "chat"].shape[0]


def test_reprice_applies_a_new_override_and_reports_the_difference(start_server, tmp_path):
    prices = tmp_path / "prices.toml"
    prices.write_text("# no overrides yet\n")
    srv = start_server("--prices", str(prices))
    trace_id = new_trace_id()
    srv.post_traces(
        protobuf(
            [
                chat(
                    trace_id,
                    model="acme-llama-70b",
                    provider="vllm",
                    input_tokens=2_000_000,
                    output_tokens=1_000_000,
                )
            ]
        )
    )
    assert srv.wait_for_spans(1)["unpriced_spans"] == 1

    prices.write_text('[[models]]\nmodel = "acme-llama-*"\ninput_mtok = 0.5\noutput_mtok = 1.5\n')
    out = cli("reprice", "--since", "30d", server=srv).stdout
    assert "+$2.50" in out  # 2M at $0.5 + 1M at $1.5
    stats = srv.get("/api/v1/stats")
    assert stats["unpriced_spans"] == 0 and stats["cost_usd"] == pytest.approx(2.5)
    [llm] = srv.get(f"/api/v1/traces/{trace_id}")["roots"]
    assert llm["attributes"]["tokentrace.price.source"].startswith("overrides prices.toml@")

    again = srv.get("/api/v1/stats")
    with srv.client() as c:
        report = c.post("/api/v1/reprice", params={"since": "30d"}).json()
    assert report["spans_changed"] == 0 and report["difference_usd"] == 0  # idempotent
    assert srv.get("/api/v1/stats") == again

    prices.write_text("[[models]]\nbroken")
    with srv.client() as c:
        bad = c.post("/api/v1/reprice")
    assert bad.status_code == 400 and "prices file" in bad.json()["error"]


def test_cli_errors_are_clear(tmp_path):
    result = cli("traces", "--server", "http://127.0.0.1:9", check=False)
    assert result.returncode == 1 and "cannot reach tokentrace" in result.stderr


def _serve(data_dir, port: int, grpc_port: int, *options: str) -> subprocess.CompletedProcess:
    command = ["serve", "--data-dir", str(data_dir), "--port", str(port), "--grpc-port", str(grpc_port)]
    command += options
    return subprocess.run(
        [sys.executable, "-m", "tokentrace.cli", *command], capture_output=True, text=True, timeout=60
    )


def _one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_a_taken_port_or_a_data_dir_in_use_stops_serve_with_one_line(tmp_path, server):
    # the HTTP port of a running server: stopped before the data dir is touched
    line = _one_line(_serve(tmp_path / "a", server.port, free_port()))
    assert f"127.0.0.1:{server.port} (HTTP) is taken" in line and "--port" in line
    assert not (tmp_path / "a").exists()
    # its gRPC port: grpcio would share it (SO_REUSEPORT) and split the exports between two stores
    line = _one_line(_serve(tmp_path / "b", free_port(), server.grpc_port))
    assert f"127.0.0.1:{server.grpc_port} (OTLP/gRPC) is taken" in line and "--grpc-port" in line
    # its data dir: DuckDB lets one process hold the file
    line = _one_line(_serve(server.data_dir, free_port(), free_port()))
    assert f"the data dir {server.data_dir} is in use by process {server.proc.pid}" in line
    assert server.get("/healthz")["status"] == "ok"  # the running server carries on


@pytest.mark.parametrize("size", ["nan", "inf", "0"])
def test_a_size_that_is_no_number_of_mb_stops_serve_naming_the_option(tmp_path, size):
    result = _serve(tmp_path / "data", free_port(), free_port(), "--max-body-mb", size)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert (
        "--max-body-mb" in result.stderr
        and f"must be a positive number of MB, not {float(size)}" in result.stderr
    )
    assert not (tmp_path / "data").exists()


def test_a_prices_file_with_an_unknown_table_stops_serve_with_its_file_and_line(tmp_path):
    prices = tmp_path / "prices.toml"
    prices.write_text('[[models]]\nmodel = "llama-*"\ninput_mtok = 0.5\noutput_mtok = 1\n\n[[deploymnets]]\n')
    line = _one_line(_serve(tmp_path / "data", free_port(), free_port(), "--prices", str(prices)))
    assert "prices.toml" in line and "line 6: unknown table 'deploymnets'" in line


def test_serve_loads_only_its_own_command_and_the_cli_still_lists_every_one():
    """`tokentrace serve` imports its command's module alone: not the client commands' rich
    tables and HTTP client, nor what only a request needs (the OpenAPI document's YAML parser,
    the pages' templates, the /metrics exposition, Parquet export), nor gRPC until it serves it
    (`--grpc-port 0` serves OTLP over HTTP only): idle memory."""
    code = """
import sys
from tokentrace.cli import COMMANDS, main
serve = main.get_command(None, "serve")
import tokentrace.server.app, tokentrace.server.runner
unused = ("rich", "httpx", "yaml", "jinja2", "prometheus_client", "pandas", "tokentrace.cli.cost",
          "tokentrace.client", "pyarrow.parquet", "grpc", "tokentrace.server.grpc")
heavy = [m for m in unused if m in sys.modules]
assert not heavy, heavy
assert serve.name == "serve" and main.get_command(None, "no-such-command") is None
print(" ".join(COMMANDS))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "tokentrace.cli", "--help"], capture_output=True, text=True
    )
    for name in done.stdout.split():
        assert f"  {name} " in listed.stdout
        assert main.get_command(click.Context(main), name).name == name


def test_reconcile_shows_the_gaps_of_a_bill_and_refuses_a_file_it_cannot_read(start_server, tmp_path):
    srv = start_server()
    srv.post_traces(protobuf([chat(new_trace_id(), input_tokens=1000, output_tokens=100) for _ in range(3)]))
    srv.wait_for_spans(3)
    midnight = int(time.time()) // 86400 * 86400
    day = time.strftime("%Y-%m-%d", time.gmtime(midnight))
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
                        "amount": {"value": v, "currency": "usd"},
                        "line_item": item,
                        "project_id": None,
                    }
                    for item, v in (
                        ("gpt-4o-2024-08-06, input", 0.0075),
                        ("gpt-4o-2024-08-06, output", 0.003),
                        ("o3-2025-04-16, output", 1.25),
                    )
                ],
            }
        ],
        "has_more": False,
        "next_page": None,
    }
    bill = tmp_path / "costs.json"
    bill.write_text(json.dumps(page))
    command = ("reconcile", "--provider", "openai", "--costs", str(bill))
    out = cli(*command, server=srv).stdout
    assert "o3" in out and "billed but never traced" in out and "1 of 2 rows match" in out
    assert "gpt-4o" not in out  # it matches: listed with --all
    assert "gpt-4o" in cli(*command, "--all", server=srv).stdout
    found = json.loads(cli(*command, "--json", server=srv).stdout)
    rows = {r["model"]: r for r in found["rows"]}
    assert rows["gpt-4o"]["day"] == day and rows["gpt-4o"]["matches"]
    assert rows["gpt-4o"]["traced_usd"] == pytest.approx(3 * (1000 * 2.5 + 100 * 10) / 1e6)
    assert found["gap_usd"] == pytest.approx(1.25)

    bill.write_text('{"data": [{"start_time": "soon", "results": []}]}')
    refused = cli(*command, server=srv, check=False)
    assert refused.returncode != 0 and "'soon' is not a time" in refused.stderr
