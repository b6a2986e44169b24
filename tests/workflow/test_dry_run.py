"""A dry run proves the drill would work and changes nothing (issue 13): Inject sends the fault's exact patch with
``dryRun=All`` and asks a SelfSubjectAccessReview for every verb the fault and its restore need. A dry run that
would fail ends INCONCLUSIVE naming why; every dry run says that nothing was patched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from livefire.assessment import Assessment
from livefire.spec import parse_spec
from livefire.store import DrillStore
from livefire_local.aws import LocalStack
from livefire_local.runner import copy_evidence, follow_execution, sandbox_session, start_drill
from livefire_local.sandbox.mesh import SandboxMesh
from tests.conftest import MESH_DIR, ROOT, sandbox_spec_document

pytestmark = pytest.mark.slow
PRIMARY = "payments-use1"
Session = tuple[SandboxMesh, LocalStack]


@pytest.fixture(scope="module")
def session() -> Iterator[Session]:
    with sandbox_session(parse_spec(sandbox_spec_document()), MESH_DIR, ROOT) as (mesh, stack):
        yield mesh, stack


def dry_run(session: Session, drill_id: str, tmp_path: Path, **fault: Any) -> tuple[Assessment, str, list[str]]:
    """Run a dry run of the sandbox drill: its assessment, report.md and the fault record's problems. The mesh is
    byte-identical afterwards and no write reached it."""
    mesh, stack = session
    before = mesh.snapshot()
    document = sandbox_spec_document(mode="dry-run")
    document["fault"] = {**document["fault"], **fault}
    execution = follow_execution(stack, start_drill(stack, drill_id, {"spec": document}), 90.0, lambda _e: None)
    assert execution["status"] == "FAILED" and execution.get("error") == "DrillVerdictFail", execution.get("cause")
    assert mesh.snapshot() == before
    patches = [r for r in mesh.apis[PRIMARY].requests if r.method == "PATCH"]
    assert all(r.query == {"dryRun": "All"} for r in patches)  # only ever a server-side dry run
    [fault_record] = DrillStore(boto3.resource("dynamodb").Table(stack.table)).faults_of(drill_id)
    assert fault_record.status == "SKIPPED" and fault_record.injected_at_ms is None
    evidence = copy_evidence(stack, f"drills/payments/{drill_id}/", tmp_path / drill_id)
    assessment = Assessment.model_validate(json.loads((evidence / "assessment.json").read_text()))
    return assessment, (evidence / "report.md").read_text(), fault_record.dry_run_problems


def test_a_dry_run_that_would_work_patches_nothing_and_says_so(session: Session, tmp_path: Path) -> None:
    assessment, report, problems = dry_run(session, "dry-run-ok", tmp_path)

    assert problems == []
    assert assessment.verdict == "INCONCLUSIVE" and assessment.verdict_reason.startswith("dry run: nothing was patched")
    assert assessment.findings[0].id == "dryRun" and assessment.findings[0].status == "PASS"
    assert "dry run: nothing was patched" in report.split("## Findings")[0]  # the verdict line
    assert any(r.query == {"dryRun": "All"} for r in session[0].apis[PRIMARY].requests if r.method == "PATCH")


def test_a_dry_run_on_a_route_that_does_not_exist_ends_inconclusive_naming_the_route(
        session: Session, tmp_path: Path) -> None:
    target = {**sandbox_spec_document()["fault"]["target"], "route": "no-such-route"}

    assessment, report, problems = dry_run(session, "dry-run-no-route", tmp_path, target=target)

    assert problems == ["VirtualService payments/payments on sandbox:payments-use1 has no http route named "
                        "'no-such-route'"]
    assert assessment.verdict == "INCONCLUSIVE" and assessment.findings[0].status == "INCONCLUSIVE"
    assert "no http route named 'no-such-route'" in assessment.verdict_reason
    assert "no http route named 'no-such-route'" in report.split("## Findings")[0]


def test_a_dry_run_under_rbac_that_forbids_the_patch_ends_inconclusive_naming_the_verb(
        session: Session, tmp_path: Path) -> None:
    mesh, _stack = session
    mesh.apis[PRIMARY].rbac.forbid("patch", "networking.istio.io", "virtualservices", "payments")
    try:
        assessment, _report, problems = dry_run(session, "dry-run-rbac", tmp_path)
    finally:
        mesh.apis[PRIMARY].rbac.allow_everything()

    assert any("RBAC: this function may not patch virtualservices.networking.istio.io 'payments'" in p
               for p in problems)
    assert assessment.verdict == "INCONCLUSIVE"
    assert "may not patch virtualservices" in assessment.verdict_reason
