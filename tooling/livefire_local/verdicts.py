"""How a drill's verdict is shown at the end of `livefire run` / `livefire start`, and becomes their exit code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2
FAILING_VERDICTS = frozenset({"FAIL", "INCONCLUSIVE", "NOT_STEADY", "ABORTED"})


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
        assessment = json.loads(assessment_path.read_text())
        bracket = assessment.get("rto_bracket") or {}
        injected = assessment.get("injected_at_ms")
        if bracket.get("last_failure_ms") is not None and injected is not None:
            print(f"RTO bracket: [+{(bracket['last_failure_ms'] - injected) / 1000:.3f}s, "
                  f"+{(bracket['first_success_ms'] - injected) / 1000:.3f}s] after injection, "
                  f"width {bracket['first_success_ms'] - bracket['last_failure_ms']:.1f} ms", file=out)
        findings = assessment.get("findings", [])
        if findings:
            print(f"{'status':<13} {'finding':<34} {'measured':>14} {'threshold':>14}", file=out)
        for finding in findings:
            measured = finding.get("measured")
            threshold = finding.get("threshold")
            unit = finding.get("unit") or ""
            print(f"{finding.get('status', ''):<13} {finding.get('title', finding.get('id', ''))[:34]:<34} "
                  f"{_fmt_value(measured, unit):>14} {_fmt_value(threshold, unit):>14}", file=out)
    if evidence_dir is not None:
        count = sum(1 for p in evidence_dir.rglob("*") if p.is_file())
        print(f"evidence: {evidence_dir} ({count} files)", file=out)


def _fmt_value(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}{unit and ' ' + unit}"
    return f"{value}{unit and ' ' + unit}"
