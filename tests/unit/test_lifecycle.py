"""The fault lifecycle (livefire/faults/lifecycle.py) with a fake driver, the store over an in-memory table and an
in-memory bucket: write-ahead, fencing, idempotency, late undo, conflicts and the instants it records."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from livefire.contracts import FaultState, Plan, PlannedFault
from livefire.errors import FaultInjectionFailed, InjectInProgress, RollbackFailed
from livefire.faults.driver import Applied, Bracket, Checkpoint, DryRun, FaultTarget, Restored
from livefire.faults.lifecycle import Lifecycle
from livefire.records import FaultRecord, RestoreRefusal
from livefire.spec import DrillSpec, Fault
from livefire.store import DrillStore
from tests.evidence_data import FAULT_ID, drill_plan, drill_spec
from tests.fakes import FakeBlobs, FakeTable

DRILL = "d-1"
REFUSAL = RestoreRefusal(target="Fake f-1", differs=["state"], command="fake restore --state healthy")
HEALTHY, FAULTED, EDITED = "healthy", "faulted", "edited by someone else"


class Clock:
    """A clock that moves 10 ms each time it is read: every instant the lifecycle takes is distinct and ordered."""

    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        self.now += 10
        return self.now


@dataclass
class FakeDriver:
    """A fault kind whose target is one value in memory; each hook runs at the moment its name says."""

    clock: Clock
    target: dict[str, str] = field(default_factory=lambda: {"state": HEALTHY})
    applies: int = 0
    restores: int = 0
    while_in_flight: Callable[[], None] | None = None  # runs after the request is sent, before it lands
    while_describing: Callable[[], None] | None = None  # runs before the record is written
    external_id: str | None = None  # recorded through the checkpoint as soon as the "experiment" exists
    apply_error: Exception | None = None
    restore_error: Exception | None = None
    problems: list[str] = field(default_factory=list)
    document_name = "fake"

    def describe(self, drill_id: str, planned: PlannedFault, fault: Fault) -> dict[str, Any]:
        if self.while_describing is not None:
            self.while_describing()
        return {"state": self.target["state"]}

    def apply(self, target: FaultTarget, fault: Fault, checkpoint: Checkpoint) -> Applied:
        if self.apply_error is not None:
            raise self.apply_error
        self.applies += 1
        if self.target["state"] == FAULTED:  # an earlier attempt's write landed: nothing to send
            return Applied(bracket=None, detail="already faulted")
        sent = self.clock()
        if self.while_in_flight is not None:
            self.while_in_flight()
        self.target["state"] = FAULTED
        if self.external_id is not None:  # like an FIS experiment: it has an id once the start is answered
            checkpoint(self.external_id)
        return Applied(bracket=Bracket(sent, self.clock()), detail="faulted", after=dict(self.target))

    def restore(self, target: FaultTarget, actor: str) -> Restored:
        self.restores += 1
        if self.restore_error is not None:
            raise self.restore_error
        if self.target["state"] == EDITED:
            return Restored(status="CONFLICT", wrote=False, detail="the target was edited; left as it is",
                            current=dict(self.target), refusal=REFUSAL)
        if self.target["state"] == target.document.data["state"]:
            return Restored(status="RESTORED", wrote=False, detail="already back", current=dict(self.target))
        sent = self.clock()
        self.target["state"] = target.document.data["state"]
        return Restored(status="RESTORED", wrote=True, detail="restored", bracket=Bracket(sent, self.clock()),
                        current=dict(self.target), external_id=target.external_id)

    def verify(self, drill_id: str, planned: PlannedFault, fault: Fault, expires_at: int) -> DryRun:
        return DryRun(detail="dry run: nothing was changed", problems=list(self.problems),
                      document=self.describe(drill_id, planned, fault))

    def in_flight(self, target: FaultTarget) -> str:
        return "the fake fault was being applied"


@dataclass
class World:
    store: DrillStore
    blobs: FakeBlobs
    driver: FakeDriver
    clock: Clock
    spec: DrillSpec
    plan: Plan

    def lifecycle(self) -> Lifecycle:
        return Lifecycle(self.store, self.blobs, lambda _kind: self.driver, self.clock)

    def inject(self, plan: Plan | None = None) -> list[FaultState]:
        return self.lifecycle().inject(plan or self.plan, self.spec)

    def rollback(self, actor: str = "rollback", *, fence: bool = True) -> Any:
        return self.lifecycle().restore(DRILL, planned=self.plan.faults if fence else (), actor=actor)

    def record(self) -> FaultRecord:
        record = self.store.fault(DRILL, FAULT_ID)
        assert record is not None
        return record


@pytest.fixture
def world() -> Iterator[World]:
    clock = Clock()
    yield World(DrillStore(FakeTable()), FakeBlobs(), FakeDriver(clock), clock, drill_spec(), drill_plan(DRILL))


# ---------------------------------------------------------------- inject


def test_the_record_and_the_document_are_written_before_the_fault_is_applied(world: World) -> None:
    seen: list[tuple[str, Any]] = []

    def look() -> None:
        record = world.record()
        seen.append((record.status, world.blobs.documents.get(record.snapshot_key)))

    world.driver.while_in_flight = look

    world.inject()

    assert seen == [("PENDING", {"state": HEALTHY})]


def test_an_injection_records_the_bracket_of_its_write(world: World) -> None:
    [state] = world.inject()

    record = world.record()
    assert record.status == state.status == "INJECTED"
    assert record.pending_at_ms is not None and record.injected_at_ms is not None
    assert record.pending_at_ms < record.injected_at_ms < (record.injection_answered_at_ms or 0)
    assert (state.injected_at_ms, state.injection_answered_at_ms) == (record.injected_at_ms,
                                                                      record.injection_answered_at_ms)
    assert world.blobs.documents[record.snapshot_key.replace("-fake.json", "-after.json")] == {"state": FAULTED}


def test_a_retried_inject_never_applies_twice(world: World) -> None:
    [first] = world.inject()

    [second] = world.inject()

    assert world.driver.applies == 1
    assert second == first


def test_a_retry_after_a_crash_between_the_write_and_the_mark_brackets_the_injection_from_the_record(
    world: World,
) -> None:
    def crash() -> None:
        raise TimeoutError("the invocation timed out")

    world.driver.while_in_flight = crash
    with pytest.raises(TimeoutError):
        world.inject()
    world.driver.while_in_flight = None
    world.driver.target["state"] = FAULTED  # the write had landed
    pending = world.record()

    [state] = world.inject()

    assert pending.status == "PENDING" and state.status == "INJECTED"
    assert state.injected_at_ms is not None and state.injection_answered_at_ms is not None
    assert state.injected_at_ms == pending.pending_at_ms  # the earliest the earlier write can have landed
    assert state.injection_answered_at_ms > state.injected_at_ms


def test_a_definite_apply_failure_marks_the_record_failed_and_the_rollback_still_closes_it(world: World) -> None:
    world.driver.apply_error = FaultInjectionFailed("f-1: the target has no such route")

    with pytest.raises(FaultInjectionFailed):
        world.inject()
    failed = world.record()
    outcome = world.rollback("emergency-rollback")

    assert (failed.status, failed.detail) == ("FAILED", "f-1: the target has no such route")
    assert [s.status for s in outcome.states] == ["RESTORED"] and world.record().restored_by == "emergency-rollback"


# ---------------------------------------------------------------- fencing and the late undo


def test_a_duplicate_inject_that_loses_the_write_ahead_to_a_running_one_is_refused_not_answered_pending(
        world: World) -> None:
    [planned] = world.plan.faults

    def another_invocation_writes_its_record_first() -> None:
        world.store.put_fault_pending(DRILL, planned, snapshot_key="drills/x/faults/other.json", expires_at=0,
                                      pending_at_ms=world.clock())

    world.driver.while_describing = another_invocation_writes_its_record_first

    with pytest.raises(InjectInProgress, match=FAULT_ID):
        world.inject()

    assert world.driver.applies == 0 and world.record().status == "PENDING"


def test_a_rollback_before_the_inject_fences_the_fault_so_the_inject_applies_nothing(world: World) -> None:
    world.rollback("guardian")

    [state] = world.inject()

    assert state.status == "SKIPPED" and world.driver.applies == 0
    assert (world.record().status, world.record().restored_by) == ("SKIPPED", "guardian")


def test_a_rollback_while_the_write_is_in_flight_makes_the_inject_undo_its_own_write(world: World) -> None:
    world.driver.while_in_flight = lambda: world.rollback("emergency-rollback")

    with pytest.raises(FaultInjectionFailed, match="rolled back while the fake fault was being applied"):
        world.inject()

    record = world.record()
    assert world.driver.target == {"state": HEALTHY}
    assert (record.status, record.restored_by) == ("RESTORED", "inject")
    assert record.restore_requested_at_ms is not None and record.restored_at_ms is not None
    assert world.store.active_faults() == []


def test_a_checkpoint_after_a_rollback_closed_the_record_stops_the_fault_at_once(world: World) -> None:
    world.driver.external_id = "exp-1"
    world.driver.while_in_flight = lambda: world.rollback("emergency-rollback")  # nothing started yet: closed

    with pytest.raises(FaultInjectionFailed, match="rolled back while"):
        world.inject()

    record = world.record()
    assert world.driver.target == {"state": HEALTHY}
    assert (record.status, record.restored_by, record.external_id) == ("RESTORED", "inject", "exp-1")


def test_a_late_undo_that_fails_puts_the_fault_back_in_the_sweepers_index(world: World) -> None:
    def rollback_then_break() -> None:
        world.rollback("emergency-rollback")
        world.driver.restore_error = RollbackFailed("f-1: the API refused the restore")

    world.driver.while_in_flight = rollback_then_break

    with pytest.raises(RollbackFailed, match="undoing it failed"):
        world.inject()

    [active] = world.store.active_faults()
    assert active.status == "FAILED" and "undoing it failed" in (active.detail or "")
    world.driver.restore_error = None
    assert world.rollback("sweeper", fence=False).restored == 1 and world.driver.target == {"state": HEALTHY}


# ---------------------------------------------------------------- restore


def test_a_restore_records_its_bracket_and_leaves_the_sweepers_index(world: World) -> None:
    world.inject()

    outcome = world.rollback()

    record = world.record()
    assert (outcome.restored, outcome.failures, record.status, record.restored_by) == (1, [], "RESTORED", "rollback")
    assert (record.injection_answered_at_ms or 0) < (record.restore_requested_at_ms or 0) < (record.restored_at_ms or 0)
    assert world.store.active_faults() == []


def test_restoring_twice_is_the_same_as_restoring_once(world: World) -> None:
    world.inject()
    first = world.rollback()

    again = world.rollback("guardian")

    assert (again.restored, again.failures, world.driver.restores) == (0, [], 1)
    assert again.states == first.states
    assert world.record().restored_by == "rollback"


def test_a_target_someone_else_changed_is_left_as_it_is_recorded_and_announced_once(
    world: World, capsys: pytest.CaptureFixture[str],
) -> None:
    world.inject()
    world.driver.target["state"] = EDITED

    outcome = world.rollback()
    again = world.rollback("guardian")

    record = world.record()
    assert world.driver.target == {"state": EDITED} and (record.status, record.refusal) == ("CONFLICT", REFUSAL)
    assert outcome.restored == 0 and outcome.conflicts == [f"{DRILL}/{FAULT_ID}: the target was edited; left as it is"]
    assert again.conflicts == outcome.conflicts and world.driver.restores == 1  # never retried by force
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"RestoreRefused"' in line]
    assert len(metrics) == 1 and (metrics[0]["drillId"], metrics[0]["target"]) == (DRILL, "Fake f-1")


def test_a_restore_that_fails_is_reported_and_stays_for_the_next_rollback_path(world: World) -> None:
    world.inject()
    world.driver.restore_error = RollbackFailed("f-1: the API answered 500")

    failed = world.rollback()
    world.driver.restore_error = None
    swept = world.rollback("sweeper", fence=False)

    assert failed.failures == ["f-1: f-1: the API answered 500"] and failed.restored == 0
    assert (swept.restored, world.record().restored_by, world.driver.target) == (1, "sweeper", {"state": HEALTHY})


# ---------------------------------------------------------------- dry run


def test_a_dry_run_applies_nothing_and_closes_the_record_with_what_it_found(world: World) -> None:
    world.driver.problems = ["RBAC: may not patch virtualservices"]
    dry = world.plan.model_copy(update={"mode": "dry-run"})

    [state] = world.inject(dry)

    record = world.record()
    assert world.driver.applies == 0 and world.driver.target == {"state": HEALTHY}
    assert (state.status, state.detail, state.dry_run_problems) == (
        "SKIPPED", "dry run: nothing was changed", ["RBAC: may not patch virtualservices"])
    assert record.dry_run_problems == state.dry_run_problems and world.store.active_faults() == []
