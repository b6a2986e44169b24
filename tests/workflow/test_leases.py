"""One live drill per service and per object: the leases (conditional writes with an expiry) in the store, and two
drills of one service started together through the real state machine (on one object, or on the primary's
VirtualService and the standby's Deployment)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from livefire.errors import DrillInProgress
from livefire.spec import parse_spec
from livefire.store import DrillStore
from livefire_local.aws import local_stack
from livefire_local.runner import follow_execution, sandbox_session, start_drill
from tests.conftest import LOADED_MACHINE_STEADY, MESH_DIR, ROOT, sandbox_spec_document

TARGET = "sandbox:payments-use1/payments/VirtualService/payments"
SERVICE = "service:payments"
PHASES = {"baseline": "1s", "lead": "0s", "fault": "1s", "recovery": "1s"}
# These drills judge leases, not steadiness: a 1 s baseline has ~10 probes a target, so under the default 99% floor
# one probe timed out by a stalled machine would end the winner NOT_STEADY before it injects anything.
TOLERANT = {**LOADED_MACHINE_STEADY, "availability": 80, "maxConsecutiveErrors": 3}


def lease_drill() -> dict[str, Any]:
    return sandbox_spec_document(phases=PHASES, objectives={}, steady=TOLERANT)


@pytest.fixture
def store() -> Iterator[DrillStore]:
    with local_stack(ROOT) as stack:
        yield DrillStore(boto3.resource("dynamodb").Table(stack.table))


def in_an_hour() -> int:
    return int(time.time()) + 3600


def test_a_second_drill_on_a_held_target_is_refused_and_named_the_holder(store: DrillStore) -> None:
    store.acquire_lease(TARGET, "drill-a", in_an_hour(), "arn:exec:a")

    with pytest.raises(DrillInProgress, match="held by drill drill-a"):
        store.acquire_lease(TARGET, "drill-b", in_an_hour(), "arn:exec:b")

    assert store.lease_holder(TARGET) == "drill-a"


def test_the_holder_may_take_its_own_lease_again_as_a_retried_plan_does(store: DrillStore) -> None:
    store.acquire_lease(TARGET, "drill-a", in_an_hour())

    store.acquire_lease(TARGET, "drill-a", in_an_hour() + 60)

    lease = store.lease(TARGET)
    assert lease is not None and lease.holder == "drill-a" and lease.expires_at == in_an_hour() + 60


def test_an_expired_lease_holds_nothing_and_is_taken_over(store: DrillStore) -> None:
    store.acquire_lease(TARGET, "crashed", int(time.time()) - 1)
    assert store.lease_holder(TARGET) is None

    store.acquire_lease(TARGET, "drill-b", in_an_hour())

    assert store.lease_holder(TARGET) == "drill-b"


def test_a_drill_releases_only_its_own_lease(store: DrillStore) -> None:
    store.acquire_lease(TARGET, "drill-a", in_an_hour())

    assert store.release_lease(TARGET, "drill-b") is False
    assert store.lease_holder(TARGET) == "drill-a"
    assert store.release_lease(TARGET, "drill-a") is True
    assert store.release_lease(TARGET, "drill-a") is False  # twice is fine
    assert store.lease(TARGET) is None


def test_leases_are_listed_for_the_sweeper_with_their_execution(store: DrillStore) -> None:
    store.acquire_lease(TARGET, "drill-a", in_an_hour(), "arn:exec:a")
    store.acquire_lease("sandbox:other/payments/Deployment/x", "drill-b", in_an_hour() - 60)

    leases = store.active_leases()

    assert [(lease.holder, lease.execution_arn) for lease in leases] == [("drill-b", None), ("drill-a", "arn:exec:a")]
    assert [lease.lease_key for lease in store.leases_held_by("drill-a")] == [TARGET]
    store.release_lease(TARGET, "drill-a")
    assert [lease.holder for lease in store.active_leases()] == ["drill-b"]


def test_an_expired_lease_is_released_only_while_the_same_drill_still_holds_it(store: DrillStore) -> None:
    now = int(time.time())
    store.acquire_lease(TARGET, "crashed", now - 5)
    stale = store.active_leases()[0]
    store.acquire_lease(TARGET, "drill-b", in_an_hour())  # taken over since the sweeper listed it

    assert store.release_expired_lease(stale, now) is False
    assert store.lease_holder(TARGET) == "drill-b"


def test_the_drills_of_a_multi_region_fault_share_the_service_lease_and_the_last_one_out_deletes_it(
    store: DrillStore,
) -> None:
    store.join_shared_lease(SERVICE, "drill-a", in_an_hour(), "arn:exec:a")
    store.join_shared_lease(SERVICE, "drill-b", in_an_hour(), "arn:exec:b")

    with pytest.raises(DrillInProgress, match=r"multi-region fault \(drill-a, drill-b\)"):
        store.acquire_lease(SERVICE, "drill-c", in_an_hour(), "arn:exec:c")

    assert [lease.lease_key for lease in store.leases_held_by("drill-b")] == [SERVICE]
    assert store.release_lease(SERVICE, "drill-a") and store.release_lease(SERVICE, "drill-b")  # no records: both
    assert store.lease_holder(SERVICE) == "(multi-region)"  # members without a record may still be planning
    store.release_expired_lease(store.active_leases()[0], in_an_hour() + 1)
    assert store.active_leases() == []


def standby_deployment_fault() -> dict[str, Any]:
    """Another drill of the same service: scale the standby region's Deployment to zero."""
    document = lease_drill()
    document["fault"] = {"kind": "scale-to-zero", "region": "us-west-2",
                         "target": {"namespace": "payments", "deployment": "payments-v1"}}
    return document


