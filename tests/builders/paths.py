"""The repository root: the working directory for test apps run as `python -m tests...`."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
