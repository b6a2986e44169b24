"""`livefire run --output json --junit FILE` as a pipeline runs it (stdout not a terminal): plain status lines during
the fault window on stderr, one JSON document on stdout, a JUnit file; and `livefire start` the same on a stack."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml

from livefire.artifacts import evidence_prefix
from livefire_local.aws import LocalStack
from livefire_local.cli import main
from livefire_local.verdicts import exit_code_for
from tests.component.test_aws_cli import create_stack, deployed, livefire_stack_outputs
from tests.conftest import FAST_PHASES, MESH_DIR, sandbox_spec_document
from tests.e2e.test_livefire_run import livefire

__all__ = ["deployed"]  # the stack fixture, for the `start` test
FAULT_SECONDS = 8
STATUS_LINE = re.compile(r"^\[\s*(\d+\.\d\d)s\] ~ (\w+) ")


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str
    evidence: Path
    junit: Path

    @property
    def assessment(self) -> dict[str, Any]:
        return dict(json.loads((self.evidence / "assessment.json").read_text()))

    def status_lines(self, phase: str) -> list[tuple[float, str]]:
        found = [(STATUS_LINE.match(line), line) for line in self.stderr.splitlines()]
        return [(float(m.group(1)), line) for m, line in found if m is not None and m.group(2) == phase]


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Ran:
    folder = tmp_path_factory.mktemp("results")
    document = sandbox_spec_document()
    document["phases"]["fault"] = f"{FAULT_SECONDS}s"
    spec = folder / "spec.yaml"
    spec.write_text(yaml.safe_dump(document, sort_keys=False))
    (folder / "mesh").symlink_to(MESH_DIR, target_is_directory=True)
    junit = folder / "reports" / "livefire.xml"

    result = livefire("run", str(spec), "--evidence-dir", str(folder / "evidence"), "--output", "json",
                      "--junit", str(junit), cwd=folder, timeout=240)

    drills = [path for path in (folder / "evidence").iterdir() if not path.name.startswith(".")]  # not .chain
    assert len(drills) == 1, result.stderr
    return Ran(result.returncode, result.stdout, result.stderr, drills[0], junit)


@pytest.mark.slow
def test_off_a_terminal_a_status_line_names_the_entrypoint_and_its_server_every_few_seconds_of_the_fault(
    ran: Ran,
) -> None:
    lines = ran.status_lines("fault")

    assert len(lines) >= FAULT_SECONDS // 5, ran.stderr
    assert all(later - earlier <= 5.0 for (earlier, _), (later, _) in pairwise(lines)), lines
    assert all("entrypoint@default: available in fault" in line and "served by " in line for _, line in lines)
    assert any(re.search(r"entrypoint@default: available in fault \d+\.\d% \(\d+/\d+ probes\)", line)
               for _, line in lines), lines
    assert "fault http-abort on VirtualService payments in us-east-1: injected" in lines[0][1]


@pytest.mark.slow
def test_json_output_is_one_document_whose_verdict_and_findings_are_the_assessments(ran: Ran) -> None:
    summary = json.loads(ran.stdout)

    assert summary["verdict"] == ran.assessment["verdict"]
    assert summary["findings"] == ran.assessment["findings"]
    assert summary["drill_id"] == ran.evidence.name
    assert summary["evidence"] == str(ran.evidence)
    assert summary["exit_code"] == ran.returncode == exit_code_for(summary["verdict"])
    assert f"VERDICT: {summary['verdict']}" in ran.stderr
    assert "Traceback" not in ran.stderr


@pytest.mark.slow
def test_junit_output_parses_with_one_test_case_per_finding(ran: Ran) -> None:
    findings = ran.assessment["findings"]

    suite = ElementTree.parse(ran.junit).getroot().find("testsuite")

    assert suite is not None
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [f"{f['title']} ({f['id']})" for f in findings]
    failed = [c.find("failure").get("message") for c in cases if c.find("failure") is not None]  # type: ignore[union-attr]
    assert failed == [f["detail"] for f in findings if f["status"] == "FAIL"]
    assert suite.get("failures") == str(len(failed))


@pytest.mark.slow
def test_start_with_json_output_prints_the_stacks_assessment_and_shows_the_drill_live(
    deployed: LocalStack, unique_id: str, write_spec: Callable[[dict[str, Any]], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    create_stack(unique_id, livefire_stack_outputs(deployed))
    # A fault of a few status polls (every 2 s), so the live view shows it: the test drills' 1 s fault may fall
    # between two polls. The verdict is not judged here, only that output and store agree.
    spec = write_spec(sandbox_spec_document(phases={**FAST_PHASES, "fault": "5s"}))

    code = main(["start", str(spec), "--stack", unique_id, "--output", "json"])

    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    prefix = evidence_prefix("payments", summary["drill_id"])
    stored = json.loads(deployed.s3.get_object(Bucket=deployed.bucket, Key=f"{prefix}assessment.json")["Body"].read())
    assert code == summary["exit_code"] == exit_code_for(stored["verdict"])
    assert (summary["verdict"], summary["findings"]) == (stored["verdict"], stored["findings"])
    assert summary["evidence"] == f"s3://{deployed.bucket}/{prefix}"
    assert re.search(r"~ fault .* \| entrypoint@default: available in fault", captured.err), captured.err
    assert "VERDICT: " in captured.err and f"details: livefire status {summary['drill_id']}" in captured.err
