"""The data checks in both reports: the RPO of each region that took over, with its bracket, the replication
lag per region and phase, and (``standbyWrites``) the writes each lost on failback (assessment.json
``data_checks``, made by assessment/rpo.py). This module holds the rows and the report.md section;
``replication_html`` the report.html section and the lag timeline.
"""

from __future__ import annotations

from collections.abc import Sequence

from livefire.assessment import Assessment
from livefire.assessment.model import DataCheckResult
from livefire.evidence.markdown import DASH

RPO_HEADER = ["Check", "Kind", "Region", "RPO", "Bracket", "Serving from", "Last acked", "Held", "Note"]
LAG_HEADER = ["Check", "Region", "Phase", "Reads", "Failed", "p50", "p99", "Max"]
WRITE_LOSS_HEADER = ["Check", "Region", "Taken while serving", "Reached the primary", "Lost", "Lost markers", "Note"]
INTRO = ("Markers written in the primary every interval and read back in each other region. RPO: the span of "
         "acknowledged writes a region did not hold when it started serving after the injection. Lag: a read's "
         "send instant minus the newest marker it saw (it includes up to one marker interval). Write loss on failback "
         "(standbyWrites): markers a region acknowledged while it served, never seen in the primary after the "
         "restore.")


def _seconds(value: float | None) -> str:
    return DASH if value is None else f"{value:.3f} s"


def rpo_rows(assessment: Assessment) -> list[tuple[str, ...]]:
    origin = assessment.injected_at_ms
    return [(result.check, result.kind, rpo.region, _seconds(rpo.seconds),
             DASH if rpo.low_s is None or rpo.high_s is None else f"[{rpo.low_s:.3f}, {rpo.high_s:.3f}] s",
             DASH if rpo.serving_from_ms is None or origin is None
             else f"{(rpo.serving_from_ms - origin) / 1000.0:+.3f} s after the injection",
             DASH if rpo.last_acked_seq is None else str(rpo.last_acked_seq),
             DASH if rpo.held_seq is None else str(rpo.held_seq), rpo.note)
            for result in assessment.data_checks for rpo in result.rpo]


def lag_rows(assessment: Assessment) -> list[tuple[str, ...]]:
    return [(result.check, stats.region, stats.phase, str(stats.reads), str(stats.failed_reads),
             _seconds(stats.p50_s), _seconds(stats.p99_s), _seconds(stats.max_s))
            for result in assessment.data_checks for stats in result.lag]


def write_loss_rows(assessment: Assessment) -> list[tuple[str, ...]]:
    return [(result.check, loss.region, str(loss.written), str(loss.reached),
             "not observed" if loss.lost is None else str(loss.lost),
             ", ".join(map(str, loss.lost_seqs)) or DASH, loss.note)
            for result in assessment.data_checks for loss in result.write_loss]


def counts(results: Sequence[DataCheckResult]) -> str:
    return "; ".join(f"{r.check} ({r.kind}, every {r.interval_s:g} s): {r.acknowledged} of {r.writes} markers "
                     "acknowledged" for r in results)


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in row) + " |" for row in rows]]


def replication_markdown(assessment: Assessment) -> list[str]:
    """The report.md section; empty when the spec has no data checks."""
    if not assessment.data_checks:
        return []
    losses = write_loss_rows(assessment)
    return ["## Data checks: RPO and replication lag", "", INTRO, "", counts(assessment.data_checks), "",
            *_markdown_table(RPO_HEADER, rpo_rows(assessment)), "",
            *_markdown_table(LAG_HEADER, lag_rows(assessment)),
            *(["", *_markdown_table(WRITE_LOSS_HEADER, losses)] if losses else [])]
