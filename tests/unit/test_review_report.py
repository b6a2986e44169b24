"""The review sections of both reports: "What to change" lists each recommendation with its numbers and YAML, and
"Controls evidenced" maps the drill's findings to audit controls through the (shipped or replaced) mapping file."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from livefire.assessment import Assessment, Recommendation
from livefire.errors import EvidenceError
from livefire.evidence.bundle import EvidenceBundle
from livefire.evidence.controls import ControlMapping, controls_evidenced, load_mapping, parse_mapping
from livefire.evidence.html import render_html
from livefire.evidence.report import render_markdown
from tests.evidence_data import drill_assessment, evidence_bundle

DRILL = "d-7"
ADVICE = Recommendation(
    id="addOutlierDetection", title="Add outlierDetection to the DestinationRule in east", region="east",
    because="the posture audit of east found: payments has no trafficPolicy.outlierDetection",
    change="add trafficPolicy.outlierDetection (consecutive5xxErrors 5, interval 1s, baseEjectionTime 1s)",
    yaml="# kubectl -n payments patch destinationrule payments --type merge --patch-file this.yaml\nspec:\n"
         "  trafficPolicy:\n    outlierDetection:\n      consecutive5xxErrors: 5\n",
    findings=["standbyServedDuringFault"])
SHIPPED_CONTROLS = ["DORA Art. 24", "DORA Art. 25", "DORA Art. 11(6)", "ISO/IEC 27001:2022 A.5.30",
                    "ISO 22301 8.5", "SOC 2 A1.3", "NIST SP 800-53 CP-4"]


def bundle(assessment: Assessment | None, **overrides: Any) -> EvidenceBundle:
    controls = controls_evidenced(load_mapping(source=""), assessment)
    return evidence_bundle(DRILL, assessment=assessment, controls=controls,
                           **({"outcome": "ERROR"} if assessment is None else {}), **overrides)


def advised() -> Assessment:
    return drill_assessment(DRILL).model_copy(update={"recommendations": [ADVICE]})


def test_the_shipped_mapping_names_every_control_by_identifier() -> None:
    mapping = load_mapping(source="")

    assert [c.control for c in mapping.controls] == SHIPPED_CONTROLS
    assert all(c.findings for c in mapping.controls)


def test_a_control_adds_up_its_findings_and_one_the_drill_lacks_is_not_evidenced() -> None:
    judged = drill_assessment(DRILL)
    failed = judged.model_copy(update={"findings": [
        f.model_copy(update={"status": "FAIL"}) if f.id == "rto" else f for f in judged.findings]})
    mapping = ControlMapping.model_validate({"controls": [
        {"control": "A", "findings": ["rto", "faultTookEffect"]},
        {"control": "B", "findings": ["faultTookEffect"]},
        {"control": "C", "findings": ["rpo"]}]})

    evidenced = {c.control: c for c in controls_evidenced(mapping, failed)}

    assert [(f.id, f.status) for f in evidenced["A"].findings] == [("rto", "FAIL"), ("faultTookEffect", "PASS")]
    assert (evidenced["A"].status, evidenced["B"].status, evidenced["C"].status) == ("FAIL", "PASS", "NOT_EVIDENCED")
    assert {c.status for c in controls_evidenced(mapping, None)} == {"NOT_EVIDENCED"}


def test_a_deployment_mapping_replaces_the_shipped_one_from_a_path_or_s3(tmp_path: Path) -> None:
    path = tmp_path / "controls.yaml"
    path.write_text("controls:\n  - {control: Internal BCP-7, findings: [rto]}\n")

    class FakeS3:
        def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
            assert (Bucket, Key) == ("evidence", "config/controls.yaml")
            return {"Body": io.BytesIO(path.read_bytes())}

    from_path = load_mapping(source=str(path))
    from_s3 = load_mapping(FakeS3(), source="s3://evidence/config/controls.yaml")

    assert [c.control for c in from_path.controls] == [c.control for c in from_s3.controls] == ["Internal BCP-7"]


def test_an_invalid_mapping_fails_naming_the_file_and_the_field() -> None:
    with pytest.raises(EvidenceError, match=r"control mapping m.yaml: controls.0.findings: .*at least 1"):
        parse_mapping(b"controls:\n  - {control: X, findings: []}\n", "m.yaml")
    with pytest.raises(EvidenceError, match=r"control mapping /nonexistent\.yaml"):
        load_mapping(source="/nonexistent.yaml")


def test_the_markdown_report_lists_what_to_change_with_the_yaml_and_the_controls() -> None:
    report = render_markdown(bundle(advised()))

    assert report.index("## Findings") < report.index("## What to change") < report.index("## Controls evidenced")
    assert "### 1. Add outlierDetection to the DestinationRule in east (east)" in report
    assert "- **Because:** the posture audit of east found: payments has no trafficPolicy.outlierDetection" in report
    assert "```yaml\n# kubectl -n payments patch destinationrule payments" in report
    assert "| DORA Art. 24 | PASS | faultTookEffect PASS, sampleCoverage PASS, rto PASS" in report
    assert "| ISO 22301 8.5 |" in report


def test_every_drill_gets_both_sections_even_unjudged_or_with_nothing_to_change() -> None:
    clean = render_markdown(bundle(drill_assessment(DRILL)))
    unjudged = render_markdown(bundle(None))

    assert "## What to change\n\nNothing: no rule found a measurement" in clean
    assert "Nothing measured to recommend from: the drill ended with outcome ERROR" in unjudged
    assert "| SOC 2 A1.3 | NOT_EVIDENCED | — |" in unjudged


def test_the_html_report_renders_both_sections_escaped() -> None:
    page = render_html(bundle(advised()))

    assert page.index('id="findings"') < page.index('id="what-to-change"') < page.index('id="controls"')
    assert '<li class="recommendation" data-rule="addOutlierDetection">' in page
    assert '<pre class="yaml"># kubectl -n payments patch destinationrule payments' in page
    assert "<td>NIST SP 800-53 CP-4</td>" in page
