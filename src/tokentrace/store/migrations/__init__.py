"""Versioned schema migrations, one SQL file each, per engine (`NNNN_name.sql`)."""

from __future__ import annotations

from importlib import resources


def migrations(engine: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration for `engine`, in order."""
    found = []
    for entry in resources.files(__package__).joinpath(engine).iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text()))
    return sorted(found)
