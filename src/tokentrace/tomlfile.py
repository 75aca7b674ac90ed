"""Where an entry of a TOML file is: the line a message about it names (tomllib says where a
syntax error is, not where a well-formed but wrong entry is)."""

from __future__ import annotations

import re


def line_of(text: str, table: str, index: int = 0, key: str | None = None) -> str:
    """`, line N` of a table's `index`-th entry (or of its `key` there) in the TOML text; empty
    when it cannot be told (an inline table, say)."""
    lines = text.splitlines()
    header = re.compile(rf"^\s*\[\[?\s*\"?{re.escape(table)}\"?\s*\]\]?\s*(#.*)?$")
    assignment = re.compile(rf"^\s*\"?{re.escape(table)}\"?\s*=")
    starts = [n for n, line in enumerate(lines) if header.match(line) or assignment.match(line)]
    if len(starts) <= index:
        return ""
    at = starts[index]
    if key is not None:
        named = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
        for n in range(at + 1, len(lines)):
            if lines[n].lstrip().startswith("["):
                break
            if named.match(lines[n]):
                return f", line {n + 1}"
    return f", line {at + 1}"
