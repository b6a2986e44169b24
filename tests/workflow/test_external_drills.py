"""Drills whose failover something other than the mesh triggers, through the real state machine under moto:
an FIS experiment (started, and stopped by the rollback or the guardian), a webhook that scripts a sandbox outage
of known length (the RTO bracket holds the true recovery instant), and observe-only drills (nothing injected)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.fis.models import fis_backends
from moto.moto_api import state_manager

from livefire.assessment import Assessment
from livefire.evidence.manifest import verify_evidence_dir
from livefire.faults import fis
from livefire.spec import parse_spec
from livefire.store import DrillStore, FaultRecord
from livefire_local.aws import REGION, LocalStack
from livefire_local.runner import copy_evidence, follow_execution, sandbox_session, start_drill
from livefire_local.sandbox.mesh import SandboxMesh
from tests.conftest import MESH_DIR, ROOT, sandbox_spec_document
from tests.keys import local_verifier

pytestmark = pytest.mark.slow
Session = tuple[SandboxMesh, LocalStack]
SHORT = {"baseline": "1s", "lead": "0s", "fault": "2s", "recovery": "1s"}
# Outage lengths that are multiples of neither the 100 ms interval nor the 10 ms burst interval.
OUTAGES_S = (0.537, 0.918, 1.355)
# How late a probe may see a transition while three drills probe at once on a small machine (base interval 100 ms).
LOADED_MS = 500.0


def run(stack: LocalStack, drill_id: str, document: dict[str, Any], **execution_input: Any) -> dict[str, Any]:
    arn = start_drill(stack, drill_id, {"spec": document, **execution_input})
    return follow_execution(stack, arn, 90.0, lambda _event: None)  # + the guardian's status-change rule


def assessment(stack: LocalStack, drill_id: str) -> Assessment:
    body = stack.s3.get_object(Bucket=stack.bucket, Key=f"drills/payments/{drill_id}/assessment.json")["Body"]
    return Assessment.model_validate_json(body.read())


def store(stack: LocalStack) -> DrillStore:
    return DrillStore(boto3.resource("dynamodb", region_name=REGION).Table(stack.table))


def only_fault(stack: LocalStack, drill_id: str) -> FaultRecord:
    [fault] = store(stack).faults_of(drill_id)
    return fault


# ---------------------------------------------------------------- webhook: a sandbox outage of known length


@pytest.fixture(scope="class")
def no_failover() -> Iterator[Session]:
    """The webhook drill's sandbox with a primary that never fails over: the entrypoint recovers exactly when the
    outage the webhook started ends."""
    spec = parse_spec(webhook_document(1.0))
    with sandbox_session(spec, MESH_DIR, ROOT) as session:
        yield session


def webhook_document(outage_s: float) -> dict[str, Any]:
    document = sandbox_spec_document("webhook-outage", phases=SHORT, objectives={"rto": "5s"})
    document["regions"][0]["cluster"] = {"sandbox": "payments-broken-use1"}
    document["probes"]["sustain"] = "500ms"
    document["fault"]["webhook"]["inject"]["query"]["seconds"] = outage_s
    return document


class TestWebhook:
    """One sandbox session (class scope) for the several outage lengths."""

    @pytest.mark.parametrize("outage_s", OUTAGES_S)
    def test_a_webhook_outage_of_known_length_ends_inside_the_reported_rto_bracket(
            self, no_failover: Session, outage_s: float, unique_id: str) -> None:
        mesh, stack = no_failover
        before = len(mesh.control.outages)

        execution = run(stack, unique_id, webhook_document(outage_s))

        assert execution["status"] in ("SUCCEEDED", "FAILED"), execution.get("cause")
        [outage] = mesh.control.outages[before:]
        assert outage.end_ms - outage.start_ms == pytest.approx(outage_s * 1000.0)
        result = assessment(stack, unique_id)
        fault = only_fault(stack, unique_id)
        assert (fault.status, fault.restored_by) == ("RESTORED", "rollback")
        assert result.injected_at_ms == fault.injected_at_ms and result.injected_at_ms is not None
        assert result.injected_at_ms <= outage.start_ms  # the inject call's send time comes first
        bracket = result.rto_bracket
        assert bracket is not None and bracket.contains(outage.end_ms), (bracket, outage)
        assert result.rto_seconds is not None
        assert result.rto_seconds == pytest.approx((bracket.first_success_ms - result.injected_at_ms) / 1000.0)
        assert [request for request in mesh.control.requests if request[0] == "DELETE"]  # the rollback call


# ---------------------------------------------------------------- fis and observe-only drills


@pytest.fixture(scope="class")
def sandbox() -> Iterator[Session]:
    with sandbox_session(parse_spec(sandbox_spec_document()), MESH_DIR, ROOT) as (mesh, stack):
        # moto moves an experiment on by half a state per GetExperiment: it runs after four polls and keeps
        # running until it is stopped (Inject polls; nothing else reads it before the Rollback).
        state_manager.set_transition(model_name="fis::experiment", transition={"progression": "manual", "times": 2})
        fis._client.cache_clear()
        try:
            yield mesh, stack
            assert stack.lambdas.wait_idle(15.0)
        finally:
            state_manager.unset_transition("fis::experiment")


def fis_document(template_id: str) -> dict[str, Any]:
    """An FIS drill that probes the standby's endpoint as its entrypoint: its probes never go through the
    sandbox entrypoint, whose outlier detection an observe-only drill running beside it audits."""
    document = sandbox_spec_document(phases={**SHORT, "lead": "1s"}, objectives={})
    # Another path of the standby's service: an entrypoint may not be a region's own endpoint (spec validation).
    document["entrypoint"] = document["regions"][1]["endpoint"].replace("/healthz", "/entry")
    document["fault"] = {"kind": "fis", "region": REGION,
                         "fis": {"experimentTemplateId": template_id, "startTimeout": "10s", "stopTimeout": "10s"}}
    return document


def external_document(**phases: str) -> dict[str, Any]:
    document = sandbox_spec_document(phases={**SHORT, **phases})
    document["fault"] = {"kind": "external", "region": "us-east-1"}
    return document


def shared(document: dict[str, Any]) -> dict[str, Any]:
    """The drill as one part of a multi-region fault: it shares its service's lease with the others that are."""
    document["guardrails"] = {**document.get("guardrails", {}), "multiRegionFault": True}
    return document


