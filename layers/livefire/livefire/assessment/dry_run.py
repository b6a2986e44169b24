"""A dry run's finding: what Inject's checks found, since a dry run injects nothing to judge (docs/architecture.md
§5, §7). The records come from the fault lifecycle: each is SKIPPED with ``dry_run_problems`` (empty: that fault
and its restore would work) and a detail saying what was checked.
"""

from __future__ import annotations

from collections.abc import Sequence

from livefire.assessment.model import Assessment, EvidencePointer, Finding, Status, rule
from livefire.records import FaultRecord

NOTHING_PATCHED = "dry run: nothing was patched"


@rule("A dry run changes nothing: PASS when every fault's exact patch was accepted by the API server (dryRun=All) "
      "and every verb it and its restore need is allowed (SelfSubjectAccessReview), the FIS template exists, and "
      "webhooks are not called; INCONCLUSIVE naming each problem otherwise.")
def dry_run_finding(records: Sequence[FaultRecord]) -> Finding:
    problems = [f"{record.fault_id}: {problem}" for record in records for problem in record.dry_run_problems]
    status: Status = "INCONCLUSIVE" if problems else "PASS"
    if problems:
        detail = f"{NOTHING_PATCHED}; the drill would fail: {'; '.join(problems)}"
    else:
        checked = "; ".join(f"{record.fault_id}: {record.detail}" for record in records if record.detail)
        detail = f"{NOTHING_PATCHED}; it would work ({checked})" if checked else NOTHING_PATCHED
    return Finding(id="dryRun", title="The drill would work (dry run)", measured=len(problems), unit="problems",
                   threshold=0, status=status, detail=detail, evidence=EvidencePointer())


def with_dry_run(assessment: Assessment, records: Sequence[FaultRecord]) -> Assessment:
    """The assessment of a dry run: the dryRun finding first, and the verdict INCONCLUSIVE (nothing was judged)
    with the finding's detail as its reason, so the verdict line says that nothing was patched and why not."""
    finding = dry_run_finding(records)
    findings = [finding, *(f for f in assessment.findings if f.id != finding.id)]
    return assessment.model_copy(update={"findings": findings, "verdict": "INCONCLUSIVE",
                                         "verdict_reason": finding.detail})
