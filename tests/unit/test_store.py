"""The store maps drill records, leases, chain heads and history to typed models (an in-memory table, no AWS)."""

from __future__ import annotations

import time

import pytest

from livefire.errors import DrillInProgress
from livefire.leases import SHARED_HOLDER
from livefire.store import ChainHead, DrillRecord, DrillStore, HistoryEntry, Lease, ManifestSeal
from tests.fakes import FakeTable

ARN = "arn:aws:states:us-east-1:123456789012:execution:drill:d-1"


@pytest.fixture
def table() -> FakeTable:
    return FakeTable()


@pytest.fixture
def store(table: FakeTable) -> DrillStore:
    return DrillStore(table)


def create(store: DrillStore, drill_id: str = "d-1", *, started_at_ms: int = 1_000, service: str = "payments") -> None:
    store.create_drill(drill_id=drill_id, execution_arn=ARN, service=service, pattern="active-passive",
                       mode="live", spec_digest="ab" * 32, started_at_ms=started_at_ms, lease_keys=["k1"])


def test_a_created_drill_reads_back_as_a_running_record(store: DrillStore) -> None:
    create(store)

    record = store.get_drill("d-1")

    assert record == DrillRecord(drill_id="d-1", execution_arn=ARN, service="payments", pattern="active-passive",
                                 mode="live", spec_digest="ab" * 32, status="RUNNING", started_at_ms=1_000,
                                 lease_keys=["k1"])


def test_the_record_is_stored_under_camel_case_attributes_and_listed_in_the_history_index(
    store: DrillStore, table: FakeTable
) -> None:
    create(store)

    item = table.items[("DRILL#d-1", "DRILL")]

    assert {"drillId", "executionArn", "specDigest", "startedAtMs", "leaseKeys"} <= set(item)
    assert (item["gsi1pk"], item["gsi1sk"]) == ("SERVICE#payments", f"{1_000:015d}#d-1")


def test_a_drill_id_can_be_created_only_once(store: DrillStore) -> None:
    create(store)

    with pytest.raises(Exception, match="ConditionalCheckFailed"):
        create(store)


def test_finishing_sets_the_outcome_and_leaves_unknown_fields_alone(store: DrillStore) -> None:
    create(store)

    store.finish_drill("d-1", status="COMPLETED", verdict="PASS", rto_seconds=0.8, report_key="r.html")

    record = store.get_drill("d-1")
    assert record is not None
    assert (record.status, record.verdict, record.rto_seconds, record.report_key) == ("COMPLETED", "PASS", 0.8,
                                                                                     "r.html")
    assert record.manifest_digest is None and record.ended_at_ms is not None


def test_an_unknown_drill_has_no_record(store: DrillStore) -> None:
    assert store.get_drill("nope") is None


def test_a_rejected_attempt_is_recorded_with_its_reason_and_listed_apart_from_every_service(
    store: DrillStore, table: FakeTable
) -> None:
    store.record_rejected_attempt("d-bad", ARN, "InvalidDrillSpec: spec.fault: missing")

    record = store.get_drill("d-bad")

    assert record is not None
    assert (record.status, record.verdict, record.reason) == ("REJECTED", "REJECTED",
                                                              "InvalidDrillSpec: spec.fault: missing")
    assert table.items[("DRILL#d-bad", "DRILL")]["gsi1pk"] == "SERVICE#(rejected)"


def test_the_guardian_marks_only_an_existing_record(store: DrillStore) -> None:
    create(store)

    marked = store.mark_guarded("d-1", execution_status="FAILED", execution_error="States.Runtime",
                                guarded_at_ms=5, restored=1, released=1, failures=None,
                                status="EXECUTION_FAILED", verdict="ERROR")
    missing = store.mark_guarded("d-9", execution_status="FAILED", execution_error=None, guarded_at_ms=5,
                                 restored=0, released=0, failures=None)

    record = store.get_drill("d-1")
    assert (marked, missing) == (True, False)
    assert record is not None
    assert (record.status, record.verdict, record.execution_status, record.execution_error) == (
        "EXECUTION_FAILED", "ERROR", "FAILED", "States.Runtime")
    assert (record.guardian_restored, record.guardian_released, record.guardian_failures) == (1, 1, None)
    assert store.get_drill("d-9") is None


def test_the_sweeper_mark_keeps_the_status(store: DrillStore) -> None:
    create(store)

    assert store.mark_swept("d-1", swept_at_ms=7, restored=2)

    record = store.get_drill("d-1")
    assert record is not None and (record.status, record.swept_at_ms, record.sweeper_restored) == ("RUNNING", 7, 2)


