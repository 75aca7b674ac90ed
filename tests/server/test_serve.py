"""`serve` sets the cycle collector for a long-running process before it answers: dashboard
reads make thousands of short-lived dicts, and at Python's default threshold each read paid for
collections walking them and, every few hundred reads, the whole heap."""

from __future__ import annotations

import gc

import uvicorn

from tokentrace.cycle_collector import THRESHOLD
from tokentrace.server.config import ServerConfig
from tokentrace.server.runner import serve


def test_the_server_collects_cycles_seldom_and_never_walks_what_it_set_up(tmp_path, monkeypatch):
    seen = {}

    def run(self, sockets=None):  # in place of answering requests: what the server runs with
        seen["threshold"] = gc.get_threshold()[0]
        seen["frozen"] = gc.get_freeze_count()

    monkeypatch.setattr(uvicorn.Server, "run", run)
    before = gc.get_threshold()
    assert before[0] != THRESHOLD
    try:
        serve(
            ServerConfig(
                data_dir=tmp_path / "data", port=0, grpc_port=None, background_jobs=False, fsync=False
            )
        )
    finally:  # this test process's own collector as it was
        gc.unfreeze()
        gc.set_threshold(*before)
    assert seen["threshold"] == THRESHOLD
    assert seen["frozen"] > 10_000  # the modules imported and the state opened
