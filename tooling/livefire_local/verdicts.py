"""How a drill's verdict is shown at the end of `livefire run` / `livefire start`, and becomes their exit code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from livefire.assessment import Assessment

EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2
FAILING_VERDICTS = frozenset({"FAIL", "INCONCLUSIVE", "NOT_STEADY", "ABORTED"})
COUNT_UNITS = frozenset({"samples", "probes", "errors"})


def exit_code_for(verdict: str | None) -> int:
    """0 PASS; 1 a drill that ran and did not pass; 2 no judgement (an error, or no verdict at all)."""
    if verdict == "PASS":
        return EXIT_PASS
    if verdict in FAILING_VERDICTS:
        return EXIT_FAIL
    return EXIT_ERROR


def _fmt_seconds(value: Any) -> str:
    return "-" if value is None else f"{float(value):.3f}s"


def print_verdict(evidence_dir: Path | None, verdict: str | None, rto: float | None, out: Any) -> None:
    print("", file=out)
    print(f"VERDICT: {verdict or 'NONE'}    RTO: {_fmt_seconds(rto)}", file=out)
    assessment_path = evidence_dir / "assessment.json" if evidence_dir else None
    if assessment_path is not None and assessment_path.is_file():
        _print_assessment(Assessment.model_validate_json(assessment_path.read_bytes()), out)
    if evidence_dir is not None:
        count = sum(1 for p in evidence_dir.rglob("*") if p.is_file())
        print(f"evidence: {evidence_dir} ({count} files)", file=out)


def _print_assessment(assessment: Assessment, out: Any) -> None:
    """The RTO bracket relative to the injection, then one row per finding with its whole title."""
    bracket, injected = assessment.rto_bracket, assessment.injected_at_ms
    if bracket is not None and bracket.last_failure_ms is not None and injected is not None:
        print(f"RTO bracket: [+{(bracket.last_failure_ms - injected) / 1000:.3f}s, "
              f"+{(bracket.first_success_ms - injected) / 1000:.3f}s] after injection, "
              f"width {bracket.first_success_ms - bracket.last_failure_ms:.1f} ms", file=out)
    if not assessment.findings:
        return
    width = max(len("finding"), *(len(f.title) for f in assessment.findings))
    print(f"{'status':<13} {'finding':<{width}} {'measured':>14} {'threshold':>14}", file=out)
    for finding in assessment.findings:
        print(f"{finding.status:<13} {finding.title:<{width}} {_fmt_value(finding.measured, finding.unit):>14} "
              f"{_fmt_value(finding.threshold, finding.unit):>14}", file=out)


def _fmt_value(value: float | None, unit: str) -> str:
    """A count (samples, probes, errors) prints as a whole number, anything else with three decimals."""
    if value is None:
        return "-"
    suffix = f" {unit}" if unit else ""
    if unit in COUNT_UNITS and float(value).is_integer():
        return f"{int(value)}{suffix}"
    return f"{value:.3f}{suffix}"
