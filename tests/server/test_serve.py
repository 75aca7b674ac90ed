"""`serve` freezes what it set up before it answers and collects seldom: a dashboard read makes
thousands of short-lived dicts, the cycle collector ran several times inside each, and every few
hundred reads it walked the whole heap, the modules imported included."""

from __future__ import annotations

import gc
import signal

import uvicorn

from tokentrace.cycle_collector import THRESHOLD
from tokentrace.server.config import ServerConfig
from tokentrace.server.runner import serve


def test_the_server_never_walks_what_it_set_up_again(tmp_path, monkeypatch):
    seen = {}

    def run(self, sockets=None):  # in place of answering requests: what the server runs with
        seen["threshold"] = gc.get_threshold()
        seen["frozen"] = gc.get_freeze_count()

    monkeypatch.setattr(uvicorn.Server, "run", run)
    threshold, on_sigterm = gc.get_threshold(), signal.getsignal(signal.SIGTERM)
    assert gc.get_freeze_count() == 0
    try:
        serve(
            ServerConfig(
                data_dir=tmp_path / "data", port=0, grpc_port=None, background_jobs=False, fsync=False
            )
        )
    finally:  # this test process's collector and SIGTERM handler as they were
        gc.unfreeze()
        gc.set_threshold(*threshold)
        signal.signal(signal.SIGTERM, on_sigterm)
    assert seen["frozen"] > 10_000  # the modules imported and the state opened
    assert seen["threshold"][0] == THRESHOLD
