"""The mesh's telemetry in the evidence: the raw answers are required by the manifest and verify covers them; both
reports show the mesh's error ratio and traffic split per cluster beside the probes, or say there was none."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from livefire.assessment.model import MeshFailover, MeshPhase, MeshSplit, MeshTelemetry
from livefire.evidence.bundle import EvidenceBundle
from livefire.evidence.html import render_html
from livefire.evidence.report import render_markdown
from livefire.evidence.seal import required_artifacts
from tests.evidence_data import T0, evidence_bundle
from tests.unit.test_manifest import ARTIFACTS, REQUIRED, verify, write_evidence

PREFIX = "drills/payments/d-1/"
ANSWER = "telemetry/requests.json"


def mesh(status: str = "measured") -> MeshTelemetry:
    phase = MeshPhase(phase="fault", cluster="east", from_ms=T0 + 2000, to_ms=T0 + 4000, requests=40, errors=30,
                      error_ratio_pct=75.0, rate_per_s=20.0, p99_ms=9.9, gateway_requests=10, gateway_ok=0)
    return MeshTelemetry(
        source="http://127.0.0.1:9090", status=status, note="" if status == "measured" else "refused",
        step_s=1.0, scrape_interval_s=1.0, phases=[phase] if status == "measured" else [],
        split=[MeshSplit(at_ms=T0 + 1000 * k, requests={"east": 10.0 - k, "west": float(k)}) for k in range(1, 9)],
        failover=MeshFailover(from_cluster="east", to_cluster="west", low_ms=T0, high_ms=T0 + 1000, seconds=1.0,
                              note="east's share fell"),
        query_keys=[f"{PREFIX}{ANSWER}"])


def with_mesh(telemetry: MeshTelemetry | None) -> EvidenceBundle:
    bundle = evidence_bundle("d-mesh")
    assert bundle.assessment is not None
    return bundle.model_copy(update={"assessment": bundle.assessment.model_copy(update={"telemetry": telemetry})})


def test_the_markdown_report_shows_the_mesh_per_phase_and_cluster() -> None:
    section = render_markdown(with_mesh(mesh())).split("## Mesh telemetry", 1)[1]

    assert "| fault | east | 40 | 20.0/s | 30 | 75.0 % | 9.9 ms | 10 | 0 |" in section
    assert "Failover seen by the mesh: east's share fell." in section
    assert "Raw answers: telemetry/requests.json." in section


def test_a_report_without_telemetry_says_the_drill_rests_on_its_probes() -> None:
    assert "No telemetry in the spec: the drill is judged on its probes alone" in render_markdown(with_mesh(None))
    assert "No telemetry in the spec" in render_html(with_mesh(None))


def test_unreadable_telemetry_is_reported_with_its_reason() -> None:
    report = render_markdown(with_mesh(mesh("unavailable")))

    assert "The telemetry at http://127.0.0.1:9090 could not be read: refused." in report


def test_the_html_report_draws_the_traffic_split_on_the_probe_timeline_axis() -> None:
    page = render_html(with_mesh(mesh()))

    timeline = page.split('<section id="timeline">', 1)[1].split("</section>", 1)[0]
    figure = timeline.split("traffic split per cluster as the mesh counted it", 1)[1]
    xs = [float(x) for x in re.findall(r'<rect x="([0-9.]+)" y="[0-9.]+" width="[0-9.]+" height="[0-9.]+" '
                                        r'fill="#0969da"><title>east', figure)]
    assert len(xs) == 8 and xs == sorted(xs) and 120 <= xs[0] < xs[-1] <= 944
    assert 'id="mesh"' in page and "75.0 %" in page


def test_the_raw_telemetry_answers_are_required_by_the_manifest() -> None:
    assessment = {"verdict": "PASS", "sample_keys": [], "telemetry": {"query_keys": [f"{PREFIX}{ANSWER}"]}}
    artifacts = {"faults/records.json": b"[]", "assessment.json": json.dumps(assessment).encode()}

    assert ANSWER in required_artifacts(artifacts, PREFIX)


def _with_answer() -> dict[str, bytes]:
    assessment: dict[str, Any] = json.loads(ARTIFACTS["assessment.json"])
    assessment["telemetry"] = {"query_keys": [f"{PREFIX}{ANSWER}"]}
    return {**ARTIFACTS, "assessment.json": json.dumps(assessment).encode(), ANSWER: b'{"status": "success"}'}


def test_verify_covers_the_raw_telemetry_answers(tmp_path: Path) -> None:
    write_evidence(tmp_path, _with_answer(), required=[*REQUIRED, ANSWER])

    assert verify(tmp_path).problems == []

    (tmp_path / ANSWER).write_bytes(b'{"status": "forged"}')
    assert verify(tmp_path).problems[0].startswith(f"{ANSWER}: ")


def test_an_answer_the_assessment_judged_but_the_manifest_does_not_require_is_named(tmp_path: Path) -> None:
    write_evidence(tmp_path, _with_answer())

    assert verify(tmp_path).problems == [
        f"{ANSWER}: counted by assessment.json but not listed as required in the manifest"]