def test_history_lists_a_services_drills_newest_first_across_pages(store: DrillStore) -> None:
    for n in range(5):
        create(store, f"d-{n}", started_at_ms=1_000 + n)
    create(store, "o-1", service="orders")
    store.finish_drill("d-4", status="COMPLETED", verdict="FAIL", rto_seconds=2.5)

    entries = store.history("payments", limit=4)

    assert [e.drill_id for e in entries] == ["d-4", "d-3", "d-2", "d-1"]
    assert entries[0] == HistoryEntry(drill_id="d-4", started_at_ms=1_004, ended_at_ms=entries[0].ended_at_ms,
                                      pattern="active-passive", status="COMPLETED", verdict="FAIL", rto_seconds=2.5)


def test_history_refuses_a_limit_below_one(store: DrillStore) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        store.history("payments", limit=0)


def test_a_lease_is_held_by_one_drill_until_it_expires(store: DrillStore) -> None:
    now = int(time.time())
    store.acquire_lease("k1", "d-1", now + 60, ARN)

    with pytest.raises(DrillInProgress, match="held by drill d-1"):
        store.acquire_lease("k1", "d-2", now + 60)

    assert store.lease("k1") == Lease(lease_key="k1", holder="d-1", expires_at=now + 60, execution_arn=ARN)
    assert store.lease_holder("k1") == "d-1"
    assert [lease.holder for lease in store.leases_held_by("d-1")] == ["d-1"]


def test_an_expired_lease_holds_nothing_and_is_taken_over(store: DrillStore) -> None:
    now = int(time.time())
    store.acquire_lease("k1", "d-1", now - 1)

    assert store.lease_holder("k1") is None
    store.acquire_lease("k1", "d-2", now + 60)
    assert store.lease_holder("k1") == "d-2"


def test_the_same_drill_id_from_another_execution_is_another_drill(store: DrillStore) -> None:
    now = int(time.time())
    store.acquire_lease("k1", "d-1", now + 60, ARN)

    store.acquire_lease("k1", "d-1", now + 60, ARN)  # a retried Plan of the same execution
    with pytest.raises(DrillInProgress):
        store.acquire_lease("k1", "d-1", now + 60, ARN + "-2")


def test_only_the_holder_releases_a_lease_and_releasing_twice_is_fine(store: DrillStore) -> None:
    store.acquire_lease("k1", "d-1", int(time.time()) + 60)

    assert not store.release_lease("k1", "d-2")
    assert store.release_lease("k1", "d-1")
    assert not store.release_lease("k1", "d-1")
    assert store.lease("k1") is None


def test_an_expired_lease_is_released_only_if_its_holder_did_not_change(store: DrillStore) -> None:
    now = int(time.time())
    store.acquire_lease("k1", "d-1", now - 5)
    stale = store.active_leases()[0]
    store.acquire_lease("k1", "d-2", now + 60)

    assert not store.release_expired_lease(stale, now)
    assert store.lease_holder("k1") == "d-2"


def test_a_rejected_attempt_never_overwrites_the_record_a_drill_id_already_has(store: DrillStore) -> None:
    create(store)
    store.finish_drill("d-1", status="COMPLETED", verdict="PASS")

    written = store.record_rejected_attempt("d-1", ARN + "-reused", "InvalidDrillSpec: kind: unknown")

    record = store.get_drill("d-1")
    assert not written
    assert record is not None and (record.status, record.verdict, record.execution_arn) == ("COMPLETED", "PASS", ARN)
    assert store.record_rejected_attempt("d-2", ARN, "InvalidDrillSpec: kind: unknown")


SERVICE = "service:payments"


def test_the_drills_of_a_multi_region_fault_share_the_lease_and_any_other_drill_is_refused(
    store: DrillStore,
) -> None:
    now = int(time.time())
    store.join_shared_lease(SERVICE, "d-1", now + 60, ARN + "-1")
    store.join_shared_lease(SERVICE, "d-2", now + 120, ARN + "-2")
    store.join_shared_lease(SERVICE, "d-2", now + 90, ARN + "-2")  # a retried Plan

    with pytest.raises(DrillInProgress, match=r"held by the drills of a multi-region fault \(d-1, d-2\)"):
        store.acquire_lease(SERVICE, "d-3", now + 60, ARN + "-3")

    lease = store.lease(SERVICE)
    assert lease is not None and lease.holder == SHARED_HOLDER and lease.expires_at == now + 120
    assert lease.members == {"d-1": ARN + "-1", "d-2": ARN + "-2"}
    assert [held.lease_key for held in store.leases_held_by("d-2")] == [SERVICE]


def test_a_lease_held_by_one_drill_is_not_joined_nor_is_a_shared_one_by_the_same_id_of_another_execution(
    store: DrillStore,
) -> None:
    now = int(time.time())
    store.acquire_lease(SERVICE, "d-1", now + 60, ARN)
    store.join_shared_lease("service:orders", "d-2", now + 60, ARN + "-2")

    with pytest.raises(DrillInProgress, match="held by drill d-1"):
        store.join_shared_lease(SERVICE, "d-2", now + 60, ARN + "-2")
    with pytest.raises(DrillInProgress, match="multi-region fault"):
        store.join_shared_lease("service:orders", "d-2", now + 60, ARN + "-other")


