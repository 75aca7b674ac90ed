"""Read many spellings of many concepts in one pass over a span's attributes.

A family declares, per canonical field, the attribute keys that may carry it (best first).
`extract` walks the span's attributes once (a span has ~10 attributes; the aliases number
~60), so the cost follows what the span has, not what the conventions could have.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class AttributeMap:
    """Attribute keys → canonical fields, with a rank per spelling (0 is best)."""

    def __init__(self, fields: Mapping[str, tuple[str, ...]], keep: frozenset[str] = frozenset()) -> None:
        self._slots: dict[str, tuple[str, int]] = {}
        for field, keys in fields.items():
            for rank, key in enumerate(keys):
                self._slots.setdefault(key, (field, rank))
        self._keys = frozenset(self._slots)
        # Keys read but left in `attributes` (their raw spelling is worth keeping).
        self._keep = keep

    def extract(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """{field: best value present}; consumed keys are removed from `attrs`."""
        # The keys this map reads that the span has, found in C: most spans have few or none.
        present = self._keys.intersection(attrs)
        if not present:
            return {}
        found: dict[str, tuple[int, Any]] = {}
        slots = self._slots
        for key in present:
            field, rank = slots[key]
            value = attrs[key]
            if value is not None and value != "":
                best = found.get(field)
                if best is None or rank < best[0]:
                    found[field] = (rank, value)
            if key not in self._keep:
                del attrs[key]
        return {field: value for field, (_, value) in found.items()}
