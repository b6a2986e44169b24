"""The sandbox's replicated marker store and the http marker contract: markers reach a replica after the configured
lag, in write order, never while the primary fails, and are gone after a cleanup; a standby's markers go back to the
primary the same way, or never (``dropOnFailback``) when taken while the primary failed; livefire's http store
speaks the contract to the sandbox's server on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from livefire.datachecks.markers import Marker
from livefire.datachecks.stores import HttpMarkerStore, delete_http_markers
from livefire.spec.datachecks import HttpMarkers, marker_prefix, standby_prefix
from livefire_local.sandbox.markers import LagProfile, MarkerServer, ReplicatedMarkers

PREFIX = marker_prefix("d-1", "orders")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def store(profile: LagProfile, clock: Clock, failing: list[bool] | None = None) -> ReplicatedMarkers:
    state = failing if failing is not None else [False]
    return ReplicatedMarkers("us-east-1", ["us-west-2"], profile, primary_failing=lambda: state[0], clock=clock)


def test_a_marker_reaches_the_replica_after_the_lag_and_the_primary_at_once() -> None:
    clock = Clock()
    markers = store(LagProfile(lag_s=2.0), clock)

    markers.put(PREFIX, Marker(0, 1.0))
    clock.now += 1.9
    markers.tick()
    early = markers.newest("us-west-2", PREFIX)
    clock.now += 0.2
    markers.tick()

    assert markers.newest("us-east-1", PREFIX) == Marker(0, 1.0)
    assert early is None
    assert markers.newest("us-west-2", PREFIX) == Marker(0, 1.0)


def test_nothing_replicates_while_the_primary_fails_and_the_backlog_drains_after() -> None:
    clock, failing = Clock(), [False]
    markers = store(LagProfile(lag_s=1.0), clock, failing)
    markers.put(PREFIX, Marker(0, 1.0))
    clock.now += 0.5
    markers.put(PREFIX, Marker(1, 2.0))

    failing[0] = True
    clock.now += 5.0
    markers.tick()
    during = markers.newest("us-west-2", PREFIX)
    failing[0] = False
    markers.tick()

    assert during is None and markers.paused is False
    assert markers.newest("us-west-2", PREFIX) == Marker(1, 2.0)


def test_jitter_never_reorders_what_a_replica_holds() -> None:
    clock = Clock()
    markers = store(LagProfile(lag_s=1.0, jitter_s=0.9), clock)
    seen = []
    for seq in range(50):
        markers.put(PREFIX, Marker(seq, float(seq)))
        clock.now += 0.05
        markers.tick()
        held = markers.newest("us-west-2", PREFIX)
        seen.append(-1 if held is None else held.seq)

    assert seen == sorted(seen)


def test_a_cleanup_removes_every_marker_held_or_still_replicating() -> None:
    clock = Clock()
    markers = store(LagProfile(lag_s=10.0), clock)
    markers.put(PREFIX, Marker(0, 1.0))
    markers.put(marker_prefix("other-drill", "orders"), Marker(0, 1.0))

    markers.delete(marker_prefix("d-1"))
    clock.now += 20.0
    markers.tick()

    assert markers.newest("us-west-2", PREFIX) is None
    assert markers.markers_left() == 2  # the other drill's marker, in the primary and the replica


def test_a_standby_marker_reaches_the_primary_after_the_lag_once_the_primary_is_back() -> None:
    clock, failing = Clock(), [False]
    markers = store(LagProfile(lag_s=1.0), clock, failing)
    back = standby_prefix(PREFIX, "us-west-2")
    markers.put(back, Marker(0, 1.0), "us-west-2")
    failing[0] = True
    markers.put(back, Marker(1, 2.0), "us-west-2")

    clock.now += 5.0
    markers.tick()
    during = markers.held("us-east-1", back, 0)
    failing[0] = False
    markers.tick()

    assert during is None and markers.held("us-west-2", back, 1) == Marker(1, 2.0)
    assert markers.newest("us-east-1", back) == Marker(1, 2.0) and markers.held("us-east-1", back, 0) is not None
    assert markers.dropped == 0


def test_a_lossy_failback_drops_what_the_standby_took_while_the_primary_failed() -> None:
    clock, failing = Clock(), [False]
    markers = store(LagProfile(lag_s=0.5, drop_on_failback=True), clock, failing)
    back = standby_prefix(PREFIX, "us-west-2")
    markers.put(back, Marker(0, 1.0), "us-west-2")
    failing[0] = True
    markers.put(back, Marker(1, 2.0), "us-west-2")
    failing[0] = False
    markers.put(back, Marker(2, 3.0), "us-west-2")

    clock.now += 1.0
    markers.tick()

    held = [markers.held("us-east-1", back, seq) is not None for seq in range(3)]
    assert held == [True, False, True] and markers.dropped == 1


@pytest.fixture
def served() -> Iterator[tuple[ReplicatedMarkers, HttpMarkers]]:
    markers = ReplicatedMarkers("us-east-1", ["us-west-2"], LagProfile(lag_s=0.0))
    server = MarkerServer({"markers.test.sandbox": (markers, "us-east-1"),
                           "usw2.markers.test.sandbox": (markers, "us-west-2")})
    server.start()
    port = server.port
    section = HttpMarkers(write_url=f"http://markers.test.sandbox:{port}/markers",
                          read_urls={"us-west-2": f"http://usw2.markers.test.sandbox:{port}/markers"})
    try:
        yield markers, section
    finally:
        server.stop()


def test_the_http_store_writes_reads_and_deletes_through_the_contract(
        served: tuple[ReplicatedMarkers, HttpMarkers], monkeypatch: pytest.MonkeyPatch) -> None:
    markers, section = served
    port = section.write_url.rsplit(":", 1)[1].split("/")[0]
    monkeypatch.setenv("LIVEFIRE_RESOLVE", f'{{"markers.test.sandbox:{port}": "127.0.0.1:{port}", '
                                           f'"usw2.markers.test.sandbox:{port}": "127.0.0.1:{port}"}}')
    client = HttpMarkerStore(section, PREFIX, timeout=2.0)

    before = client.newest("us-west-2")
    client.write(3, 1234.5)
    markers.tick()
    after = client.newest("us-west-2")
    delete_http_markers(section, marker_prefix("d-1"), 2.0)

    assert before is None
    assert after == Marker(3, 1234.5)
    assert markers.markers_left() == 0


def test_the_http_store_writes_in_the_standby_and_finds_those_markers_in_the_primary_by_key(
        served: tuple[ReplicatedMarkers, HttpMarkers], monkeypatch: pytest.MonkeyPatch) -> None:
    markers, section = served
    port = section.write_url.rsplit(":", 1)[1].split("/")[0]
    monkeypatch.setenv("LIVEFIRE_RESOLVE", f'{{"markers.test.sandbox:{port}": "127.0.0.1:{port}", '
                                           f'"usw2.markers.test.sandbox:{port}": "127.0.0.1:{port}"}}')
    client = HttpMarkerStore(section, PREFIX, timeout=2.0)

    client.write_standby("us-west-2", 4, 10.0)
    client.write_standby("us-west-2", 5, 11.0)
    markers.tick()  # the server's own thread may have replicated them already: either way they are there now

    assert client.in_primary("us-west-2", [4, 5, 6]) == {4, 5}
    assert markers.held("us-west-2", standby_prefix(PREFIX, "us-west-2"), 5) == Marker(5, 11.0)
