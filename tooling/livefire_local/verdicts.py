"""How a drill's verdict is shown at the end of `livefire run` / `livefire start`, and becomes their exit code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

from rich import box
from rich.table import Table

from livefire.assessment import Assessment
from livefire.evidence.report import format_number
from livefire_local.console import make_console

EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2
FAILING_VERDICTS = frozenset({"FAIL", "INCONCLUSIVE", "NOT_STEADY", "CANCELLED", "ABORTED", "RESTORE_REFUSED"})
STATUS_STYLES = {"PASS": "bold green", "FAIL": "bold red", "INCONCLUSIVE": "bold yellow"}


def exit_code_for(verdict: str | None) -> int:
    """0 PASS; 1 a drill that ran and did not pass; 2 no judgement (an error, or no verdict at all)."""
    if verdict == "PASS":
        return EXIT_PASS
    if verdict in FAILING_VERDICTS:
        return EXIT_FAIL
    return EXIT_ERROR


class FinishedDrill(Protocol):
    """What `livefire run` (``DrillRun``) and `livefire start` (``StackDrill``) know of a drill that ended."""

    @property
    def drill_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def verdict(self) -> str | None: ...
    @property
    def rto_seconds(self) -> float | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def exit_code(self) -> int: ...


@dataclass(frozen=True)
class DrillOutcome:
    """A finished drill as `livefire run` and `livefire start` report it, whether it ran here or on a stack."""

    drill_id: str
    status: str  # how the execution ended (SUCCEEDED, FAILED, ABORTED, ...)
    verdict: str | None
    rto_seconds: float | None
    exit_code: int
    assessment: Assessment | None = None  # assessment.json, when the drill was assessed
    evidence: str | None = None  # the local evidence folder, or s3://bucket/drills/<service>/<drill id>/
    report: str | None = None  # report.html in that folder
    error: str | None = None  # why the execution did not succeed

    @classmethod
    def of(cls, drill: FinishedDrill, *, assessment: Assessment | None, evidence: str | None,
           report: str | None) -> DrillOutcome:
        return cls(drill.drill_id, drill.status, drill.verdict, drill.rto_seconds, drill.exit_code, assessment,
                   evidence, report, drill.error)

    @classmethod
    def in_folder(cls, drill: FinishedDrill, evidence_dir: Path | None) -> DrillOutcome:
        """A drill whose evidence was copied to ``evidence_dir`` (None: it left none)."""
        report = evidence_dir / "report.html" if evidence_dir is not None else None
        return cls.of(drill, assessment=read_assessment(evidence_dir),
                      evidence=str(evidence_dir) if evidence_dir is not None else None,
                      report=str(report) if report is not None and report.is_file() else None)


def read_assessment(evidence_dir: Path | None) -> Assessment | None:
    """assessment.json of a local evidence folder, if the drill was assessed."""
    path = evidence_dir / "assessment.json" if evidence_dir is not None else None
    return Assessment.model_validate_json(path.read_bytes()) if path is not None and path.is_file() else None


def fetch_assessment(s3: Any, bucket: str, prefix: str) -> Assessment | None:
    """assessment.json of a drill in the evidence bucket (``prefix``: drills/<service>/<drill id>/); None when the
    drill was not assessed or these credentials may not read it (the verdict and exit code come from the drill
    record, so they stand either way)."""
    from botocore.exceptions import ClientError

    try:
        body = s3.get_object(Bucket=bucket, Key=f"{prefix}assessment.json")["Body"].read()
    except ClientError:
        return None
    return Assessment.model_validate_json(body)


def rto_bracket_text(assessment: Assessment) -> str | None:
    """Where the recovery lies, from the injection: [last failure, first sustained success] (send times)."""
    bracket, injected = assessment.rto_bracket, assessment.injected_at_ms
    if bracket is None or bracket.last_failure_ms is None or injected is None:
        return None
    last, first = (bracket.last_failure_ms - injected) / 1000, (bracket.first_success_ms - injected) / 1000
    return f"[+{last:.3f} s, +{first:.3f} s] after the injection, width {bracket.width_ms:.1f} ms"


def findings_table(assessment: Assessment) -> Table:
    """The report's findings table: title (id), measured, threshold, status and detail; long cells wrap."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold", expand=False)
    table.add_column("Status", no_wrap=True)
    table.add_column("Finding", ratio=1, overflow="fold")
    table.add_column("Measured", justify="right", no_wrap=True)
    table.add_column("Threshold", justify="right", no_wrap=True)
    table.add_column("Detail", ratio=1, overflow="fold")
    for finding in assessment.findings:
        table.add_row(finding.status, f"{finding.title} ({finding.id})", format_number(finding.measured, finding.unit),
                      format_number(finding.threshold, finding.unit), finding.detail,
                      style=STATUS_STYLES.get(finding.status))
    return table


def print_verdict(outcome: DrillOutcome, out: TextIO, *, width: int | None = None) -> None:
    """The verdict, the RTO with its bracket, every finding, and where the evidence and the report are;
    ``width`` columns (default: the terminal's, 120 off a terminal)."""
    console = make_console(out)
    if width is not None:
        console.width = width
    assessment = outcome.assessment
    console.print()
    no_outage = outcome.rto_seconds is None and assessment is not None and assessment.outage_observed is False
    rto = "no outage observed" if no_outage else format_number(outcome.rto_seconds, "s")
    console.print(f"VERDICT: {outcome.verdict or 'NONE'}    RTO: {rto}",
                  style=STATUS_STYLES.get(outcome.verdict or "", "bold"), markup=False)
    if assessment is not None:
        console.print(assessment.verdict_reason, markup=False, soft_wrap=True)
        bracket = rto_bracket_text(assessment)
        if bracket is not None:
            console.print(f"RTO bracket: {bracket}", markup=False)
        if assessment.findings:
            console.print(findings_table(assessment))
    if outcome.evidence is not None:
        folder = Path(outcome.evidence)
        files = f" ({sum(1 for p in folder.rglob('*') if p.is_file())} files)" if folder.is_dir() else ""
        console.print(f"evidence: {outcome.evidence}{files}", markup=False, soft_wrap=True)
    if outcome.report is not None:
        console.print(f"report: {outcome.report}", markup=False, soft_wrap=True)
    if outcome.error:
        console.print(f"execution {outcome.status}: {outcome.error}", markup=False, soft_wrap=True)
