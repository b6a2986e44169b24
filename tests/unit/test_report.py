"""report.md: verdict and findings first, RTO with its bracket, and a graceful report without assessment."""

from __future__ import annotations

from typing import Any

from livefire.assessment import Assessment
from livefire.cost import CostLine, CostReport
from livefire.evidence.bundle import PostureAudit, PostureCheck
from livefire.evidence.report import render_markdown
from tests.evidence_data import drill_assessment, evidence_bundle, fault_record

DRILL = "d-7"


def assessment() -> Assessment:
    return drill_assessment(DRILL)


def render(result: Assessment | None, outcome: str = "COMPLETED", error: str | None = None, **overrides: Any) -> str:
    record = fault_record(DRILL).model_copy(update={"detail": "restored | verified"})
    artifacts = evidence_bundle(DRILL).artifacts
    if result is None:
        artifacts = {name: size for name, size in artifacts.items() if name != "assessment.json"}
    return render_markdown(evidence_bundle(DRILL, assessment=result, outcome=outcome, error=error, faults=[record],
                                           artifacts=artifacts, **overrides))


def test_the_report_opens_with_the_verdict_and_the_findings_table() -> None:
    result = assessment()

    report = render(result)

    assert result.verdict == "PASS", result.verdict_reason
    assert report.startswith("# Drill payments-ap: PASS\n")
    assert report.index("## Findings") < report.index("## Recovery") < report.index("## Spec")
    for finding in result.findings:
        assert f"`{finding.id}`" in report
    assert "| Recovery time at the entrypoint within 2 s (`rto`) | 0.800 s | 2.000 s | **PASS** |" in report


def test_the_report_gives_the_rto_with_its_bracket() -> None:
    report = render(assessment())

    assert "- **RTO** at the entrypoint: 0.800 s" in report
    assert "[2023-11-14T22:13:21.700Z (+0.700 s), 2023-11-14T22:13:21.800Z (+0.800 s)], width 100.0 ms" in report


def test_the_report_shows_availability_per_phase_and_who_served() -> None:
    report = render(assessment())

    assert "| fault | local | entry | 40 | 33 | 82.500% |" in report
    assert "| local | west | v1 | 2023-11-14T22:13:21.800Z (+0.800 s) |" in report


def test_the_report_lists_fault_records_and_links_artifacts_relatively() -> None:
    report = render(assessment())

    assert "### Fault f-1" in report
    assert "| `snapshot_key` | [faults/f-1-before.json](faults/f-1-before.json) |" in report
    assert "| `planned.lease_key` | sandbox:e/payments/VirtualService/payments |" in report
    assert "| `injected_at_ms` | 2023-11-14T22:13:21.000Z |" in report
    assert "restored \\| verified" in report
    assert "- [faults/f-1-before.json](faults/f-1-before.json)" in report
    assert "- [samples/local/drill-0000.jsonl.gz](samples/local/drill-0000.jsonl.gz)" in report
    assert "- [report.html](report.html)" in report
    assert "drills/payments/" not in report


def test_the_report_embeds_the_spec_as_yaml() -> None:
    report = render(assessment())

    assert "```yaml\napiVersion: livefire/v1\n" in report
    assert "  virtualService: payments" in report


def test_a_drill_without_assessment_still_gets_a_report() -> None:
    report = render(None, outcome="NOT_STEADY", error="baseline: target entry availability 80% < 99%")

    assert report.startswith("# Drill payments-ap: NOT_STEADY\n")
    assert "No assessment: the drill ended with outcome NOT_STEADY" in report
    assert "baseline: target entry availability 80% < 99%" in report
    assert "assessment.json" not in report
    assert "## Spec" in report


def test_an_error_with_backticks_cannot_break_out_of_its_code_block() -> None:
    report = render(None, outcome="ERROR", error="boom ```\n# injected heading")

    assert "````text\nboom ```\n# injected heading\n````" in report


def test_the_report_gives_the_mesh_posture_and_says_when_it_was_not_audited() -> None:
    posture = [
        PostureAudit(region="east", cluster="sandbox:e", namespace="payments", host="payments",
                     findings=[PostureCheck(check="mtls-strict", ok=False, detail="default: PERMISSIVE")]),
        PostureAudit(region="west", cluster="sandbox:w", namespace="payments", host="payments",
                     skipped="MeshAccessError: no access"),
    ]

    report = render(assessment(), posture=posture)

    assert "| east (sandbox:e), payments/payments | mtls-strict | **FAIL** | default: PERMISSIVE |" in report
    assert "| west (sandbox:w), payments/payments | not audited | — | MeshAccessError: no access |" in report
    assert "The mesh posture was not audited for this drill." in render(assessment())


def test_the_report_has_a_cost_section_that_is_filled_once_the_cost_is_known() -> None:
    assert "## Cost of the drill\n\nNot computed for this drill." in render(assessment())

    cost = CostReport(total_usd=0.5, state_transitions=10, lambda_gb_seconds=1.0, lambda_invocations=3,
                      lines=[CostLine(item="lambda", quantity="3 x 512 MB", usd=0.5)], note="list prices")

    report = render(assessment(), cost=cost)

    assert "**Total: $0.500000**" in report
    assert "| lambda | 3 x 512 MB | 0.5 |" in report
    assert "list prices" in report
