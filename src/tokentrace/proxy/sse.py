"""Server-sent events, split as they arrive: the gateway reads each event and passes it on whole."""

from __future__ import annotations

import orjson


class EventSplitter:
    """Feed it the stream's bytes; it returns the complete events (bytes, blank line included)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        data = self._buffer + chunk if self._buffer else chunk
        events = []
        start = 0
        while True:
            end = data.find(b"\n\n", start)
            crlf = data.find(b"\r\n\r\n", start)
            if crlf != -1 and (end == -1 or crlf < end):
                end, size = crlf, 4
            else:
                size = 2
            if end == -1:
                break
            events.append(data[start : end + size])
            start = end + size
        self._buffer = data[start:]
        return events

    def rest(self) -> bytes:
        """What came after the last complete event (a stream cut short)."""
        rest, self._buffer = self._buffer, b""
        return rest


def event_data(event: bytes) -> dict | None:
    """The JSON object in an event's data lines, or None ([DONE], comments, anything else)."""
    payload = b"".join(line[5:].lstrip(b" ") for line in event.splitlines() if line.startswith(b"data:"))
    if not payload.startswith(b"{"):
        return None
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None
