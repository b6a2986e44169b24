"""The mesh's counters cut into phases and held against the probes, on recorded Prometheus answers
(tests/data/telemetry/) that match the active-passive scenario of tests/unit/assessment/scenarios.py: the primary
fails from 3 s to 23 s, the entrypoint's probes fail from 3.1 s to 5.2 s, then the standby serves until 25 s."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from livefire.assessment.columns import SampleColumns
from livefire.assessment.model import Assessment, PhaseWindow
from livefire.contracts import Sample
from livefire.spec import DrillSpec
from livefire.telemetry.client import PrometheusApi
from livefire.telemetry.measure import with_telemetry
from livefire.telemetry.mesh import mesh_view
from livefire.telemetry.series import Grid, increases, is_error, quantile
from tests.unit.assessment.scenarios import (
    FAIL,
    T0,
    USE1,
    USW2,
    failover_entry,
    make_spec,
    regions,
    run,
    stream,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "telemetry"
TELEMETRY = {"prometheus": "http://127.0.0.1:9090", "service": "payments.payments.svc.cluster.local",
             "scrapeInterval": "1s"}


def answer(name: str) -> bytes:
    return (DATA / f"{name}.json").read_bytes()


class RecordedPrometheus:
    """Answers each of the drill's three queries with its recorded answer."""

    def __init__(self, requests: str = "requests") -> None:
        self.requests = requests
        self.asked: list[str] = []

    def __call__(self, url: str, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
        self.asked.append(url)
        if "_bucket" in url:
            return 200, answer("latency")
        if "source_workload" in url:
            return 200, answer("gateway")
        return 200, answer(self.requests)


def judged(samples: list[Sample], transport: Any, spec: DrillSpec | None = None) -> tuple[Assessment, dict[str, Any]]:
    spec = spec or make_spec(telemetry=TELEMETRY)
    saved: dict[str, Any] = {}

    def save(name: str, document: Any) -> str:
        saved[name] = document
        return f"drills/payments/d-1/{name}"

    assert spec.telemetry is not None
    api = PrometheusApi(spec.telemetry, transport=transport)
    return with_telemetry(run(spec, samples), spec, SampleColumns.of(samples), api, save, sleep=lambda _s: None), saved


def probes() -> list[Sample]:
    return [*regions(), *failover_entry(outage_end=5200, failback_at=25000)]


def finding(assessment: Assessment, finding_id: str) -> tuple[str, str]:
    found = assessment.finding(finding_id)
    assert found is not None, finding_id
    return found.status, found.detail


def test_probes_and_mesh_that_saw_the_same_drill_agree_and_the_drill_passes() -> None:
    assessment, saved = judged(probes(), RecordedPrometheus())

    assert [finding(assessment, f)[0] for f in ("meshErrorRatio", "meshFailover", "meshServedRegions")] == [
        "PASS", "PASS", "PASS"]
    assert assessment.verdict == "PASS"
    assert sorted(saved) == ["telemetry/gateway.json", "telemetry/latency.json", "telemetry/requests.json"]
    assert assessment.telemetry is not None and assessment.telemetry.query_keys == [
        "drills/payments/d-1/telemetry/requests.json", "drills/payments/d-1/telemetry/gateway.json",
        "drills/payments/d-1/telemetry/latency.json"]


def test_the_mesh_view_counts_each_phase_over_whole_steps() -> None:
    assessment, _saved = judged(probes(), RecordedPrometheus())

    mesh = assessment.telemetry
    assert mesh is not None and mesh.status == "measured" and mesh.step_s == 1.0
    fault = {p.cluster: p for p in mesh.phases if p.phase == "fault"}
    # the fault phase's steps: (4 s, 5 s] ... (22 s, 23 s]: the primary's probes fail, its gateway errors end at 6 s
    assert (fault[None].from_ms, fault[None].to_ms) == (T0 + 4000, T0 + 23000)
    assert fault[USE1].requests == 19 * 10 + 10 + 2 and fault[USE1].errors == 19 * 10 + 10 + 2
    assert fault[USW2].gateway_ok == 8 + 17 * 10
    assert fault[USE1].p99_ms == pytest.approx(9.95) and fault[USW2].p99_ms == pytest.approx(49.75)
    assert mesh.failover is not None
    assert (mesh.failover.to_cluster, mesh.failover.high_ms, mesh.failover.seconds) == (USW2, T0 + 6000, 3.0)
    assert mesh.split[0].requests == {USE1: 10.0, USW2: 0.0}


def test_failing_traffic_the_probes_do_not_see_fails_the_error_ratio_agreement() -> None:
    assessment, _saved = judged(probes(), RecordedPrometheus("requests-extra-failing"))

    status, detail = finding(assessment, "meshErrorRatio")
    assert status == "FAIL"
    assert ("fault: DISAGREE: the probes saw 36.1 % errors (206 of 570), the mesh 75.8 % (1152 of 1520 requests)"
            in detail)
    assert "baseline: agree" in detail
    assert assessment.verdict == "FAIL"


def test_probes_served_by_a_region_the_mesh_saw_serve_nothing_fail_the_served_regions_agreement() -> None:
    samples = [*regions(), *stream("entry", (0, 3100, USE1), (3100, 5200, FAIL), (5200, 43000, USE1))]

    status, detail = finding(judged(samples, RecordedPrometheus())[0], "meshServedRegions")

    assert status == "FAIL"
    assert ("fault: DISAGREE: the mesh saw us-west-2 serve 178 of the gateway's 178 successful requests, no probe "
            "was served by it; the probes were served by us-east-1 169 times, the mesh saw it serve none") in detail
    assert "recovery: agree (us-east-1 190 probes / 170 requests)" in detail  # the standby at the edge: 10 of 180


def test_unreachable_telemetry_leaves_the_verdict_to_the_probes() -> None:
    def refused(url: str, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
        raise ConnectionRefusedError(111, "refused")

    assessment, saved = judged(probes(), refused)

    assert [finding(assessment, f)[0] for f in ("meshErrorRatio", "meshFailover", "meshServedRegions")] == [
        "INCONCLUSIVE"] * 3
    assert "could not be reached" in finding(assessment, "meshFailover")[1]
    assert assessment.verdict == "PASS" and "corroborating not judged" in assessment.verdict_reason
    assert assessment.telemetry is not None and assessment.telemetry.status == "unavailable"
    assert saved == {}


def test_a_drill_without_telemetry_has_no_telemetry_findings() -> None:
    spec, configured = make_spec(), make_spec(telemetry=TELEMETRY).telemetry
    assert configured is not None
    prometheus = RecordedPrometheus()
    assessment = run(spec, probes())

    assert with_telemetry(assessment, spec, SampleColumns.of(probes()), PrometheusApi(configured, transport=prometheus),
                          lambda n, d: n) is assessment
    assert prometheus.asked == []
    assert assessment.telemetry is None
    assert not any(f.id.startswith("mesh") for f in assessment.findings)


def test_a_counter_reset_and_a_series_born_mid_window_are_counted_from_zero() -> None:
    grid = Grid(start=100.0, end=104.0, step=1.0)

    assert increases([[100, "50"], [101, "55"], [102, "3"], [103, "4"]], grid) == [0, 5, 3, 1, 0]
    assert increases([[102, "7"], [104, "9"]], grid) == [0, 0, 7, 0, 2]


def test_a_local_reply_is_an_error_whatever_its_status() -> None:
    assert is_error("503", "-") and is_error("200", "UH") and is_error("0", "-") and is_error("429", "RL,UO")
    assert not is_error("200", "-") and not is_error("404", "-")


def test_the_quantile_interpolates_inside_the_bucket_that_holds_the_rank() -> None:
    assert quantile(0.99, {5.0: 0, 10.0: 100, float("inf"): 100}) == pytest.approx(9.95)
    assert quantile(0.5, {5.0: 10, 10.0: 20, float("inf"): 40}) == 10.0
    assert quantile(0.99, {5.0: 0, float("inf"): 0}) is None


def test_the_saved_answer_keeps_the_query_it_answers() -> None:
    _assessment, saved = judged(probes(), RecordedPrometheus())

    document = saved["telemetry/requests.json"]
    assert document["query"]["query"].startswith("sum by (destination_cluster, response_code, response_flags)")
    assert document["answer"] == json.loads(answer("requests"))
    assert document["source"] == "http://127.0.0.1:9090"


def test_without_a_whole_step_before_the_injection_the_mesh_names_no_failover() -> None:
    telemetry = make_spec(telemetry=TELEMETRY).telemetry
    assert telemetry is not None
    answers = {name: json.loads(answer(file)) for name, file in (
        ("requests", "requests"), ("gateway", "gateway"), ("latency", "latency"))}
    phases = [PhaseWindow(name="baseline", from_ms=T0 + 2500, to_ms=T0 + 3000),
              PhaseWindow(name="fault", from_ms=T0 + 3000, to_ms=T0 + 23000)]

    _view, _split, failover = mesh_view(telemetry, answers, Grid(T0 / 1000 - 1, T0 / 1000 + 44, 1.0), phases,
                                        USE1, T0 + 3000)

    assert failover is not None and failover.seconds is None
    assert failover.note == "no whole query step before the injection: no share to compare with"
