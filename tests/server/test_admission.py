"""The in-flight bound of the OTLP receiver."""

from __future__ import annotations

from tokentrace.server.admission import Admission


def test_requests_are_admitted_while_they_fit_and_a_lone_one_always():
    bound = Admission(100)
    assert bound.admit(150)  # alone: admitted past the bound
    assert not bound.admit(1)  # another one while it is held: refused, nothing reserved
    bound.release(150)
    assert bound.admit(60) and bound.admit(40) and not bound.admit(1)
    assert (bound.held_bytes, bound.peak_bytes) == (100, 150)


def test_a_request_growing_once_decompressed_is_refused_only_when_others_hold_bytes():
    bound = Admission(100)
    assert bound.admit(10)
    assert bound.admit(500, own=10)  # it alone holds bytes: it may grow past the bound
    assert bound.admit(20) is False
    bound.release(510)
    assert bound.admit(30) and bound.admit(10)
    assert not bound.admit(200, own=10)  # the other 30 bytes are someone else's
    assert bound.held_bytes == 40
