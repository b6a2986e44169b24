"""The go/no-go gate under the real ASL (docs/architecture.md §2, §9): approved, the drill runs; rejected or timed
out, it ends CANCELLED with nothing injected, the mesh byte-identical, the leases released and the evidence naming
the decision. Rejected with `livefire reject --stack` (the moto stack stands in for a deployed one), timed out with
no one to ask, approved at `livefire run`'s terminal prompt."""

from __future__ import annotations

import getpass
import io
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from livefire.spec import parse_spec
from livefire.store import DrillStore
from livefire_local.aws import LocalStack
from livefire_local.cli import main
from livefire_local.gate import LocalGate
from livefire_local.runner import follow_execution, sandbox_session, start_drill
from livefire_local.sandbox.mesh import SandboxMesh
from tests.component.test_aws_cli import create_stack, livefire_stack_outputs
from tests.conftest import MESH_DIR, ROOT, sandbox_spec_document

pytestmark = pytest.mark.slow


def gated(timeout: str = "60s") -> dict[str, Any]:
    return sandbox_spec_document(approval={"timeout": timeout})


@pytest.fixture
def session() -> Iterator[tuple[SandboxMesh, LocalStack]]:
    with sandbox_session(parse_spec(gated()), MESH_DIR, ROOT) as (mesh, stack):
        yield mesh, stack


def run(stack: LocalStack, drill_id: str, document: dict[str, Any], *,
        answer: str | None = None) -> tuple[dict[str, Any], LocalGate]:
    """One drill, its gate answered as ``livefire run`` answers it: ``answer`` typed at the prompt (None: no
    terminal, the gate waits out its timeout)."""
    store = DrillStore(boto3.resource("dynamodb").Table(stack.table))
    terminal = None
    if answer is not None:
        read_end, write_end = os.pipe()
        os.write(write_end, answer.encode())
        os.close(write_end)
        terminal = os.fdopen(read_end)
    gate = LocalGate(store, stack.sfn, drill_id, approve=False, out=io.StringIO(), terminal=terminal)
    try:
        execution = follow_execution(stack, start_drill(stack, drill_id, {"spec": document}), 90.0, gate.on_event)
    finally:
        if terminal is not None:
            terminal.close()
    return execution, gate


def reject_on_the_stack(stack: LocalStack, drill_id: str, reason: str, limit_s: float = 60.0) -> tuple[
        dict[str, Any], int]:
    """Start the drill, wait for its gate, and `livefire reject` it on the stack (named by its outputs)."""
    create_stack(drill_id, livefire_stack_outputs(stack))
    store = DrillStore(boto3.resource("dynamodb").Table(stack.table))
    execution_arn = start_drill(stack, drill_id, {"spec": gated()})
    give_up = time.monotonic() + limit_s
    while (record := store.get_drill(drill_id)) is None or record.approval_status != "PENDING":
        assert time.monotonic() < give_up, f"drill {drill_id} never reached its gate"
        time.sleep(0.2)
    code = main(["reject", drill_id, "--reason", reason, "--stack", drill_id])
    return follow_execution(stack, execution_arn, 90.0, lambda _event: None), code


def report(stack: LocalStack, drill_id: str) -> str:
    body = stack.s3.get_object(Bucket=stack.bucket, Key=f"drills/payments/{drill_id}/report.md")["Body"]
    text: str = body.read().decode()
    return text


def evidence(stack: LocalStack, drill_id: str, name: str) -> dict[str, Any]:
    body = stack.s3.get_object(Bucket=stack.bucket, Key=f"drills/payments/{drill_id}/{name}")["Body"]
    document: dict[str, Any] = json.loads(body.read())
    return document


def test_an_approved_drill_runs_and_a_rejected_or_unanswered_one_is_cancelled_untouched(
        session: tuple[SandboxMesh, LocalStack], unique_id: str, capsys: pytest.CaptureFixture[str]) -> None:
    mesh, stack = session
    store = DrillStore(boto3.resource("dynamodb").Table(stack.table))
    before = mesh.snapshot()

    rejected, rejected_code = reject_on_the_stack(stack, f"{unique_id}-r", "too close to the release")
    timed_out, _ = run(stack, f"{unique_id}-t", gated(timeout="1s"))
    unchanged = mesh.snapshot() == before
    approved, gate = run(stack, f"{unique_id}-a", gated(), answer="yes\n")
    again = main(["approve", f"{unique_id}-r", "--stack", f"{unique_id}-r"])
    status = main(["status", f"{unique_id}-r", "--stack", f"{unique_id}-r"])

    out, err = capsys.readouterr()
    decider = boto3.client("sts").get_caller_identity()["Arn"]
    assert rejected_code == 0 and f"drill {unique_id}-r: rejected by {decider}" in out
    assert again == 2 and "is not waiting for approval" in err
    assert status == 0 and f"REJECTED by {decider} (too close to the release)" in out
    assert (rejected["status"], rejected.get("error")) == ("FAILED", "DrillCancelled")
    assert (timed_out["status"], timed_out.get("error")) == ("FAILED", "DrillCancelled")
    assert unchanged
    for drill_id in (f"{unique_id}-r", f"{unique_id}-t"):
        record = store.get_drill(drill_id)
        assert record is not None and (record.status, record.verdict) == ("CANCELLED", "CANCELLED")
        assert record.approval_token is None
        assert store.faults_of(drill_id) == []
    assert f"rejected at the go/no-go gate by {decider} (too close to the release)" in report(stack, f"{unique_id}-r")
    assert "no decision at the go/no-go gate within 1s" in report(stack, f"{unique_id}-t")
    assert evidence(stack, f"{unique_id}-r", "approval.json")["decidedBy"] == decider
    assert evidence(stack, f"{unique_id}-t", "approval.json")["status"] == "TIMED_OUT"
    assert approved["status"] == "SUCCEEDED", approved.get("cause")
    assert evidence(stack, f"{unique_id}-a", "approval.json")["status"] == "APPROVED"
    assert gate.decided == "APPROVED"
    record = store.get_drill(f"{unique_id}-a")
    assert record is not None and record.verdict == "PASS" and record.approval_decided_by == getpass.getuser()
    assert [f.status for f in store.faults_of(f"{unique_id}-a")] == ["RESTORED"]
    assert store.leases_held_by(f"{unique_id}-r") == store.leases_held_by(f"{unique_id}-a") == []
