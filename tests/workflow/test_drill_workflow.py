"""The real statemachines/drill.asl.json under moto's interpreter, every branch of docs/architecture.md §2, on the
sandbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from livefire.evidence.manifest import verify_evidence_dir
from livefire.spec import parse_spec
from livefire_local.aws import LocalStack
from livefire_local.runner import copy_evidence, follow_execution, sandbox_session, start_drill
from livefire_local.sandbox.mesh import SandboxMesh
from livefire_local.sandbox.store import ObjectKey
from tests.conftest import MESH_DIR, ROOT, sandbox_spec_document
from tests.keys import local_verifier

pytestmark = pytest.mark.slow
VS = ObjectKey("networking.istio.io", "virtualservices", "payments", "payments")
PRIMARY = "payments-use1"


class Drill:
    """One sandbox session (mesh + moto stack) in which a test starts and follows executions."""

    def __init__(self, mesh: SandboxMesh, stack: LocalStack) -> None:
        self.mesh = mesh
        self.stack = stack
        self.before = mesh.snapshot()

    def run(self, drill_id: str, execution_input: Any, limit_s: float = 90.0) -> dict[str, Any]:
        arn = start_drill(self.stack, drill_id, execution_input)
        return follow_execution(self.stack, arn, limit_s, lambda _event: None)

    def record(self, drill_id: str) -> dict[str, Any] | None:
        table = boto3.resource("dynamodb").Table(self.stack.table)
        item: dict[str, Any] | None = table.get_item(Key={"pk": f"DRILL#{drill_id}", "sk": "DRILL"}).get("Item")
        return item

    def fault_records(self, drill_id: str) -> list[dict[str, Any]]:
        table = boto3.resource("dynamodb").Table(self.stack.table)
        response = table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :f)",
            ExpressionAttributeValues={":pk": f"DRILL#{drill_id}", ":f": "FAULT#"},
        )
        items: list[dict[str, Any]] = response["Items"]
        return items

    def leases_held(self) -> list[dict[str, Any]]:
        table = boto3.resource("dynamodb").Table(self.stack.table)
        items: list[dict[str, Any]] = [
            item for item in table.scan()["Items"] if str(item["pk"]).startswith("LEASE#")
        ]
        return items

    def history_states(self, execution_arn: str) -> list[str]:
        events = self.stack.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        return [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]

    def assert_mesh_unchanged(self) -> None:
        assert self.mesh.snapshot()[PRIMARY][VS] == self.before[PRIMARY][VS]
        assert self.mesh.snapshot() == self.before


@pytest.fixture
def drill() -> Iterator[Drill]:
    spec = parse_spec(sandbox_spec_document())
    with sandbox_session(spec, MESH_DIR, ROOT) as (mesh, stack):
        yield Drill(mesh, stack)


def test_a_drill_that_fails_over_passes_and_leaves_verified_evidence(drill: Drill, unique_id: str,
                                                                      tmp_path: Path) -> None:
    execution = drill.run(unique_id, {"spec": sandbox_spec_document()})

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    record = drill.record(unique_id)
    assert record is not None and record["verdict"] == "PASS"
    assert record["rtoSeconds"] is not None and float(record["rtoSeconds"]) < 5
    evidence = copy_evidence(drill.stack, f"drills/payments/{unique_id}/", tmp_path / unique_id)
    for artifact in ("spec.json", "plan.json", "assessment.json", "report.md", "report.html", "cost.json",
                     "manifest.json"):
        assert (evidence / artifact).is_file(), artifact
    assert list((evidence / "samples").rglob("*.jsonl.gz"))
    assert verify_evidence_dir(evidence, verifier=local_verifier()).ok
    assert [f["status"] for f in drill.fault_records(unique_id)] == ["RESTORED"]
    assert drill.leases_held() == []
    drill.assert_mesh_unchanged()


def test_an_invalid_spec_fails_at_plan_touches_nothing_and_is_recorded(drill: Drill, unique_id: str) -> None:
    document = sandbox_spec_document()
    document["fault"]["abort"]["percnt"] = 100  # a typo'd key

    execution = drill.run(unique_id, {"spec": document})

    assert execution["status"] == "FAILED"
    assert execution.get("error") == "InvalidDrillSpec"
    assert "fault.abort.percnt" in execution.get("cause", "")
    record = drill.record(unique_id)
    assert record is not None and record["status"] == "REJECTED"
    assert drill.fault_records(unique_id) == []
    assert drill.leases_held() == []
    drill.assert_mesh_unchanged()


def test_a_failure_inside_the_chaos_branch_rolls_the_fault_back_and_records_error(
    drill: Drill, unique_id: str
) -> None:
    primary_api = drill.mesh.apis[PRIMARY]
    # The planned Rollback's write fails with a 500; the Catch's EmergencyRollback must still restore.
    primary_api.fail_next("PATCH", "virtualservices/payments", 500, times=1, skip=1)

    execution = drill.run(unique_id, {"spec": sandbox_spec_document()})

    assert execution["status"] == "FAILED"
    assert execution.get("error") == "DrillError"
    record = drill.record(unique_id)
    assert record is not None and record["verdict"] == "ERROR"
    assert [f["status"] for f in drill.fault_records(unique_id)] == ["RESTORED"]
    assert "EmergencyRollback" in drill.history_states(execution["executionArn"])
    assert drill.leases_held() == []
    drill.assert_mesh_unchanged()


def test_a_baseline_that_is_not_steady_injects_nothing(drill: Drill, unique_id: str) -> None:
    standby = drill.mesh.stores["payments-usw2"]
    deployment = ObjectKey("apps", "deployments", "payments", "payments-v1")
    scaled = standby.get(deployment)
    assert scaled is not None
    scaled["spec"]["replicas"] = 0
    standby.replace(deployment, scaled)
    drill.before = drill.mesh.snapshot()

    execution = drill.run(unique_id, {"spec": sandbox_spec_document()})

    assert execution["status"] == "FAILED"
    assert execution.get("error") == "DrillNotSteady"
    record = drill.record(unique_id)
    assert record is not None and record["verdict"] == "NOT_STEADY"
    assert drill.fault_records(unique_id) == []
    assert "Inject" not in drill.history_states(execution["executionArn"])
    assert drill.leases_held() == []
    drill.assert_mesh_unchanged()


def test_the_execution_input_may_be_the_spec_itself(drill: Drill, unique_id: str) -> None:
    document = sandbox_spec_document()
    document["phases"] = {"baseline": "1s", "lead": "0s", "fault": "1s", "recovery": "1s"}
    document["objectives"] = {}

    execution = drill.run(unique_id, document)

    record = drill.record(unique_id)
    assert record is not None and record["specDigest"] == parse_spec(document).digest()
    assert json.loads(execution["input"])["apiVersion"] == "livefire/v1"
    drill.assert_mesh_unchanged()


def test_a_vantage_with_its_own_probe_function_is_probed_by_that_function(drill: Drill, unique_id: str) -> None:
    remote_probe = "arn:aws:lambda:us-west-2:123456789012:function:livefire-ProbeFunction"
    document = sandbox_spec_document(vantages=[
        {"name": "use1", "region": "us-east-1"},
        {"name": "usw2", "region": "us-west-2", "functionArn": remote_probe},
    ])

    execution = drill.run(unique_id, {"spec": document})

    # Routing is under test, not the verdict: with two vantages sharing 2 cores, a 4 s recovery window can be
    # too short for both to see a sustained failback, which is a judged FAIL, not an error.
    assert execution.get("error") in (None, "DrillVerdictFail"), execution.get("cause")
    states = drill.history_states(execution["executionArn"])
    assert "ProbeDrillAtVantage" in states and "ProbeDrill" in states and "Evidence" in states
    keys = [obj["Key"] for obj in drill.stack.s3.list_objects_v2(
        Bucket=drill.stack.bucket, Prefix=f"drills/payments/{unique_id}/samples/")["Contents"]]
    assert {key.split("/")[4] for key in keys} == {"use1", "usw2"}
    drill.assert_mesh_unchanged()
