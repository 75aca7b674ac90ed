"""Server settings that several ingest nodes depend on."""

from __future__ import annotations

import socket
from pathlib import Path

from tokentrace.server.config import ServerConfig


def test_each_spool_names_its_node_unless_a_name_is_given(tmp_path: Path):
    one, two = ServerConfig(data_dir=tmp_path / "a"), ServerConfig(data_dir=tmp_path / "b")
    # Two nodes on one host keep their spool positions apart; a name survives moving the spool.
    assert one.node_name.startswith(f"{socket.gethostname()}:") and one.node_name != two.node_name
    assert one.node_name.endswith(str((tmp_path / "a" / "spool").resolve()))
    assert ServerConfig(data_dir=tmp_path / "a", node="ingest-3").node_name == "ingest-3"
    assert ServerConfig().background_jobs  # alerts and sampling run unless --ingest-only
