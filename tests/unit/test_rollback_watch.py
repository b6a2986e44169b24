"""How long a drill window keeps probing after a late rollback (livefire/probing/rollback_watch.py), and the engine
following the later end it is given."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from livefire.contracts import PlannedFault, ProbeTarget, Sample
from livefire.probing.engine import ProbeEngine, ProbeSettings
from livefire.probing.http import ProbeOutcome
from livefire.probing.rollback_watch import AHEAD_S, WAIT_FOR_ROLLBACK_S, RollbackWatch
from livefire.records import FaultRecord
from tests.evidence_data import FAULT_ID, planned_fault

PLANNED_END_MS = 1_000_000.0
RECOVERY_S = 4.0


class Clock:
    def __init__(self, now_ms: float) -> None:
        self.now_ms = now_ms

    def __call__(self) -> float:
        return self.now_ms / 1000.0


def record(status: str, *, restore_sent_ms: int | None = None, planned: PlannedFault | None = None) -> FaultRecord:
    return FaultRecord(drill_id="d-1", fault_id=FAULT_ID, status=status, planned=planned or planned_fault(),
                       snapshot_key="drills/payments/d-1/faults/x.json", expires_at=0, injected_at_ms=900_000,
                       restore_requested_at_ms=restore_sent_ms)


def watch(records: list[FaultRecord], clock: Clock) -> RollbackWatch:
    """A watch that has read ``records`` once."""
    subject = RollbackWatch(lambda: records, RECOVERY_S, PLANNED_END_MS, clock)
    subject.read()
    return subject


def test_a_drill_with_no_fault_yet_asks_for_nothing_beyond_the_plan() -> None:
    assert watch([], Clock(PLANNED_END_MS - 5000)).wanted_end_ms() is None


def test_a_live_fault_keeps_the_end_ahead_of_now_until_the_wait_for_its_rollback_runs_out() -> None:
    clock = Clock(PLANNED_END_MS - 1000)
    subject = watch([record("INJECTED")], clock)

    first = subject.wanted_end_ms()
    clock.now_ms = PLANNED_END_MS + WAIT_FOR_ROLLBACK_S * 1000
    last = subject.wanted_end_ms()

    assert first == PLANNED_END_MS - 1000 + AHEAD_S * 1000
    assert last == PLANNED_END_MS + WAIT_FOR_ROLLBACK_S * 1000


def test_once_the_rollback_is_sent_the_window_runs_the_recovery_phase_after_it() -> None:
    sent = int(PLANNED_END_MS + 3000)
    subject = watch([record("RESTORED", restore_sent_ms=sent), record("SKIPPED")], Clock(sent + 100))

    assert subject.wanted_end_ms() == sent + RECOVERY_S * 1000


def test_the_data_checks_cleanup_record_is_not_a_fault_to_wait_for() -> None:
    cleanup = PlannedFault(fault_id="data-check-markers", kind="data-check", region="us-east-1",
                           object_kind="DataCheckMarkers", object_name="markers/d-1/", lease_key="markers:d-1")

    assert watch([record("PENDING", planned=cleanup)], Clock(PLANNED_END_MS)).wanted_end_ms() is None


def test_asking_for_the_end_never_reads_the_records_and_the_reading_thread_stops_with_its_block() -> None:
    reads: list[float] = []

    def faults() -> list[FaultRecord]:
        reads.append(time.monotonic())
        return [record("INJECTED")]

    subject = RollbackWatch(faults, RECOVERY_S, PLANNED_END_MS, Clock(PLANNED_END_MS))
    assert subject.wanted_end_ms() is None and reads == []  # not read yet: nothing known, nothing blocks

    with subject.reading():
        deadline = time.monotonic() + 10
        while not reads and time.monotonic() < deadline:
            time.sleep(0.01)
    after = len(reads)
    time.sleep(0.6)

    assert after >= 1 and len(reads) == after  # read while the block ran, never after
    assert subject.wanted_end_ms() == PLANNED_END_MS + AHEAD_S * 1000


def test_the_engine_probes_on_until_the_later_end_it_is_given() -> None:
    async def healthy(url: str, **_: Any) -> ProbeOutcome:
        return ProbeOutcome(ok=True, status=200, served_by="us-east-1", version="v1")

    engine = ProbeEngine(ProbeSettings(interval=0.05, timeout=0.5, burst_interval=0.01), vantage="v", probe=healthy)
    target = ProbeTarget(name="a", url="http://a.test/healthz", role="region")
    samples: list[Sample] = []
    later = time.monotonic() + 0.6

    asyncio.run(engine.run([target], 0.2, samples.append, None, lambda: later))

    sent = [s.scheduled_ms for s in samples]
    assert max(sent) - min(sent) >= 500  # planned for 0.2 s, probed for 0.6 s
