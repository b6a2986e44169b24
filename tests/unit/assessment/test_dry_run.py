"""A dry run's finding and verdict (livefire/assessment/dry_run.py), from the fault records Inject closed."""

from __future__ import annotations

from livefire.assessment.dry_run import dry_run_finding, with_dry_run
from livefire.records import FaultRecord
from tests.evidence_data import T0, drill_assessment, planned_fault


def checked(*problems: str) -> FaultRecord:
    detail = "dry run: nothing was patched" + (f"; the fault would fail: {'; '.join(problems)}" if problems else "")
    return FaultRecord(drill_id="d-1", fault_id="f-1", status="SKIPPED", planned=planned_fault(), snapshot_key="k",
                       expires_at=1, detail=detail, dry_run_problems=list(problems))


def test_a_dry_run_that_found_no_problem_passes_its_finding_but_never_the_drill() -> None:
    judged = with_dry_run(drill_assessment("d-1", t0=T0), [checked()])

    assert (judged.findings[0].id, judged.findings[0].status, judged.verdict) == ("dryRun", "PASS", "INCONCLUSIVE")
    assert judged.verdict_reason.startswith("dry run: nothing was patched; it would work")
    assert judged.findings[0].rule.startswith("A dry run changes nothing")


def test_a_dry_run_that_would_fail_names_every_problem_in_its_verdict_line() -> None:
    finding = dry_run_finding([checked("no http route named 'x'", "RBAC: this function may not patch it")])

    assert (finding.status, finding.measured) == ("INCONCLUSIVE", 2)
    assert finding.detail == ("dry run: nothing was patched; the drill would fail: f-1: no http route named 'x'; "
                              "f-1: RBAC: this function may not patch it")
