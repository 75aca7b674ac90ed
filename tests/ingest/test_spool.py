"""The spool: group-committed appends, replay after a position, torn tails skipped with a log line."""

from __future__ import annotations

import logging
import threading

from tokentrace.ingest.spool import Position, Spool


def _collect():
    seen: list[tuple[object, Position]] = []
    lock = threading.Lock()

    def on_durable(item, position):
        with lock:
            seen.append((item, position))

    return seen, on_durable


def test_appends_resolve_in_order_and_replay_after_restart(tmp_path):
    seen, on_durable = _collect()
    spool = Spool(tmp_path, on_durable)
    positions = [spool.append(f"record-{i}".encode(), i).result(5) for i in range(5)]
    spool.close()
    assert positions == sorted(positions) and [item for item, _ in seen] == list(range(5))

    reopened = Spool(tmp_path, lambda *_: None)
    assert [p for p, _ in reopened.replay(None)] == [f"record-{i}".encode() for i in range(5)]
    assert [p for p, _ in reopened.replay(positions[2])] == [b"record-3", b"record-4"]
    reopened.close()


def test_a_torn_tail_is_skipped_with_a_log_line(tmp_path, caplog):
    spool = Spool(tmp_path, lambda *_: None)
    for i in range(3):
        spool.append(b"x" * 100 + bytes([i])).result(5)
    spool.close()
    [segment] = list(tmp_path.glob("*.spool"))
    data = segment.read_bytes()
    segment.write_bytes(data[:-30])  # a crash mid-write of the last record

    with caplog.at_level(logging.WARNING):
        reopened = Spool(tmp_path, lambda *_: None)
        payloads = [p for p, _ in reopened.replay(None)]
    assert [p[-1] for p in payloads] == [0, 1]
    assert "torn or corrupt record" in caplog.text
    # new appends go to a fresh segment, never after the torn bytes
    reopened.append(b"after").result(5)
    reopened.close()
    assert len(list(tmp_path.glob("*.spool"))) == 2


def test_a_corrupt_record_stops_its_segment(tmp_path):
    spool = Spool(tmp_path, lambda *_: None)
    for i in range(3):
        spool.append(bytes([i]) * 50).result(5)
    spool.close()
    [segment] = list(tmp_path.glob("*.spool"))
    data = bytearray(segment.read_bytes())
    data[12 + 10] ^= 0xFF  # flip a payload byte of the first record
    segment.write_bytes(bytes(data))
    assert list(Spool(tmp_path, lambda *_: None).replay(None)) == []


def test_release_deletes_only_fully_written_segments(tmp_path):
    spool = Spool(tmp_path, lambda *_: None)
    spool.append(b"a").result(5)
    spool.close()
    spool = Spool(tmp_path, lambda *_: None)  # segment 2 is now current
    spool.release(Position(2, 0))
    assert [p.name for p in tmp_path.glob("*.spool")] == ["000000000002.spool"]
    spool.close()


def test_concurrent_appends_are_all_durable(tmp_path):
    seen, on_durable = _collect()
    spool = Spool(tmp_path, on_durable)
    futures = []

    def producer(n):
        for i in range(200):
            futures.append(spool.append(b"%d-%d" % (n, i), (n, i)))

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for f in futures:
        f.result(10)
    spool.close()
    assert len(seen) == 800 and len({item for item, _ in seen}) == 800
