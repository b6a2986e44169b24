"""Inject and Rollback under Lambda retries and duplicate deliveries (Powertools idempotency in the drill table):
invoked through the local Lambda endpoint against the sandbox mesh, a repeated step never writes twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key

from livefire.spec import parse_spec
from livefire_local.aws import LocalStack
from livefire_local.runner import sandbox_session
from livefire_local.sandbox.mesh import SandboxMesh
from tests.conftest import MESH_DIR, ROOT, sandbox_spec_document

PRIMARY = "payments-use1"


@dataclass
class Functions:
    mesh: SandboxMesh
    stack: LocalStack

    def invoke(self, logical_id: str, payload: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        response = boto3.client("lambda").invoke(FunctionName=f"livefire-{logical_id}",
                                                 Payload=json.dumps(payload).encode())
        body: dict[str, Any] = json.loads(response["Payload"].read())
        return response.get("FunctionError"), body

    def plan(self, drill_id: str) -> dict[str, Any]:
        error, plan = self.invoke("PlanFunction", {
            "drillId": drill_id, "executionArn": f"arn:aws:states:us-east-1:123456789012:execution:sm:{drill_id}",
            "executionInput": {"spec": sandbox_spec_document()},
        })
        assert error is None, plan
        return plan

    def vs_patches(self) -> int:
        return sum(1 for r in self.mesh.apis[PRIMARY].requests
                   if r.method == "PATCH" and r.path.endswith("virtualservices/payments"))

    def idempotency_records(self, step: str) -> list[dict[str, Any]]:
        table = boto3.resource("dynamodb").Table(self.stack.table)
        items: list[dict[str, Any]] = table.query(KeyConditionExpression=Key("pk").eq(f"IDEMPOTENCY#{step}"))["Items"]
        return items


@pytest.fixture
def functions() -> Iterator[Functions]:
    with sandbox_session(parse_spec(sandbox_spec_document()), MESH_DIR, ROOT) as (mesh, stack):
        yield Functions(mesh, stack)


def test_a_retried_inject_returns_the_first_result_and_patches_once(functions: Functions, unique_id: str) -> None:
    payload = {"plan": functions.plan(unique_id)}

    first = functions.invoke("InjectFunction", payload)
    second = functions.invoke("InjectFunction", payload)

    assert first[0] is None and first[1]["faults"][0]["status"] == "INJECTED"
    assert second == first
    assert functions.vs_patches() == 1
    assert [item["status"] for item in functions.idempotency_records("inject")] == ["COMPLETED"]


def test_duplicate_injects_delivered_together_patch_once(functions: Functions, unique_id: str) -> None:
    payload = {"plan": functions.plan(unique_id)}

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: functions.invoke("InjectFunction", payload), range(2)))

    assert functions.vs_patches() == 1
    succeeded = [body for error, body in results if error is None]
    assert succeeded and all(body["faults"][0]["status"] == "INJECTED" for body in succeeded)
    # The second is refused by idempotency, or (when both pass it at once) by the fault record's write-ahead; the
    # state machine retries either, and never reads a PENDING fault as the step's result.
    refused = [body["errorType"] for error, body in results if error is not None]
    assert refused in ([], ["IdempotencyAlreadyInProgressError"], ["InjectInProgress"])


def test_an_inject_that_failed_leaves_no_record_so_its_retry_really_runs(functions: Functions, unique_id: str) -> None:
    payload = {"plan": functions.plan(unique_id)}
    functions.mesh.apis[PRIMARY].fail_next("PATCH", "virtualservices/payments", 500)

    failed = functions.invoke("InjectFunction", payload)
    retried = functions.invoke("InjectFunction", payload)

    assert failed[0] is not None and failed[1]["errorType"] == "MeshAccessError"
    assert retried[0] is None and retried[1]["faults"][0]["status"] == "INJECTED"
    assert functions.vs_patches() == 2  # the refused write, then the retry's


def test_a_repeated_rollback_restores_once_and_the_emergency_rollback_still_runs(
    functions: Functions, unique_id: str
) -> None:
    before = functions.mesh.snapshot()
    plan = functions.plan(unique_id)
    functions.invoke("InjectFunction", {"plan": plan})
    rollback = {"plan": plan, "emergency": False}

    first = functions.invoke("RollbackFunction", rollback)
    patches = functions.vs_patches()
    second = functions.invoke("RollbackFunction", rollback)
    emergency = functions.invoke("RollbackFunction", {**rollback, "emergency": True})

    assert first[0] is None and first[1]["faults"][0]["status"] == "RESTORED"
    assert second == first and functions.vs_patches() == patches == 2
    assert emergency[0] is None and emergency[1]["faults"][0]["status"] == "RESTORED"
    assert len(functions.idempotency_records("rollback")) == 2
    assert functions.mesh.snapshot() == before
