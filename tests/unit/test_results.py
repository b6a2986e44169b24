"""Results a pipeline reads: the JSON summary of `--output json` and the JUnit XML of `--junit FILE`."""

from __future__ import annotations

import io
import json
from pathlib import Path
from xml.etree import ElementTree

from livefire.assessment import Assessment
from livefire_local.results import Results, junit_xml, write_junit
from livefire_local.verdicts import DrillOutcome, exit_code_for
from tests.unit.assessment.scenarios import failover_entry, make_spec, regions, run


def judged(*statuses: str) -> Assessment:
    """The passing failover drill, its first findings re-judged with ``statuses``."""
    assessment = run(make_spec(), [*regions(), *failover_entry()])
    findings = [f.model_copy(update={"status": s, "detail": f"{f.detail} ({s})"}) if s else f
                for f, s in zip(assessment.findings, [*statuses, *[""] * len(assessment.findings)], strict=False)]
    verdict = "FAIL" if "FAIL" in statuses else "INCONCLUSIVE" if "INCONCLUSIVE" in statuses else "PASS"
    return assessment.model_copy(update={"findings": findings, "verdict": verdict})


def outcome_of(assessment: Assessment | None, **overrides: object) -> DrillOutcome:
    verdict = assessment.verdict if assessment is not None else None
    fields: dict[str, object] = {
        "drill_id": "payments-ap-20260101T000000Z-abcd", "status": "SUCCEEDED" if verdict == "PASS" else "FAILED",
        "verdict": verdict, "rto_seconds": assessment.rto_seconds if assessment else None,
        "exit_code": exit_code_for(verdict), "assessment": assessment, "evidence": "livefire-evidence/d-1",
        "report": "livefire-evidence/d-1/report.html",
    }
    return DrillOutcome(**{**fields, **overrides})  # type: ignore[arg-type]


def published(outcome: DrillOutcome, junit: Path | None = None) -> tuple[str, str, int]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = Results("json", junit, stdout=stdout, stderr=stderr).publish(outcome)
    return stdout.getvalue(), stderr.getvalue(), code


def test_json_output_is_one_document_on_stdout_with_the_assessments_verdict_and_findings() -> None:
    assessment = judged("", "", "FAIL")

    stdout, stderr, code = published(outcome_of(assessment))
    summary = json.loads(stdout)

    assert summary["verdict"] == assessment.verdict == "FAIL"
    assert summary["findings"] == json.loads(assessment.model_dump_json())["findings"]
    assert summary["exit_code"] == code == 1
    assert summary["drill_id"] == "payments-ap-20260101T000000Z-abcd"
    assert summary["evidence"] == "livefire-evidence/d-1"
    assert summary["report"] == "livefire-evidence/d-1/report.html"
    assert "VERDICT: FAIL" in stderr and "VERDICT" not in stdout


def test_json_output_gives_the_rto_with_its_bracket_from_the_injection() -> None:
    assessment = judged()

    rto = json.loads(published(outcome_of(assessment))[0])["rto"]

    assert rto["seconds"] == assessment.rto_seconds == 2.2
    assert (rto["last_failure_s"], rto["first_success_s"]) == (2.1, 2.2)
    assert rto["bracket"] == json.loads(assessment.model_dump_json())["rto_bracket"]


def test_text_output_prints_the_table_on_stdout_and_no_json() -> None:
    stdout = io.StringIO()

    code = Results("text", stdout=stdout, stderr=io.StringIO()).publish(outcome_of(judged()))

    assert code == 0
    assert "VERDICT: PASS" in stdout.getvalue()
    assert "{" not in stdout.getvalue()


def test_junit_has_one_test_case_per_finding_failing_with_the_findings_detail(tmp_path: Path) -> None:
    assessment = judged("FAIL", "INCONCLUSIVE")
    path = tmp_path / "reports" / "livefire.xml"

    published(outcome_of(assessment), junit=path)
    suite = ElementTree.parse(path).getroot().find("testsuite")

    assert suite is not None
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [f"{f.title} ({f.id})" for f in assessment.findings]
    failure, error = cases[0].find("failure"), cases[1].find("error")
    assert failure is not None and failure.get("message") == assessment.findings[0].detail
    assert error is not None and error.get("type") == "INCONCLUSIVE"
    assert error.get("message") == assessment.findings[1].detail
    assert all(c.find("failure") is None and c.find("error") is None for c in cases[2:])
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == (
        str(len(cases)), "1", "1", "0")


def test_junit_names_the_drill_its_verdict_and_evidence_as_suite_properties() -> None:
    root = junit_xml(outcome_of(judged())).getroot()
    assert root is not None

    properties = {p.get("name"): p.get("value") for p in root.iter("property")}

    assert properties["verdict"] == "PASS"
    assert properties["drill_id"] == "payments-ap-20260101T000000Z-abcd"
    assert properties["evidence"] == "livefire-evidence/d-1"
    assert properties["rto"] == "2.200 s"


def test_a_drill_without_findings_is_one_failing_test_case_never_an_empty_suite(tmp_path: Path) -> None:
    path = tmp_path / "livefire.xml"
    outcome = outcome_of(None, verdict="NOT_STEADY", status="FAILED", exit_code=1,
                         error="DrillNotSteady: the baseline was not steady")

    write_junit(outcome, path)
    cases = ElementTree.parse(path).getroot().findall("testsuite/testcase")

    assert len(cases) == 1
    failure = cases[0].find("failure")
    assert failure is not None and failure.get("message") == "DrillNotSteady: the baseline was not steady"
    assert failure.get("type") == "NOT_STEADY"