def test_the_last_live_member_deletes_a_shared_lease(store: DrillStore) -> None:
    now = int(time.time())
    for member in ("d-1", "d-2"):
        store.create_drill(drill_id=member, execution_arn=f"{ARN}-{member}", service="payments",
                           pattern="active-passive", mode="live", spec_digest="ab" * 32, started_at_ms=1_000,
                           lease_keys=[SERVICE])
        store.join_shared_lease(SERVICE, member, now + 60, f"{ARN}-{member}")

    store.finish_drill("d-1", status="COMPLETED", verdict="PASS")
    first_left = store.release_lease(SERVICE, "d-1")
    still_held = store.lease_holder(SERVICE)
    last_left = store.release_lease(SERVICE, "d-2")

    assert (first_left, still_held, last_left) == (True, SHARED_HOLDER, True)
    assert store.lease(SERVICE) is None
    assert not store.release_lease(SERVICE, "d-2")  # twice is fine


def test_a_member_whose_drill_ended_is_dropped_when_another_joins(store: DrillStore) -> None:
    now = int(time.time())
    store.create_drill(drill_id="d-1", execution_arn=ARN, service="payments", pattern="active-passive", mode="live",
                       spec_digest="ab" * 32, started_at_ms=1_000, lease_keys=[SERVICE])
    store.join_shared_lease(SERVICE, "d-1", now + 60, ARN)
    store.finish_drill("d-1", status="COMPLETED", verdict="PASS")

    store.join_shared_lease(SERVICE, "d-2", now + 60, ARN + "-2")

    lease = store.lease(SERVICE)
    assert lease is not None and lease.members == {"d-2": ARN + "-2"}


def test_an_expired_shared_lease_is_taken_over_by_one_drill(store: DrillStore) -> None:
    now = int(time.time())
    store.join_shared_lease(SERVICE, "d-1", now - 1, ARN)

    store.acquire_lease(SERVICE, "d-2", now + 60, ARN + "-2")

    assert store.lease_holder(SERVICE) == "d-2"
    assert not store.release_lease(SERVICE, "d-1")


def seal(drill_id: str, sequence: int, previous: tuple[str, str] | None, digest: str) -> ManifestSeal:
    return ManifestSeal(manifest_digest=digest, manifest_key=f"drills/payments/{drill_id}/manifest.json",
                        sequence=sequence, previous_drill_id=previous[0] if previous else None,
                        previous_manifest_digest=previous[1] if previous else None,
                        manifest_created_at="2024-05-01T12:00:00.000+00:00")


def test_the_chain_head_moves_only_from_the_head_it_was_read_at_and_seals_the_drills_record(
    store: DrillStore,
) -> None:
    create(store, "d-1")
    create(store, "d-2")
    first, second = seal("d-1", 1, None, "11" * 32), seal("d-2", 2, ("d-1", "11" * 32), "22" * 32)

    assert store.chain_head("payments") is None
    assert store.advance_chain("payments", None, "d-1", first)
    head = store.chain_head("payments")
    assert not store.advance_chain("payments", None, "d-2", second)  # read before d-1 moved it
    assert store.advance_chain("payments", head, "d-2", second)

    assert store.chain_head("payments") == ChainHead(digest="22" * 32, drill_id="d-2", sequence=2)
    records = [store.get_drill("d-1"), store.get_drill("d-2")]
    assert [record.seal if record else None for record in records] == [first, second]


def test_a_drill_is_sealed_once(store: DrillStore) -> None:
    create(store, "d-1")
    assert store.advance_chain("payments", None, "d-1", seal("d-1", 1, None, "11" * 32))
    head = store.chain_head("payments")

    again = store.advance_chain("payments", head, "d-1", seal("d-1", 2, ("d-1", "11" * 32), "33" * 32))

    record = store.get_drill("d-1")
    assert again is False
    assert record is not None and record.manifest_digest == "11" * 32
    assert store.chain_head("payments") == head


def test_a_drill_without_a_record_is_not_sealed(store: DrillStore) -> None:
    assert not store.advance_chain("payments", None, "d-9", seal("d-9", 1, None, "11" * 32))
    assert store.chain_head("payments") is None


def test_a_fresh_table_continues_a_chain_kept_elsewhere_but_never_replaces_a_head(store: DrillStore) -> None:
    kept = ChainHead(digest="44" * 32, drill_id="d-7", sequence=7)

    assert store.continue_chain("payments", kept)
    assert not store.continue_chain("payments", ChainHead(digest="55" * 32, drill_id="d-1", sequence=1))

    assert store.chain_head("payments") == kept
