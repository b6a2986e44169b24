"""Results a pipeline can read: `--output json` and `--junit FILE` of `livefire run` and `livefire start`.

``--output json`` prints one JSON document (``DrillSummary``) on stdout once the drill has ended; the live view,
the progress lines and the verdict table go to stderr, and so does anything else written to stdout meanwhile.
``--junit FILE`` writes JUnit XML with one test case per finding: a FAIL finding is a ``<failure>``, an
INCONCLUSIVE one an ``<error>`` (the drill could not judge it: a pipeline must not read it as skipped, and the
exit code is 1 as for FAIL), a PASS one passes. A drill that ended without findings (not steady, aborted, an
error) gets one test case for its outcome instead, so a pipeline never sees an empty, green suite.
Exit codes are those of ``verdicts.exit_code_for`` whatever the output.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO
from xml.etree import ElementTree

from pydantic import BaseModel, Field

from livefire.assessment import Bracket, Finding
from livefire.evidence.report import format_number
from livefire_local.verdicts import EXIT_PASS, DrillOutcome, print_verdict

if TYPE_CHECKING:
    from livefire_local.live import LiveView

Output = Literal["text", "json"]


class RtoSummary(BaseModel):
    """The recovery time at the entrypoint, as assessment.json has it, and its bracket relative to the injection."""

    seconds: float | None = Field(description="the worst vantage's RTO at the entrypoint, s; None when not measured")
    bracket: Bracket | None = Field(description="assessment.json's rto_bracket (send times, epoch ms)")
    last_failure_s: float | None = Field(description="the bracket's last failure, s after the injection")
    first_success_s: float | None = Field(description="the bracket's first sustained success, s after the injection")
    note: str | None = Field(description="what the worst vantage saw, in words")


class DrillSummary(BaseModel):
    """What `--output json` prints: the outcome of one drill."""

    drill_id: str = Field(description="the drill (the execution name)")
    status: str = Field(description="how the execution ended: SUCCEEDED, FAILED, ABORTED, TIMED_OUT")
    verdict: str | None = Field(description="PASS, FAIL, INCONCLUSIVE, NOT_STEADY, CANCELLED, ABORTED, ERROR; None: "
                                               "no verdict")
    verdict_reason: str | None = Field(description="why, in words (assessment.json's verdict_reason)")
    exit_code: int = Field(description="the command's exit code: 0 PASS, 1 did not pass, 2 error")
    rto: RtoSummary = Field(description="the recovery time at the entrypoint")
    findings: list[Finding] = Field(description="every judged rule, exactly as in assessment.json")
    evidence: str | None = Field(description="where the evidence is: a local folder or s3://bucket/prefix/")
    report: str | None = Field(description="report.html in the evidence")
    error: str | None = Field(description="why the execution did not succeed, if it did not")


def summary_of(outcome: DrillOutcome) -> DrillSummary:
    assessment = outcome.assessment
    bracket = assessment.rto_bracket if assessment is not None else None
    injected = assessment.injected_at_ms if assessment is not None else None

    def after_injection(ms: float | None) -> float | None:
        return None if ms is None or injected is None else round((ms - injected) / 1000.0, 6)

    return DrillSummary(
        drill_id=outcome.drill_id, status=outcome.status, verdict=outcome.verdict,
        verdict_reason=assessment.verdict_reason if assessment is not None else None, exit_code=outcome.exit_code,
        rto=RtoSummary(
            seconds=outcome.rto_seconds, bracket=bracket,
            last_failure_s=after_injection(bracket.last_failure_ms) if bracket else None,
            first_success_s=after_injection(bracket.first_success_ms) if bracket else None,
            note=assessment.rto_note if assessment is not None else None,
        ),
        findings=list(assessment.findings) if assessment is not None else [],
        evidence=outcome.evidence, report=outcome.report, error=outcome.error,
    )


def _finding_case(suite: ElementTree.Element, classname: str, finding: Finding) -> None:
    case = ElementTree.SubElement(suite, "testcase", name=f"{finding.title} ({finding.id})", classname=classname,
                                  time="0")
    body = (f"{finding.detail}\nmeasured {format_number(finding.measured, finding.unit)}, "
            f"threshold {format_number(finding.threshold, finding.unit)}")
    if finding.status == "PASS":
        ElementTree.SubElement(case, "system-out").text = body
        return
    kind = "failure" if finding.status == "FAIL" else "error"
    ElementTree.SubElement(case, kind, message=finding.detail, type=finding.status).text = body


def _outcome_case(suite: ElementTree.Element, classname: str, outcome: DrillOutcome) -> None:
    """The one test case of a drill that produced no findings."""
    case = ElementTree.SubElement(suite, "testcase", name=f"drill {outcome.drill_id}", classname=classname, time="0")
    if outcome.exit_code == EXIT_PASS:
        return
    message = outcome.error or f"the drill ended {outcome.status} with verdict {outcome.verdict or 'none'}"
    kind = "failure" if outcome.verdict is not None else "error"
    ElementTree.SubElement(case, kind, message=message, type=outcome.verdict or outcome.status).text = message


def junit_xml(outcome: DrillOutcome) -> ElementTree.ElementTree:
    """One ``<testsuite>`` per drill; the drill's id, verdict, RTO and evidence are its properties."""
    assessment = outcome.assessment
    classname = f"livefire.{assessment.service}.{assessment.pattern}" if assessment is not None else "livefire"
    suites = ElementTree.Element("testsuites", name="livefire")
    suite = ElementTree.SubElement(suites, "testsuite", name=f"livefire drill {outcome.drill_id}")
    properties = ElementTree.SubElement(suite, "properties")
    for name, value in (("drill_id", outcome.drill_id), ("status", outcome.status), ("verdict", outcome.verdict),
                        ("rto", format_number(outcome.rto_seconds, "s")), ("evidence", outcome.evidence),
                        ("report", outcome.report)):
        if value is not None:
            ElementTree.SubElement(properties, "property", name=name, value=value)
    if assessment is not None and assessment.findings:
        for finding in assessment.findings:
            _finding_case(suite, classname, finding)
    else:
        _outcome_case(suite, classname, outcome)
    cases = suite.findall("testcase")
    counts = {"tests": len(cases), "failures": sum(1 for c in cases if c.find("failure") is not None),
              "errors": sum(1 for c in cases if c.find("error") is not None), "skipped": 0}
    for element in (suites, suite):
        element.attrib.update({key: str(value) for key, value in counts.items()}, time="0")
    ElementTree.indent(suites)
    return ElementTree.ElementTree(suites)


