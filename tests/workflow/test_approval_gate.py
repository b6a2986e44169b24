"""The go/no-go gate under the real ASL (docs/architecture.md §2, §9): approved, the drill runs; rejected or timed
out, it ends CANCELLED with nothing injected, the mesh byte-identical, the leases released and the evidence naming
the decision."""

from __future__ import annotations

import getpass
import io
import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from livefire.spec import parse_spec
from livefire.store import DrillStore
from livefire_local.aws import LocalStack
from livefire_local.gate import LocalGate
from livefire_local.runner import follow_execution, sandbox_session, start_drill
from livefire_local.sandbox.mesh import SandboxMesh
from tests.conftest import MESH_DIR, ROOT, sandbox_spec_document

pytestmark = pytest.mark.slow


def gated(timeout: str = "30s") -> dict[str, Any]:
    return sandbox_spec_document(approval={"timeout": timeout, "approvers": [getpass.getuser()]})


@pytest.fixture
def session() -> Iterator[tuple[SandboxMesh, LocalStack]]:
    with sandbox_session(parse_spec(gated()), MESH_DIR, ROOT) as (mesh, stack):
        yield mesh, stack


def run(stack: LocalStack, drill_id: str, document: dict[str, Any], *, approve: bool = False,
        answer: str | None = None) -> tuple[dict[str, Any], LocalGate]:
    """One drill, its gate answered as ``livefire run`` answers it: ``--approve``, or ``answer`` typed at the prompt
    (None: no terminal, the gate waits out its timeout)."""
    store = DrillStore(boto3.resource("dynamodb").Table(stack.table))
    terminal = None
    if answer is not None:
        read_end, write_end = os.pipe()
        os.write(write_end, answer.encode())
        os.close(write_end)
        terminal = os.fdopen(read_end)
    gate = LocalGate(store, stack.sfn, drill_id, approve=approve, out=io.StringIO(), terminal=terminal)
    try:
        execution = follow_execution(stack, start_drill(stack, drill_id, {"spec": document}), 90.0, gate.on_event)
    finally:
        if terminal is not None:
            terminal.close()
    return execution, gate


def report(stack: LocalStack, drill_id: str) -> str:
    body = stack.s3.get_object(Bucket=stack.bucket, Key=f"drills/payments/{drill_id}/report.md")["Body"]
    text: str = body.read().decode()
    return text


def evidence(stack: LocalStack, drill_id: str, name: str) -> dict[str, Any]:
    body = stack.s3.get_object(Bucket=stack.bucket, Key=f"drills/payments/{drill_id}/{name}")["Body"]
    document: dict[str, Any] = json.loads(body.read())
    return document


def test_an_approved_drill_runs_and_a_rejected_or_unanswered_one_is_cancelled_untouched(
        session: tuple[SandboxMesh, LocalStack], unique_id: str) -> None:
    mesh, stack = session
    store = DrillStore(boto3.resource("dynamodb").Table(stack.table))
    before = mesh.snapshot()

    rejected, _ = run(stack, f"{unique_id}-r", gated(), answer="too close to the release\n")
    timed_out, _ = run(stack, f"{unique_id}-t", gated(timeout="1s"))
    unchanged = mesh.snapshot() == before
    approved, gate = run(stack, f"{unique_id}-a", gated(), approve=True)

    assert (rejected["status"], rejected.get("error")) == ("FAILED", "DrillCancelled")
    assert (timed_out["status"], timed_out.get("error")) == ("FAILED", "DrillCancelled")
    assert unchanged
    for drill_id in (f"{unique_id}-r", f"{unique_id}-t"):
        record = store.get_drill(drill_id)
        assert record is not None and (record.status, record.verdict) == ("CANCELLED", "CANCELLED")
        assert record.approval_token is None
        assert store.faults_of(drill_id) == []
    assert f"rejected at the go/no-go gate by {getpass.getuser()} (too close to the release)" in \
        report(stack, f"{unique_id}-r")
    assert "no decision at the go/no-go gate within 1s" in report(stack, f"{unique_id}-t")
    assert evidence(stack, f"{unique_id}-r", "approval.json")["decidedBy"] == getpass.getuser()
    assert evidence(stack, f"{unique_id}-t", "approval.json")["status"] == "TIMED_OUT"
    assert approved["status"] == "SUCCEEDED", approved.get("cause")
    assert evidence(stack, f"{unique_id}-a", "approval.json")["status"] == "APPROVED"
    assert gate.decided == "APPROVED"
    record = store.get_drill(f"{unique_id}-a")
    assert record is not None and record.verdict == "PASS" and record.approval_decided_by == getpass.getuser()
    assert [f.status for f in store.faults_of(f"{unique_id}-a")] == ["RESTORED"]
    assert store.leases_held_by(f"{unique_id}-r") == store.leases_held_by(f"{unique_id}-a") == []
