"""fault.kind fis under moto: Inject starts the FIS experiment and records it, and every way a drill can end
(the rollback, the emergency rollback after an Inject error, the guardian, the sweeper, an Inject that lost a race
with a rollback) leaves it ended, with its id and states in the evidence."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto.fis.models import fis_backends
from moto.moto_api import state_manager

from livefire.contracts import InjectRequest, Plan, PlanRequest, RollbackRequest
from livefire.errors import FaultInjectionFailed
from livefire.faults import fis
from livefire.faults.lifecycle import inject_faults, restore_drill, rollback_faults
from livefire.guardian import GuardianEvent, guard
from livefire.planning import plan_drill
from livefire.store import FaultRecord
from tests.component.evidence_stack import REGION, EvidenceStack, evidence_stack
from tests.conftest import sandbox_spec_document

__all__ = ["evidence_stack"]  # the fixture, imported for pytest
ACCOUNT = "123456789012"
LATER = 4_000_000_000  # the sweeper's clock (epoch s), once every fault has expired


@pytest.fixture
def stack(evidence_stack: EvidenceStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[EvidenceStack]:
    # Every GetExperiment moves moto's experiment on by half a state: pending, initiating, running take two
    # polls each, and a running experiment stays running until it is stopped (it would complete on its own
    # only after two more polls, which a drill does not make between Inject and Rollback).
    state_manager.set_transition(model_name="fis::experiment", transition={"progression": "manual", "times": 2})
    monkeypatch.setattr(fis, "POLL_S", 0.01)
    fis._client.cache_clear()
    yield evidence_stack
    state_manager.unset_transition("fis::experiment")


def fis_client() -> Any:
    return boto3.client("fis", region_name=REGION)


def template(description: str = "az power interruption") -> str:
    created = fis_client().create_experiment_template(
        clientToken=description, description=description, stopConditions=[{"source": "none"}],
        actions={"wait": {"actionId": "aws:fis:wait", "parameters": {"duration": "PT5M"}}},
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/fis",
    )
    return str(created["experimentTemplate"]["id"])


def fis_document(template_id: str) -> dict[str, Any]:
    document = sandbox_spec_document()
    document["fault"] = {"kind": "fis", "region": REGION, "fis": {"experimentTemplateId": template_id,
                                                                   "startTimeout": "5s", "stopTimeout": "5s"}}
    for region in document["regions"]:
        region.pop("cluster")
    return document


def plan(stack: EvidenceStack, drill_id: str, template_id: str) -> Plan:
    arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:livefire-local-DrillStateMachine:{drill_id}"
    return plan_drill(PlanRequest(drill_id=drill_id, execution_arn=arn,
                                  execution_input={"spec": fis_document(template_id)}), stack.runtime)


def record(stack: EvidenceStack, drill_id: str) -> FaultRecord:
    [fault] = stack.store.faults_of(drill_id)
    return fault


def experiment(experiment_id: str) -> Any:
    """The experiment as moto holds it (reading it through the API would move its state on)."""
    return fis_backends[ACCOUNT][REGION].experiments[experiment_id]


def document(stack: EvidenceStack, fault: FaultRecord) -> dict[str, Any]:
    doc: dict[str, Any] = stack.runtime.get_json(fault.snapshot_key)
    return doc


def statuses(doc: dict[str, Any]) -> list[str]:
    return [state["status"] for state in doc["states"]]


@contextmanager
def before_call(client: Any, operation: str, action: Callable[[], tuple[int, str] | None]) -> Iterator[list[int]]:
    """Run ``action`` once, just before the client's next ``operation`` call; when it returns (status, code),
    answer the call with that AWS error instead of sending it."""
    fired: list[int] = []
    event = f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}"

    def hook(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if fired:
            return None
        fired.append(1)
        error = action()
        if error is None:
            return None
        response = AWSResponse(params.get("url", ""), error[0], {}, None)
        response._content = b""
        return response, {"Error": {"Code": error[1], "Message": f"injected {error[1]}"},
                          "ResponseMetadata": {"HTTPStatusCode": error[0]}}

    client.meta.events.register_first(event, hook, unique_id=f"test-fis-{operation}")
    try:
        yield fired
    finally:
        client.meta.events.unregister(event, unique_id=f"test-fis-{operation}")
    assert fired, f"{operation} was never called"


# ---------------------------------------------------------------- inject and rollback


def test_inject_starts_the_experiment_tagged_with_the_drill_and_injects_when_it_runs(
        stack: EvidenceStack, unique_id: str) -> None:
    drill = plan(stack, unique_id, template())

    [state] = inject_faults(InjectRequest(plan=drill), stack.runtime).faults

    fault = record(stack, unique_id)
    assert state.status == "INJECTED" and fault.status == "INJECTED"
    assert fault.external_id is not None and experiment(fault.external_id).status == "running"
    doc = document(stack, fault)
    assert doc["experimentId"] == fault.external_id
    assert doc["clientToken"] == f"livefire/{unique_id}/fis-{REGION}"
    assert statuses(doc) == ["pending", "initiating", "running"]
    running = doc["states"][-1]  # the injection bracket: from the poll before the one that saw it running
    assert fault.injected_at_ms == running["notBeforeMs"] == state.injected_at_ms
    assert fault.injection_answered_at_ms == running["seenAtMs"] == state.injection_answered_at_ms
    assert running["notBeforeMs"] <= running["previousPollAtMs"] < running["seenAtMs"]
    tags = fis_client().list_tags_for_resource(resourceArn=experiment(fault.external_id).arn)["tags"]
    assert tags == {"livefire:drill-id": unique_id, "livefire:fault-id": f"fis-{REGION}"}
    assert drill.faults[0].lease_key.startswith(f"fis:{REGION}/") and drill.faults[0].cluster is None


def test_the_rollback_stops_the_running_experiment_and_records_its_states(stack: EvidenceStack,
                                                                           unique_id: str) -> None:
    drill = plan(stack, unique_id, template())
    inject_faults(InjectRequest(plan=drill), stack.runtime)

    [state] = rollback_faults(RollbackRequest(plan=drill), stack.runtime).faults

    fault = record(stack, unique_id)
    assert (fault.status, fault.restored_by) == ("RESTORED", "rollback") and state.status == "RESTORED"
    assert fault.external_id is not None and experiment(fault.external_id).status == "stopped"
    doc = document(stack, fault)
    assert statuses(doc) == ["pending", "initiating", "running", "stopping", "stopped"]
    assert doc["stopRequestedBy"] == "rollback" and doc["stopConditionFired"] is False
    assert doc["actions"]["wait"]["state"]["status"] == "stopped"
    assert fault.restored_at_ms is not None and fault.injected_at_ms is not None
    assert fault.restored_at_ms >= fault.injected_at_ms
    assert fault.restore_requested_at_ms == doc["stopRequestedAtMs"] <= fault.restored_at_ms
    assert "stopped by livefire" in (fault.detail or "")


def test_a_second_rollback_leaves_the_ended_experiment_alone(stack: EvidenceStack, unique_id: str) -> None:
    drill = plan(stack, unique_id, template())
    inject_faults(InjectRequest(plan=drill), stack.runtime)
    rollback_faults(RollbackRequest(plan=drill), stack.runtime)
    stops_before = len(document(stack, record(stack, unique_id))["states"])

    again = restore_drill(unique_id, stack.runtime, planned=drill.faults, actor="guardian")

    assert again.restored == 0 and again.failures == []
    fault = record(stack, unique_id)
    assert fault.restored_by == "rollback"
    assert len(document(stack, fault)["states"]) == stops_before


def test_an_inject_error_after_the_start_leaves_the_experiment_to_the_emergency_rollback(
        stack: EvidenceStack, unique_id: str) -> None:
    drill = plan(stack, unique_id, template())
    client = fis._client(REGION)

    with before_call(client, "GetExperiment", lambda: (500, "InternalServerException")), \
            pytest.raises(Exception, match="InternalServerException"):
        inject_faults(InjectRequest(plan=drill), stack.runtime)
    fault = record(stack, unique_id)
    assert fault.status == "PENDING" and fault.external_id is not None  # the id was stored before the error
    assert experiment(fault.external_id).status in ("pending", "initiating")

    rollback_faults(RollbackRequest(plan=drill, emergency=True), stack.runtime)

    fault = record(stack, unique_id)
    assert (fault.status, fault.restored_by) == ("RESTORED", "emergency-rollback")
    assert fault.external_id is not None and experiment(fault.external_id).status == "stopped"


def test_a_retried_inject_gets_the_same_experiment_not_a_second_one(stack: EvidenceStack, unique_id: str) -> None:
    template_id = template()
    drill = plan(stack, unique_id, template_id)
    with before_call(fis._client(REGION), "GetExperiment", lambda: (503, "ServiceUnavailable")), \
            pytest.raises(Exception, match="ServiceUnavailable"):
        inject_faults(InjectRequest(plan=drill), stack.runtime)

    [state] = inject_faults(InjectRequest(plan=drill), stack.runtime).faults

    assert state.status == "INJECTED"
    started = fis_client().list_experiments(experimentTemplateId=template_id)["experiments"]
    assert [e["id"] for e in started] == [record(stack, unique_id).external_id]


def test_a_rollback_finds_by_its_tags_an_experiment_whose_id_was_never_stored(stack: EvidenceStack,
                                                                                unique_id: str) -> None:
    drill = plan(stack, unique_id, template())
    table_client = stack.store._table.meta.client  # the record update that would store the id fails
    with before_call(table_client, "UpdateItem", lambda: (500, "InternalServerError")), \
            pytest.raises(Exception, match="InternalServerError"):
        inject_faults(InjectRequest(plan=drill), stack.runtime)
    assert record(stack, unique_id).external_id is None
    [running] = fis_client().list_experiments()["experiments"]

    outcome = restore_drill(unique_id, stack.runtime, actor="sweeper")

    assert outcome.failures == [] and outcome.restored == 1
    fault = record(stack, unique_id)
    assert (fault.status, fault.external_id) == ("RESTORED", running["id"])
    assert experiment(running["id"]).status == "stopped"


def test_an_inject_whose_record_a_rollback_closed_meanwhile_stops_its_own_experiment(
        stack: EvidenceStack, unique_id: str) -> None:
    drill = plan(stack, unique_id, template())

    def concurrent_rollback() -> None:  # runs while StartExperiment is in flight: nothing to stop yet
        outcome = restore_drill(unique_id, stack.runtime, planned=drill.faults, actor="emergency-rollback")
        assert outcome.failures == []

    with before_call(fis._client(REGION), "StartExperiment", concurrent_rollback), \
            pytest.raises(FaultInjectionFailed, match=r"rolled back while experiment \w+ was being started"):
        inject_faults(InjectRequest(plan=drill), stack.runtime)

    fault = record(stack, unique_id)
    assert (fault.status, fault.restored_by) == ("RESTORED", "inject")
    assert fault.external_id is not None and experiment(fault.external_id).status == "stopped"


def test_a_refused_start_fails_the_inject_and_the_rollback_closes_the_record_without_stopping(
        stack: EvidenceStack, unique_id: str) -> None:
    drill = plan(stack, unique_id, "EXTnosuchtemplate1")

    with pytest.raises(FaultInjectionFailed, match="ResourceNotFoundException"):
        inject_faults(InjectRequest(plan=drill), stack.runtime)
    [state] = rollback_faults(RollbackRequest(plan=drill, emergency=True), stack.runtime).faults

    assert state.status == "RESTORED"
    assert "refused" in (state.detail or "")
    assert fis_client().list_experiments()["experiments"] == []


def test_an_experiment_that_completed_on_its_own_is_not_stopped(stack: EvidenceStack, unique_id: str) -> None:
    drill = plan(stack, unique_id, template())
    inject_faults(InjectRequest(plan=drill), stack.runtime)
    fault = record(stack, unique_id)
    assert fault.external_id is not None
    experiment(fault.external_id).status = "completed"  # its actions ran to their end during the fault window

    rollback_faults(RollbackRequest(plan=drill), stack.runtime)

    doc = document(stack, record(stack, unique_id))
    assert doc["stopRequestedAtMs"] is None and doc["stopConditionFired"] is False
    assert statuses(doc)[-1] == "completed"
    assert "completed before livefire asked" in (record(stack, unique_id).detail or "")


def test_an_experiment_its_stop_condition_stopped_is_reported_as_such(stack: EvidenceStack,
                                                                        unique_id: str) -> None:
    drill = plan(stack, unique_id, template())
    inject_faults(InjectRequest(plan=drill), stack.runtime)
    fault = record(stack, unique_id)
    assert fault.external_id is not None
    experiment(fault.external_id).status = "stopped"  # an alarm of the template's stop conditions went off

    rollback_faults(RollbackRequest(plan=drill), stack.runtime)

    doc = document(stack, record(stack, unique_id))
    assert doc["stopConditionFired"] is True and doc["stopRequestedAtMs"] is None
    assert "stop condition" in (record(stack, unique_id).detail or "")


# ---------------------------------------------------------------- the guardian and the sweeper


def ended(drill: Plan, status: str) -> GuardianEvent:
    return GuardianEvent.from_event({
        "detail-type": "Step Functions Execution Status Change", "source": "aws.states",
        "detail": {"executionArn": drill.execution_arn, "name": drill.drill_id, "status": status},
    })


def test_the_guardian_stops_the_experiment_of_an_execution_that_was_stopped(stack: EvidenceStack,
                                                                             unique_id: str) -> None:
    drill = plan(stack, unique_id, template())
    inject_faults(InjectRequest(plan=drill), stack.runtime)

    report = guard(ended(drill, "ABORTED"), stack.runtime)

    assert report.faults_restored == 1 and report.failures == []
    fault = record(stack, unique_id)
    assert (fault.status, fault.restored_by) == ("RESTORED", "guardian")
    assert fault.external_id is not None and experiment(fault.external_id).status == "stopped"
    assert stack.store.active_leases() == []


def test_the_sweeper_stops_an_experiment_whose_fault_expired(stack: EvidenceStack, unique_id: str) -> None:
    drill = plan(stack, unique_id, template())
    inject_faults(InjectRequest(plan=drill), stack.runtime)

    report = guard(GuardianEvent.from_event({"sweep": True}), stack.runtime, now=LATER,
                   status_of=lambda _arn: "RUNNING")

    assert report.faults_restored == 1 and report.failures == []
    fault = record(stack, unique_id)
    assert (fault.status, fault.restored_by) == ("RESTORED", "sweeper")
    assert fault.external_id is not None and experiment(fault.external_id).status == "stopped"


def test_a_stop_that_never_ends_fails_the_rollback_and_leaves_the_fault_for_the_sweeper(
        stack: EvidenceStack, unique_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    drill = plan(stack, unique_id, template())
    inject_faults(InjectRequest(plan=drill), stack.runtime)
    key = record(stack, unique_id).snapshot_key
    stack.runtime.put_json(key, {**stack.runtime.get_json(key), "stopTimeoutS": 0.2})  # a short bound, for the test
    state_manager.set_transition(model_name="fis::experiment", transition={"progression": "manual", "times": 10**6})

    outcome = restore_drill(unique_id, stack.runtime, planned=drill.faults, actor="rollback")

    assert len(outcome.failures) == 1 and "still stopping" in outcome.failures[0]
    assert [f.fault_id for f in stack.store.active_faults()] == [f"fis-{REGION}"]
    state_manager.set_transition(model_name="fis::experiment", transition={"progression": "manual", "times": 1})
    swept = guard(GuardianEvent.from_event({"sweep": True}), stack.runtime, now=LATER,
                  status_of=lambda _arn: "FAILED")
    assert swept.failures == [] and record(stack, unique_id).restored_by == "sweeper"