def patient(document: dict[str, Any]) -> dict[str, Any]:
    """Probes that wait 2.5 s for an answer: an observe-only drill times the first failure it sees, and three drills
    in one process on a busy machine can stall an answer past the usual 1 s (a failure nobody scripted)."""
    document["probes"]["timeout"] = "2500ms"  # within the in-flight budget (3 targets x 2.5 s / 10 ms = 750)
    return document


def new_template(name: str) -> str:
    created = boto3.client("fis", region_name=REGION).create_experiment_template(
        clientToken=name, description=name, stopConditions=[{"source": "none"}],
        actions={"wait": {"actionId": "aws:fis:wait", "parameters": {"duration": "PT5M"}}},
        roleArn="arn:aws:iam::123456789012:role/fis",
    )
    return str(created["experimentTemplate"]["id"])


def experiment_status(experiment_id: str) -> str:
    return str(fis_backends["123456789012"][REGION].experiments[experiment_id].status)


class TestOutsideTheMesh:
    """One sandbox session (class scope) for the fis and observe-only drills."""

    def test_fis_experiments_are_stopped_by_the_rollback_or_the_guardian(
            self, sandbox: Session, unique_id: str, tmp_path: Path) -> None:
        mesh, stack = sandbox
        before = mesh.snapshot()
        planned, stopped = f"{unique_id}-fis", f"{unique_id}-stop"
        # Two drills at once (neither touches the mesh or the other's object lease; they share the service's, as
        # the drills of one multi-region fault): a planned rollback, and an execution stopped while its experiment
        # runs (the guardian ends it).
        arns = {
            planned: start_drill(stack, planned, {"spec": shared(fis_document(new_template(planned)))}),
            stopped: start_drill(stack, stopped, {"spec": shared(fis_document(new_template(stopped)))}),
        }
        wait_until(lambda: injected(stack, planned) and injected(stack, stopped), "both experiments ran")
        stack.sfn.stop_execution(executionArn=arns[stopped], error="Operator", cause="stopped mid-fault")
        executions = {drill: follow_execution(stack, arn, 90.0, lambda _event: None) for drill, arn in arns.items()}

        # the planned rollback stopped the experiment, and the evidence holds its id and states
        fault = only_fault(stack, planned)
        assert (fault.status, fault.restored_by) == ("RESTORED", "rollback")
        assert fault.external_id is not None and experiment_status(fault.external_id) == "stopped"
        evidence = copy_evidence(stack, f"drills/payments/{planned}/", tmp_path / planned)
        assert verify_evidence_dir(evidence, verifier=local_verifier()).ok
        doc = (evidence / "faults" / "fis-us-east-1-fis.json").read_text()
        for expected in (fault.external_id, '"running"', '"stopped"', '"stopConditionFired": false'):
            assert expected in doc
        report = (evidence / "report.md").read_text()
        assert "fis in us-east-1 (FIS experiment template" in report and "touches no mesh object" in report
        assert fault.external_id in (evidence / "report.html").read_text()

        # the stopped execution's experiment was stopped by the guardian
        assert executions[stopped]["status"] in ("ABORTED", "FAILED")
        fault = only_fault(stack, stopped)
        assert (fault.status, fault.restored_by) == ("RESTORED", "guardian")
        assert fault.external_id is not None and experiment_status(fault.external_id) == "stopped"
        assert store(stack).active_leases() == [] and mesh.snapshot() == before

    def test_an_observed_outage_is_timed_from_its_first_failure_to_the_primarys_recovery(
            self, sandbox: Session, unique_id: str) -> None:
        mesh, stack = sandbox
        before = mesh.snapshot()
        arn = start_drill(stack, unique_id, {"spec": patient(external_document(lead="1s", fault="3s", recovery="4s"))})
        # The incident is scripted from the drill's own window: its probes have run for the lead by the time it
        # enters Inject.
        wait_until(lambda: "Inject" in states_entered(stack, arn), "the observed drill's window began")
        wall_ms, mono = time.time() * 1000.0, time.monotonic()
        outage = mesh.regional["us-east-1"].script_outage(0.3, 1.5)  # nobody injects it: an incident
        start_ms, end_ms = wall_ms + (outage.start - mono) * 1000.0, wall_ms + (outage.end - mono) * 1000.0
        execution = follow_execution(stack, arn, 90.0, lambda _event: None)

        # the incident is timed from its first failure, and ends when the primary's endpoint recovered
        result = assessment(stack, unique_id)
        # a probe sent just before the scripted start can be answered inside the outage
        anchor = result.injected_at_ms
        assert anchor is not None and start_ms - LOADED_MS <= anchor <= start_ms + LOADED_MS, (
            f"the first failure seen was {(anchor or 0) - start_ms:+.0f} ms from the scripted start")
        detections = [d for d in (result.detection_seconds, result.entrypoint_detection_seconds) if d is not None]
        assert min(detections) == 0.0  # the anchor is the first failure seen
        # the incident ends at the send of the first success: on a busy machine a probe sent shortly before the
        # scripted end can be served after it, so the estimate may lead the truth by up to a probe's time in flight
        assert result.restored_at_ms is not None and end_ms - LOADED_MS <= result.restored_at_ms <= end_ms + LOADED_MS
        assert result.rto_seconds is not None and 0 < result.rto_seconds < 1.5  # the entrypoint failed over
        assert result.rto_bracket is not None and result.rto_bracket.last_failure_ms is not None
        assert result.rto_bracket.first_success_ms < end_ms  # the standby served before the primary was back
        assert result.failback_seconds is not None
        assert execution["status"] == "SUCCEEDED" and result.verdict == "PASS", result.verdict_reason
        assert store(stack).faults_of(unique_id) == []
        assert store(stack).active_leases() == [] and mesh.snapshot() == before

    def test_an_observe_only_drill_during_which_nothing_fails_is_inconclusive_and_says_so(
            self, sandbox: Session, unique_id: str) -> None:
        _mesh, stack = sandbox

        execution = run(stack, unique_id, external_document())

        assert execution["status"] == "FAILED" and execution.get("error") == "DrillVerdictFail"
        result = assessment(stack, unique_id)
        assert result.verdict == "INCONCLUSIVE" and result.injected_at_ms is None
        assert result.verdict_reason.startswith("nothing failed at the entrypoint or the endpoint of us-east-1")
        record = store(stack).get_drill(unique_id)
        assert record is not None and record.verdict == "INCONCLUSIVE"


def wait_until(condition: Callable[[], bool], what: str, limit_s: float = 30.0) -> None:
    give_up = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < give_up, f"never: {what}"
        time.sleep(0.05)


def injected(stack: LocalStack, drill_id: str) -> bool:
    return any(f.status == "INJECTED" for f in store(stack).faults_of(drill_id))


def states_entered(stack: LocalStack, arn: str) -> list[str]:
    events = stack.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]
