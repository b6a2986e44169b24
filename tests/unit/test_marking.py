"""The data checks' writer and readers keep a fixed schedule whatever the store does, and say so when it is too slow;
with standbyWrites every marker the standby acknowledged is looked for in the primary until it is seen there."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Sequence
from typing import Any, cast

from livefire.datachecks.markers import Marker, MarkerSample
from livefire.datachecks.marking import MAX_IN_FLIGHT, OVERLOADED, DataCheckRunner
from livefire.probing.chunks import SampleChunkWriter
from livefire.spec import parse_spec
from tests.conftest import sandbox_spec_document


class Collected:
    def __init__(self) -> None:
        self.samples: list[MarkerSample] = []
        self.lock = threading.Lock()

    def add(self, sample: Any) -> None:
        with self.lock:
            self.samples.append(sample)


class Store:
    """Holds what was written; the replica sees everything but the newest marker. ``gate`` blocks writes. Every
    standby marker is acknowledged; the primary holds them all but ``lost``."""

    look_batch = 4

    def __init__(self, gate: threading.Event | None = None, lost: int | None = None) -> None:
        self.written: list[int] = []
        self.gate = gate
        self.lost = lost
        self.standby: list[int] = []

    def write(self, seq: int, sent_ms: float) -> None:
        if self.gate is not None:
            self.gate.wait(5)
        self.written.append(seq)

    def newest(self, region: str) -> Marker | None:
        held = sorted(self.written)[:-1]
        return Marker(held[-1], 1.0) if held else None

    def write_standby(self, region: str, seq: int, sent_ms: float) -> None:
        self.standby.append(seq)

    def in_primary(self, region: str, seqs: Sequence[int]) -> set[int]:
        return {seq for seq in seqs if seq in self.standby and seq != self.lost}


def runner(store: Store, collected: Collected, standby_writes: bool = False) -> DataCheckRunner:
    document = sandbox_spec_document()
    document["dataChecks"] = [{"name": "orders", "kind": "http", "interval": "50ms", "standbyWrites": standby_writes,
                               "http": {
        "writeUrl": "http://markers.payments.sandbox/m", "readUrls": {"us-west-2": "http://r.sandbox/m"}}}]
    checks = DataCheckRunner(parse_spec(document), "d-1", cast(SampleChunkWriter, collected))
    checks.runs[0].store = store
    return checks


def test_one_marker_is_written_and_each_region_read_per_interval_in_sequence() -> None:
    store, collected = Store(), Collected()

    asyncio.run(runner(store, collected).run(0.5))

    writes = sorted((s for s in collected.samples if s.op == "write"), key=lambda s: s.seq or 0)
    reads = [s for s in collected.samples if s.op == "read"]
    assert [s.seq for s in writes] == list(range(10)) and all(s.ok for s in writes)
    assert len(reads) == 10 and {s.region for s in reads} == {"us-west-2"}
    spacing = [b.scheduled_ms - a.scheduled_ms for a, b in itertools.pairwise(writes)]
    assert all(abs(gap - 50.0) < 1e-6 for gap in spacing)  # the schedule, not the answers, sets the instants


def test_a_store_slower_than_the_schedule_gets_failed_samples_instead_of_a_queue() -> None:
    gate = threading.Event()
    store, collected = Store(gate), Collected()
    checks = runner(store, collected)

    async def go() -> None:
        task = asyncio.create_task(checks.run(1.0))
        for _ in range(500):  # the writes pile up until the runner stops queueing them (bounded: 5 s)
            if any(s.error == OVERLOADED for s in collected.samples):
                break
            await asyncio.sleep(0.01)
        gate.set()
        await task

    asyncio.run(go())

    overloaded = [s for s in collected.samples if s.error == OVERLOADED]
    assert overloaded and all(not s.ok for s in overloaded)
    assert len(collected.samples) == 40  # every scheduled operation has its sample, sent or not
    assert len(store.written) == 20 - len([s for s in overloaded if s.op == "write"])
    assert MAX_IN_FLIGHT < 40


def test_every_standby_marker_is_looked_for_in_the_primary_until_seen_and_a_lost_one_again_and_again() -> None:
    store, collected = Store(lost=1), Collected()

    asyncio.run(runner(store, collected, standby_writes=True).run(0.5))

    confirms = [s for s in collected.samples if s.op == "confirm" and s.ok]
    held = {seq for s in confirms for seq in s.held or ()}
    asked_for_the_lost = sum(1 for s in confirms if 1 in (s.asked or ()))
    assert {2, 3, 4, 5, 6} <= held <= set(store.standby) - {1}  # the last written may not be looked for yet
    assert asked_for_the_lost >= 3 and 1 not in held
    assert {s.region for s in collected.samples if s.op in ("standby-write", "confirm")} == {"us-west-2"}


def test_a_later_chunk_looks_again_for_every_standby_marker_an_earlier_chunk_wrote() -> None:
    store, collected = Store(), Collected()
    store.standby = [0, 1, 2, 3, 4, 5]  # written by the chunk before this one, which saw none of them in the primary

    asyncio.run(runner(store, collected, standby_writes=True).run(0.6, from_s=0.3))

    held = {seq for s in collected.samples if s.op == "confirm" and s.ok for seq in s.held or ()}
    assert set(range(6)) <= held
