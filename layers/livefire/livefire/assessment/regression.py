"""RTO regression: a drill's RTO against the service's recent drills (docs/architecture.md §7).

The recent RTOs come from the drill table's history (``HistoryEntry``, gsi1), which the Assess step reads: the
last ``RECENT_DRILLS`` earlier drills of the service with the same pattern that completed with a measured RTO.
Locally the runner restores the local chain's drills into the fresh table first, so the same query sees them.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from livefire.assessment.model import Assessment, EvidencePointer, Finding, Status, rule
from livefire.assessment.verdict import judge
from livefire.records import HistoryEntry
from livefire.spec import DrillSpec

RECENT_DRILLS = 5
HISTORY_LOOKBACK = 4 * RECENT_DRILLS  # history entries read to find that many RTOs among other drills


def recent_rtos(history: Sequence[HistoryEntry], drill_id: str, pattern: str) -> list[float]:
    """The RTOs of the last RECENT_DRILLS earlier completed drills of ``pattern`` (``history`` newest first)."""
    return [entry.rto_seconds for entry in history
            if entry.drill_id != drill_id and entry.pattern == pattern and entry.status == "COMPLETED"
            and entry.rto_seconds is not None][:RECENT_DRILLS]


@rule(f"RTO regression: the RTO at most objectives.rtoRegression times the median RTO of the service's last "
      f"{RECENT_DRILLS} earlier completed drills of the same pattern that measured one (the drill table's "
      "history); INCONCLUSIVE without such a drill or without this drill's RTO; PASS when no outage was observed.")
def rto_regression_finding(assessment: Assessment, factor: float, recent: Sequence[float]) -> Finding:
    median = statistics.median(recent) if recent else None
    threshold = None if median is None else round(factor * median, 6)
    shown = ", ".join(f"{rto:.3f}" for rto in recent)
    status: Status
    if assessment.outage_observed is False:
        status, detail = "PASS", "no outage observed: nothing to recover, so no regression"
    elif assessment.rto_seconds is None:
        status, detail = "INCONCLUSIVE", f"this drill's RTO was not measured ({assessment.rto_note})"
    elif median is None or threshold is None:
        status, detail = "INCONCLUSIVE", (f"no earlier completed {assessment.pattern} drill of {assessment.service} "
                                          "with a measured RTO to compare with")
    else:
        status = "FAIL" if assessment.rto_seconds > threshold else "PASS"
        detail = (f"RTO {assessment.rto_seconds:.3f} s against {factor:g} x the median {median:.3f} s of the last "
                  f"{len(recent)} drills ({shown} s, newest first)")
    return Finding(id="rtoRegression", title=f"RTO no worse than {factor:g} x the recent median", unit="s",
                   measured=assessment.rto_seconds, threshold=threshold, status=status, detail=detail,
                   evidence=EvidencePointer(target=assessment.entrypoint), samples=len(recent), required_samples=1)


def with_recent_rtos(assessment: Assessment, spec: DrillSpec, recent: Sequence[float]) -> Assessment:
    """The assessment with the ``rtoRegression`` finding and the verdict it adds up to; unchanged when the spec
    sets no ``objectives.rtoRegression``."""
    factor = spec.objectives.rto_regression
    if factor is None:
        return assessment
    findings = [f for f in assessment.findings if f.id != "rtoRegression"]
    findings.append(rto_regression_finding(assessment, factor, recent))
    verdict, reason = judge(findings)
    return assessment.model_copy(update={"findings": findings, "verdict": verdict, "verdict_reason": reason})
