"""How many bytes of OTLP request bodies the HTTP receiver holds at once.

Requests are admitted while the bodies already being read, decoded or spooled stay under the
bound; past it a new export is answered 429 with Retry-After before its body is read, so many
senders at once cannot grow the server's memory without limit. A lone request is always
admitted (up to the body limit), so one large export is never refused for its size alone.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Admission:
    """Bytes held by requests in flight. Used from the event loop's thread only (no lock)."""

    limit_bytes: int
    held_bytes: int = 0
    peak_bytes: int = 0

    def admit(self, size: int, own: int = 0) -> bool:
        """Reserve `size` more bytes for a request already holding `own`; False (nothing
        reserved) when that would pass the bound while other requests hold bytes."""
        if self.held_bytes > own and self.held_bytes + size > self.limit_bytes:
            return False
        self.held_bytes += size
        self.peak_bytes = max(self.peak_bytes, self.held_bytes)
        return True

    def release(self, size: int) -> None:
        self.held_bytes -= size