def write_junit(outcome: DrillOutcome, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    junit_xml(outcome).write(path, encoding="utf-8", xml_declaration=True)


def add_result_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", choices=("text", "json"), default="text",
                        help="json: print the drill's summary (verdict, findings, RTO, evidence) as one JSON document "
                             "on stdout; the live view, progress and verdict table go to stderr")
    parser.add_argument("--junit", metavar="FILE", type=Path, default=None,
                        help="also write the findings as JUnit XML, one test case per finding")


class Results:
    """Where a drill's live view, verdict table, JSON summary and JUnit file go, as the options say."""

    def __init__(self, output: Output = "text", junit: Path | None = None, *, stdout: TextIO | None = None,
                 stderr: TextIO | None = None) -> None:
        self.output = output
        self.junit = junit
        self._stdout = stdout or sys.stdout
        self.human: TextIO = self._stdout if output == "text" else stderr or sys.stderr

    @classmethod
    def of(cls, args: argparse.Namespace) -> Results:
        return cls(args.output, args.junit)

    @contextmanager
    def running(self) -> Iterator[LiveView]:
        """The live view for the drill; with ``--output json``, whatever writes to stdout meanwhile (handlers'
        logs) goes to stderr, so stdout holds the JSON document alone."""
        from livefire_local.live import LiveView  # boto3 and the spec: only for a drill

        live = LiveView(self.human)
        if self.output == "json":
            with redirect_stdout(self.human):
                yield live
        else:
            yield live

    def publish(self, outcome: DrillOutcome) -> int:
        """Print the verdict table (and the JSON summary), write the JUnit file; the exit code."""
        print_verdict(outcome, self.human)
        if self.junit is not None:
            write_junit(outcome, self.junit)
            print(f"junit: {self.junit}", file=self.human)
        if self.output == "json":
            print(summary_of(outcome).model_dump_json(indent=2), file=self._stdout, flush=True)
        return outcome.exit_code
