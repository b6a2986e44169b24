"""The fault takes effect while its patch is still in flight: the sandbox API applies the write at once and answers
500 ms later. The injection instant is the send instant of the patch, so the drill judges exactly as it does
with a prompt answer: same verdict, same findings, an RTO measured from the send (docs/architecture.md §5)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from livefire.assessment import Assessment
from livefire.probing.chunks import decode_chunk
from livefire.spec import parse_spec
from livefire.store import DrillStore, FaultRecord
from livefire_local.aws import LocalStack
from livefire_local.runner import copy_evidence, follow_execution, sandbox_session, start_drill
from livefire_local.sandbox.mesh import SandboxMesh
from tests.conftest import MESH_DIR, ROOT, sandbox_spec_document

pytestmark = pytest.mark.slow
PRIMARY = "payments-use1"
ANSWER_DELAY_S = 0.5


@pytest.fixture(scope="module")
def session() -> Iterator[tuple[SandboxMesh, LocalStack]]:
    with sandbox_session(parse_spec(sandbox_spec_document()), MESH_DIR, ROOT) as (mesh, stack):
        yield mesh, stack


def run(session: tuple[SandboxMesh, LocalStack], drill_id: str, tmp_path: Path) -> tuple[Assessment, FaultRecord, Path]:
    """One sandbox drill: its assessment, its fault record and its evidence folder."""
    _mesh, stack = session
    arn = start_drill(stack, drill_id, {"spec": sandbox_spec_document()})
    execution = follow_execution(stack, arn, 90.0, lambda _event: None)
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    evidence = copy_evidence(stack, f"drills/payments/{drill_id}/", tmp_path / drill_id)
    assessment = Assessment.model_validate(json.loads((evidence / "assessment.json").read_text()))
    [fault] = DrillStore(boto3.resource("dynamodb").Table(stack.table)).faults_of(drill_id)
    return assessment, fault, evidence


def findings(assessment: Assessment) -> dict[str, str]:
    return {finding.id: finding.status for finding in assessment.findings}


def failed_primary_probes_sent_between(evidence: Path, start_ms: float, end_ms: float) -> int:
    chunks = sorted((evidence / "samples").rglob("*.jsonl.gz"))
    samples = [sample for chunk in chunks for sample in decode_chunk(chunk.read_bytes())]
    return sum(1 for s in samples if s.target == "us-east-1" and not s.ok and start_ms <= s.sent_ms <= end_ms)


def test_a_fault_that_takes_effect_before_its_patch_is_answered_is_judged_as_a_prompt_one(
    session: tuple[SandboxMesh, LocalStack], tmp_path: Path,
) -> None:
    mesh, _stack = session
    prompt, prompt_fault, _ = run(session, "prompt-answer", tmp_path)

    mesh.apis[PRIMARY].delay_write_answers(ANSWER_DELAY_S)
    try:
        slow, slow_fault, evidence = run(session, "slow-answer", tmp_path)
    finally:
        mesh.apis[PRIMARY].delay_write_answers(0.0)

    assert slow_fault.injected_at_ms is not None and slow_fault.injection_answered_at_ms is not None
    assert slow_fault.injection_answered_at_ms - slow_fault.injected_at_ms >= ANSWER_DELAY_S * 1000
    # the fault really was in effect while the patch was in flight
    assert failed_primary_probes_sent_between(evidence, slow_fault.injected_at_ms,
                                              slow_fault.injection_answered_at_ms) > 0
    assert prompt.verdict == slow.verdict == "PASS"
    assert findings(slow) == findings(prompt)
    assert slow.injected_at_ms == slow_fault.injected_at_ms  # the send instant, not the answer
    assert prompt.rto_seconds is not None and slow.rto_seconds is not None and slow.rto_seconds > 0
    assert prompt_fault.injected_at_ms is not None and prompt_fault.injection_answered_at_ms is not None