def run_together(documents: dict[str, dict[str, Any]]) -> None:
    """Start the drills at once on the sandbox: exactly one runs, each other one fails DrillInProgress at Plan
    (naming the winner) and touches nothing: no fault record, no evidence object, no lease, the mesh unchanged."""
    first = next(iter(documents.values()))
    with sandbox_session(parse_spec(first), MESH_DIR, ROOT) as (mesh, stack):
        before = mesh.snapshot()
        store = DrillStore(boto3.resource("dynamodb").Table(stack.table))
        arns = {name: start_drill(stack, name, {"spec": document}) for name, document in documents.items()}

        ended = {}
        for name in documents:  # each end delivers its status change to the guardian, as EventBridge would
            ended[name] = follow_execution(stack, arns[name], 60.0, lambda _event: None)
            if ended[name].get("error") == "DrillInProgress":
                running = [other for other in documents if other != name
                           and stack.sfn.describe_execution(executionArn=arns[other])["status"] == "RUNNING"]
                # the loser's guardian must not have released the winner's leases
                assert all(store.lease_holder(SERVICE) == other for other in running)

        refused = [name for name, execution in ended.items() if execution.get("error") == "DrillInProgress"]
        assert len(refused) == len(documents) - 1, {name: (e["status"], e.get("error")) for name, e in ended.items()}
        [winner] = [name for name in documents if name not in refused]
        # the winner really ran its fault
        assert [f.status for f in store.faults_of(winner)] == ["RESTORED"], (ended[winner]["status"],
                                                                              ended[winner].get("error"),
                                                                              ended[winner].get("cause"))
        for loser in refused:
            assert store.faults_of(loser) == []
            loser_record = store.get_drill(loser)
            assert loser_record is not None and loser_record.status == "REJECTED"
            assert f"held by drill {winner}" in (loser_record.reason or "")
            loser_states = [
                event["stateEnteredEventDetails"]["name"]
                for event in stack.sfn.get_execution_history(executionArn=arns[loser], maxResults=1000)["events"]
                if event["type"].endswith("StateEntered")
            ]
            assert loser_states == ["Plan"]
            listed = stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=f"drills/payments/{loser}/")
            assert listed.get("KeyCount") == 0
            assert json.loads(ended[loser]["input"])["spec"]["metadata"]["service"] == "payments"
        assert store.active_leases() == []
        assert mesh.snapshot() == before


@pytest.mark.slow
def test_two_drills_on_one_target_started_together_run_one_and_refuse_the_other(unique_id: str) -> None:
    document = lease_drill()

    run_together({f"{unique_id}-a": document, f"{unique_id}-b": document})


@pytest.mark.slow
def test_two_drills_of_one_service_on_the_primary_virtualservice_and_the_standby_deployment_run_one(
    unique_id: str,
) -> None:
    primary = lease_drill()

    run_together({f"{unique_id}-primary": primary, f"{unique_id}-standby": standby_deployment_fault()})
