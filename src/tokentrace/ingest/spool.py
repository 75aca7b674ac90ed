"""The durable spool: acked means fsynced to disk.

An append-only log of records, each `MAGIC | length | crc32 | payload`, in numbered
segment files. Appends from any thread are group-committed: one writer thread writes
every waiting record and fsyncs once, then releases all of them. A crash can tear only
the tail; `replay` detects a torn or corrupt record by its CRC, logs it, skips the rest
of that segment, and later appends go to a fresh segment.
"""

from __future__ import annotations

import logging
import os
import queue
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MAGIC = b"TTS1"
_HEADER = struct.Struct("<4sII")  # magic, payload length, crc32
SEGMENT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, order=True)
class Position:
    """A point in the spool: everything before (segment, offset) is covered."""

    segment: int
    offset: int


def _segment_path(directory: Path, number: int) -> Path:
    return directory / f"{number:012d}.spool"


def _segments(directory: Path) -> list[int]:
    return sorted(int(p.stem) for p in directory.glob("*.spool") if p.stem.isdigit())


def read_segment(path: Path, start: int = 0) -> Iterator[tuple[bytes, int]]:
    """Yield (payload, end offset) of each intact record from `start`; stop at a torn one."""
    with path.open("rb") as f:
        f.seek(start)
        offset = start
        while True:
            header = f.read(_HEADER.size)
            if not header:
                return
            if len(header) < _HEADER.size:
                log.warning("spool %s: torn record header at offset %d, skipped", path.name, offset)
                return
            magic, length, crc = _HEADER.unpack(header)
            payload = f.read(length) if magic == MAGIC else b""
            if magic != MAGIC or len(payload) != length or zlib.crc32(payload) != crc:
                log.warning("spool %s: torn or corrupt record at offset %d, skipped", path.name, offset)
                return
            offset += _HEADER.size + length
            yield payload, offset


class Spool:
    """Group-committing, fsyncing append log. `append` returns a Future of the record's end."""

    def __init__(
        self,
        directory: Path,
        on_durable: Callable[[object, Position], None],
        fsync: bool = True,
    ) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._on_durable = on_durable
        self._fsync = fsync
        self._queue: queue.SimpleQueue[tuple[bytes, object, Future] | None] = queue.SimpleQueue()
        existing = _segments(directory)
        # Never append after a possibly torn tail: always start a new segment.
        self._segment = (existing[-1] + 1) if existing else 1
        self._file = _segment_path(directory, self._segment).open("ab")
        self._offset = 0
        self._thread = threading.Thread(target=self._run, name="tokentrace-spool", daemon=True)
        self._thread.start()

    def replay(self, after: Position | None) -> Iterator[tuple[bytes, Position]]:
        """Records written before this process started and not yet covered by `after`."""
        for number in _segments(self.directory):
            if number >= self._segment:
                break
            if after is not None and number < after.segment:
                continue
            start = after.offset if after is not None and number == after.segment else 0
            for payload, end in read_segment(_segment_path(self.directory, number), start):
                yield payload, Position(number, end)

    def append(self, payload: bytes, item: object = None) -> Future:
        """Queue a record; the Future resolves to its Position once it is fsynced.

        `item` (the decoded form of `payload`) is handed to `on_durable` after the fsync,
        so the consumer never re-reads what was just written.
        """
        future: Future = Future()
        self._queue.put((payload, item, future))
        return future

    def release(self, upto: Position) -> None:
        """Delete segments wholly before `upto` (their records are in the store)."""
        for number in _segments(self.directory):
            if number >= upto.segment or number == self._segment:
                break
            _segment_path(self.directory, number).unlink(missing_ok=True)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)
        self._file.close()

    def _roll(self) -> None:
        self._file.close()
        self._segment += 1
        self._file = _segment_path(self.directory, self._segment).open("ab")
        self._offset = 0

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            group = []
            while item is not None:
                group.append(item)
                if len(group) >= 1024:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            stop = item is None
            if not group:
                continue
            done = []
            try:
                for payload, item, future in group:
                    if self._offset >= SEGMENT_BYTES:
                        self._flush()
                        self._roll()
                    self._file.write(_HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)))
                    self._file.write(payload)
                    self._offset += _HEADER.size + len(payload)
                    done.append((item, future, Position(self._segment, self._offset)))
                self._flush()
            except OSError as exc:  # disk full, I/O error: nothing in this group is acked
                log.error("spool write failed: %s", exc)
                for _, _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                self._roll_after_failure()
                continue
            for item, future, position in done:
                self._on_durable(item, position)
                future.set_result(position)

    def _flush(self) -> None:
        self._file.flush()
        if self._fsync:
            os.fsync(self._file.fileno())

    def _roll_after_failure(self) -> None:
        try:
            self._roll()
        except OSError as exc:
            log.error("spool cannot open a new segment: %s", exc)
