"""The store maps fault records to the FaultRecord model and back (an in-memory table, no AWS)."""

from __future__ import annotations

import pytest

from livefire.records import FaultRecord
from livefire.store import ACTIVE_FAULTS, DrillStore
from tests.evidence_data import FAULT_ID, planned_fault
from tests.fakes import FakeTable

DRILL = "d-1"
KEY = ("DRILL#d-1", f"FAULT#{FAULT_ID}")


@pytest.fixture
def table() -> FakeTable:
    """The drill table, in memory; ``store`` maps its fault items."""
    return FakeTable(name="fault-records")


@pytest.fixture
def store(table: FakeTable) -> DrillStore:
    return DrillStore(table)  # the store under test, over that table


def pending(store: DrillStore, *, expires_at: int = 5_000) -> bool:
    return store.put_fault_pending(DRILL, planned_fault(), snapshot_key="drills/p/d-1/faults/f-1-before.json",
                                   expires_at=expires_at, pending_at_ms=1_000)


def test_a_pending_fault_reads_back_as_the_record_that_was_written(store: DrillStore) -> None:
    assert pending(store)

    assert store.fault(DRILL, FAULT_ID) == FaultRecord(
        drill_id=DRILL, fault_id=FAULT_ID, status="PENDING", planned=planned_fault(),
        snapshot_key="drills/p/d-1/faults/f-1-before.json", expires_at=5_000, pending_at_ms=1_000)


def test_the_item_holds_camel_case_attributes_the_planned_fault_as_json_and_a_place_in_the_sweepers_index(
    store: DrillStore, table: FakeTable,
) -> None:
    pending(store)

    item = table.items[KEY]

    assert {"drillId", "faultId", "snapshotKey", "expiresAt", "pendingAtMs"} <= set(item)
    assert planned_fault().model_validate_json(item["planned"]) == planned_fault()
    assert (item["gsi2pk"], item["gsi2sk"]) == (ACTIVE_FAULTS, f"{5_000:012d}#{DRILL}#{FAULT_ID}")


def test_a_fault_can_be_written_ahead_only_once(store: DrillStore) -> None:
    assert pending(store)

    assert not pending(store)
    assert not store.fence_fault(DRILL, planned_fault(), actor="guardian")


def test_a_fence_is_a_skipped_record_outside_the_sweepers_index(store: DrillStore, table: FakeTable) -> None:
    assert store.fence_fault(DRILL, planned_fault(), actor="guardian")

    record = store.fault(DRILL, FAULT_ID)
    assert record is not None and (record.status, record.restored_by) == ("SKIPPED", "guardian")
    assert "gsi2pk" not in table.items[KEY]
    assert not pending(store)


def test_marking_sets_the_named_fields_only_and_only_from_the_expected_status(store: DrillStore) -> None:
    pending(store)

    injected = store.mark_fault(DRILL, FAULT_ID, "INJECTED", expect="PENDING", injected_at_ms=2_000,
                                injection_answered_at_ms=2_040, detail="faulted")
    late = store.mark_fault(DRILL, FAULT_ID, "INJECTED", expect="PENDING", injected_at_ms=9_999)

    record = store.fault(DRILL, FAULT_ID)
    assert (injected, late) == (True, False)
    assert record is not None
    assert (record.status, record.injected_at_ms, record.injection_answered_at_ms, record.detail) == (
        "INJECTED", 2_000, 2_040, "faulted")
    assert record.pending_at_ms == 1_000 and record.restored_at_ms is None


def test_restored_and_skipped_records_leave_the_sweepers_index(store: DrillStore) -> None:
    pending(store, expires_at=10)
    store.mark_fault(DRILL, FAULT_ID, "INJECTED", injected_at_ms=2_000)
    assert [r.fault_id for r in store.faults_expired_before(11)] == [FAULT_ID]

    store.mark_fault(DRILL, FAULT_ID, "RESTORED", restore_requested_at_ms=3_000, restored_at_ms=3_020,
                     restored_by="rollback")

    assert store.active_faults() == [] and store.faults_expired_before(11) == []
    record = store.fault(DRILL, FAULT_ID)
    assert record is not None and (record.restore_requested_at_ms, record.restored_at_ms) == (3_000, 3_020)


def test_marking_a_fault_that_has_no_record_writes_nothing(store: DrillStore, table: FakeTable) -> None:
    assert not store.mark_fault(DRILL, FAULT_ID, "RESTORED", restored_by="rollback")
    assert table.items == {}


def test_a_reopened_fault_is_failed_and_back_in_the_sweepers_index(store: DrillStore) -> None:
    pending(store)
    store.mark_fault(DRILL, FAULT_ID, "RESTORED", restored_by="rollback")
    record = store.fault(DRILL, FAULT_ID)
    assert record is not None

    store.reopen_fault(record, "x" * 2_000, external_id="exp-1")

    [active] = store.active_faults()
    assert (active.status, active.external_id, len(active.detail or "")) == ("FAILED", "exp-1", 1_000)


def test_dry_run_problems_are_kept_as_a_list(store: DrillStore) -> None:
    pending(store)

    store.mark_fault(DRILL, FAULT_ID, "SKIPPED", expect="PENDING", detail="dry run: nothing was patched",
                     dry_run_problems=["the route 'nope' does not exist", "RBAC: may not patch"])

    record = store.fault(DRILL, FAULT_ID)
    assert record is not None and record.dry_run_problems == ["the route 'nope' does not exist", "RBAC: may not patch"]


def test_the_faults_of_a_drill_are_its_own_and_no_other_drills(store: DrillStore) -> None:
    for drill_id, index in (("d-1", 0), ("d-1", 1), ("d-2", 2)):
        planned = planned_fault().model_copy(update={"fault_id": f"f-{index}"})
        store.put_fault_pending(drill_id, planned, snapshot_key=f"k{index}", expires_at=5_000, pending_at_ms=1)

    assert sorted(r.fault_id for r in store.faults_of("d-1")) == ["f-0", "f-1"]
    assert [r.fault_id for r in store.faults_of("d-2")] == ["f-2"]
