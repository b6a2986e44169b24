"""The relay between the chunks of a probe window asks S3 for the previous chunk's handoff only from the instant it
can exist (the chunk's first slot), then often; it gives up, named, at its timeout or when cancelled."""

from __future__ import annotations

import threading
import time

import pytest

from livefire.contracts import ProbeHandoff
from livefire.errors import ProbeRelayLost
from livefire.probing.relay import POLL_S, Relay
from tests.fakes import InMemoryS3


def _relay(s3: InMemoryS3) -> Relay:
    return Relay(s3, "evidence", "drills/payments/d-1/", "us-east-1", "drill")


def test_a_handoff_not_yet_due_is_not_asked_for_until_the_chunks_first_slot() -> None:
    s3 = InMemoryS3()
    relay = _relay(s3)
    first_slot = time.time() + 0.5
    writer = threading.Timer(0.6, relay.put_handoff, [ProbeHandoff(chunk=3, end_ms=1.0, over=False, targets=[])])
    writer.start()

    handoff = relay.wait_handoff(3, 5.0, not_before_ms=first_slot * 1000.0)

    assert handoff.chunk == 3
    assert s3.asked and min(at for _key, at in s3.asked) >= first_slot
    # From the first slot on it asks every POLL_S: it has the handoff soon after it lands (bounded for a busy machine).
    assert time.time() - first_slot < 0.1 + 50 * POLL_S


def test_a_handoff_that_never_comes_is_a_named_loss_at_the_timeout_counted_from_the_call() -> None:
    s3 = InMemoryS3()
    relay = _relay(s3)
    called = time.monotonic()

    with pytest.raises(ProbeRelayLost, match=r"handoff-000007\.json did not appear within 1 s"):
        relay.wait_handoff(7, 1.0, not_before_ms=time.time() * 1000.0 + 300.0)

    assert 1.0 <= time.monotonic() - called < 3.0


def test_a_cancelled_relay_stops_waiting_for_the_first_slot_at_once() -> None:
    s3 = InMemoryS3()
    relay = _relay(s3)
    threading.Timer(0.1, relay.cancelled.set).start()
    called = time.monotonic()

    with pytest.raises(ProbeRelayLost):
        relay.wait_handoff(1, 60.0, not_before_ms=time.time() * 1000.0 + 30_000.0)

    assert time.monotonic() - called < 5.0
    assert s3.asked == []
