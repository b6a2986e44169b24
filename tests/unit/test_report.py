"""report.md: verdict and findings first, RTO with its bracket, and a graceful report without assessment."""

from __future__ import annotations

from typing import Any

from livefire.assessment import Assessment, assess
from livefire.contracts import Plan, ProbeTarget, Sample
from livefire.evidence.report import render_markdown
from livefire.spec import DrillSpec, Vantage, parse_spec
from tests.evidence_data import SPEC_DOCUMENT

T0 = 1_700_000_000_000.0
PREFIX = "drills/payments/d-7/"
SPEC: dict[str, Any] = SPEC_DOCUMENT  # the same synthetic drill the evidence tests use
FAULTS: list[dict[str, Any]] = [
    {
        "drill_id": "d-7",
        "fault_id": "f-1",
        "status": "RESTORED",
        "planned": {"kind": "http-abort", "region": "east", "lease_key": "LEASE#sandbox:e/payments"},
        "snapshot_key": f"{PREFIX}faults/f-1-before.json",
        "injected_at_ms": int(T0 + 1000),
        "restored_at_ms": int(T0 + 5000),
        "detail": "restored | verified",
    }
]


def spec() -> DrillSpec:
    return parse_spec(SPEC)


def samples() -> list[Sample]:
    def probe(target: str, at: int, served: str | None) -> Sample:
        return Sample(
            target=target, vantage="local", seq=at // 100, scheduled_ms=T0 + at, sent_ms=T0 + at,
            ended_ms=T0 + at + 5, ok=served is not None, status=200 if served else 503, latency_ms=5.0,
            served_by=served, version="v1",
        )

    out = []
    for at in range(0, 9000, 100):
        faulted = 1000 <= at < 5000
        out.append(probe("east", at, None if faulted else "east"))
        out.append(probe("west", at, "west"))
        entry = "east" if at < 1100 or at >= 6000 else ("west" if at >= 1800 else None)
        out.append(probe("entry", at, entry))
    return out


def assessment() -> Assessment:
    drill_spec = spec()
    plan = Plan(
        drill_id="d-7", execution_arn="arn:aws:states:us-east-1:1:execution:drill:d-7", service="payments",
        pattern="active-passive", mode="live", spec_key=f"{PREFIX}spec.json", spec_digest=drill_spec.digest(),
        evidence_prefix=PREFIX, started_at_ms=int(T0), vantages=[Vantage(name="local", region="east")],
        targets=[
            ProbeTarget(name="entry", url=drill_spec.entrypoint, role="entrypoint"),
            ProbeTarget(name="east", url="http://east/healthz", region="east", role="primary"),
            ProbeTarget(name="west", url="http://west/healthz", region="west", role="standby"),
        ],
        faults=[], baseline_seconds=1.0, observe_seconds=8.0, lead_wait_seconds=0, fault_wait_seconds=4,
    )
    return assess(
        drill_spec, plan, samples(), injected_at_ms=T0 + 1000, restored_at_ms=T0 + 5000,
        sample_keys=[f"{PREFIX}samples/local/baseline-0000.jsonl.gz", f"{PREFIX}samples/local/drill-0000.jsonl.gz"],
    )


def render(result: Assessment | None, outcome: str = "COMPLETED", error: str | None = None) -> str:
    return render_markdown(
        spec(), result, outcome=outcome, faults=FAULTS, error=error, drill_id="d-7",
        execution_arn="arn:aws:states:us-east-1:1:execution:drill:d-7", extra_artifacts=["report.html"],
    )


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
    assert "| `planned.lease_key` | LEASE#sandbox:e/payments |" in report
    assert "| `injected_at_ms` | 2023-11-14T22:13:21.000Z |" in report
    assert "restored \\| verified" in report
    assert "- [faults/f-1-before.json](faults/f-1-before.json)" in report
    assert "- [samples/local/drill-0000.jsonl.gz](samples/local/drill-0000.jsonl.gz)" in report
    assert "- [report.html](report.html)" in report
    assert PREFIX not in report


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
    posture: list[dict[str, Any]] = [
        {"region": "east", "cluster": "sandbox:e", "namespace": "payments", "host": "payments", "skipped": None,
         "findings": [{"check": "mtls-strict", "ok": False, "detail": "default: PERMISSIVE"}]},
        {"region": "west", "cluster": "sandbox:w", "namespace": "payments", "host": "payments",
         "skipped": "MeshAccessError: no access", "findings": []},
    ]

    report = render_markdown(spec(), assessment(), outcome="COMPLETED", faults=FAULTS, error=None, drill_id="d-7",
                             execution_arn="arn:x", posture=posture)

    assert "| east (sandbox:e), payments/payments | mtls-strict | **FAIL** | default: PERMISSIVE |" in report
    assert "| west (sandbox:w), payments/payments | not audited | — | MeshAccessError: no access |" in report
    assert "The mesh posture was not audited for this drill." in render(assessment())


def test_the_report_has_a_cost_section_that_is_filled_once_the_cost_is_known() -> None:
    assert "## Cost of the drill\n\nNot computed for this drill." in render(assessment())

    report = render_markdown(spec(), assessment(), outcome="COMPLETED", faults=FAULTS, error=None, drill_id="d-7",
                             execution_arn="arn:x", cost={"total_usd": 0.5, "lines": [{"item": "lambda", "usd": 0.5}]})

    assert "**Total: $0.500000**" in report
    assert "| lambda | 0.5 |" in report
