"""RPO and replication lag on synthetic marker streams whose truth is known: markers written every interval, a
standby that holds each one ``lag`` seconds later (replication paused when the primary fails, or not), a failover
at a known instant."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from livefire.assessment.rpo import (
    LAG_REQUIRED_READS,
    measure,
    region_rpo,
    replication_lag_finding,
    rpo_finding,
    serving_starts,
)
from livefire.contracts import Sample
from livefire.datachecks.markers import MarkerSample
from livefire.spec import DrillSpec, parse_spec
from tests.conftest import sandbox_spec_document

T0 = 1_700_000_000_000.0
STANDBY = "us-west-2"


@dataclass(frozen=True)
class Replication:
    """Markers every ``interval_s`` from T0; the standby holds a marker ``lag_s`` after it was written, except
    (``paused``) what was due after the primary failed at ``failed_s``; it starts serving at ``serving_s``."""

    lag_s: float
    interval_s: float
    failed_s: float
    serving_s: float
    paused: bool = True
    end_s: float = 40.0
    read_offset_s: float = 0.013

    def replicated_until(self, at_s: float) -> float:
        """The true replication point: every write sent before it is held at ``at_s``."""
        until = at_s - self.lag_s
        return min(until, self.failed_s - self.lag_s) if self.paused and at_s >= self.failed_s else until

    @property
    def true_rpo_s(self) -> float:
        return max(0.0, self.failed_s - self.replicated_until(self.serving_s))

    def markers(self) -> list[MarkerSample]:
        count = math.ceil(self.end_s / self.interval_s)
        written = [T0 + k * self.interval_s * 1e3 for k in range(count)]
        samples = [MarkerSample(check="orders", region="us-east-1", op="write", scheduled_ms=at, sent_ms=at,
                                ended_ms=at + 1.0, ok=True, seq=k, marker_ms=at) for k, at in enumerate(written)]
        for j in range(count):
            at_s = j * self.interval_s + self.read_offset_s
            held = math.floor(self.replicated_until(at_s) / self.interval_s + 1e-9)
            seen = held if held >= 0 else None
            samples.append(MarkerSample(
                check="orders", region=STANDBY, op="read", scheduled_ms=T0 + at_s * 1e3, sent_ms=T0 + at_s * 1e3,
                ended_ms=T0 + at_s * 1e3 + 2.0, ok=True, seq=seen,
                marker_ms=None if seen is None else T0 + seen * self.interval_s * 1e3))
        return samples

    def rpo(self) -> float | None:
        markers = self.markers()
        result = region_rpo(STANDBY, [m for m in markers if m.op == "write"], [m for m in markers if m.op == "read"],
                            failed_at_ms=T0 + self.failed_s * 1e3, serving_from_ms=T0 + self.serving_s * 1e3)
        assert result.low_s is not None and result.high_s is not None, result.note
        assert result.low_s - 1e-9 <= self.true_rpo_s <= result.high_s + 1e-9, (result, self.true_rpo_s)
        return result.seconds


@pytest.mark.parametrize("lag_s", [0.2, 1.05, 3.333, 10.0])
@pytest.mark.parametrize("interval_s", [0.05, 0.2, 0.5])
@pytest.mark.parametrize("paused", [True, False])
def test_the_rpo_is_within_one_marker_interval_of_the_truth_which_its_bracket_holds(
        lag_s: float, interval_s: float, paused: bool) -> None:
    replication = Replication(lag_s=lag_s, interval_s=interval_s, failed_s=15.017, serving_s=15.9, paused=paused)

    measured = replication.rpo()

    assert measured is not None
    assert abs(measured - replication.true_rpo_s) <= interval_s


def test_a_standby_that_holds_every_acknowledged_write_loses_nothing() -> None:
    replication = Replication(lag_s=0.0, interval_s=0.2, failed_s=10.0, serving_s=10.5, paused=False)

    assert replication.rpo() == 0.0


def test_the_standby_that_never_served_has_no_rpo_rather_than_zero() -> None:
    markers = Replication(lag_s=1.0, interval_s=0.2, failed_s=10.0, serving_s=11.0).markers()

    result = region_rpo(STANDBY, [m for m in markers if m.op == "write"], [m for m in markers if m.op == "read"],
                        failed_at_ms=T0 + 10_000, serving_from_ms=None)

    assert result.seconds is None
    assert "never answered the entrypoint" in result.note


def spec(**objectives: str) -> DrillSpec:
    document = sandbox_spec_document()
    document["dataChecks"] = [{"name": "orders", "kind": "http", "interval": "200ms", "http": {
        "writeUrl": "http://markers.payments.sandbox/m", "readUrls": {STANDBY: "http://usw2.markers.payments.sandbox/m"}}}]
    document["objectives"] = dict(objectives)
    return parse_spec(document)


def test_lag_before_the_fault_is_measured_per_region_and_judged_on_its_p99() -> None:
    replication = Replication(lag_s=1.0, interval_s=0.2, failed_s=30.0, serving_s=31.0)

    results = measure(spec(), replication.markers(), injected_ms=T0 + 30_000, restored_ms=T0 + 35_000,
                      serving={STANDBY: T0 + 31_000}, marker_keys=["k"])
    baseline = next(s for s in results[0].lag if s.phase == "baseline")
    passing = replication_lag_finding(results, 1.5)
    failing = replication_lag_finding(results, 1.0)

    assert baseline.reads >= LAG_REQUIRED_READS
    assert 1.0 <= (baseline.p50_s or 0) <= 1.2 and 1.0 <= (baseline.p99_s or 0) <= 1.2
    assert (passing.status, failing.status) == ("PASS", "FAIL")
    assert passing.evidence.sample_keys == ["k"]
    assert results[0].timeline and all(point.region == STANDBY for point in results[0].timeline)


def test_too_few_reads_before_the_fault_leave_the_lag_unjudged() -> None:
    replication = Replication(lag_s=0.5, interval_s=0.2, failed_s=5.0, serving_s=6.0, end_s=8.0)

    results = measure(spec(), replication.markers(), injected_ms=T0 + 5_000, restored_ms=T0 + 7_000,
                      serving={STANDBY: T0 + 6_000}, marker_keys=[])

    finding = replication_lag_finding(results, 10.0)
    assert finding.status == "INCONCLUSIVE"
    assert finding.required_samples == LAG_REQUIRED_READS


def test_an_rpo_over_its_objective_fails_and_one_within_passes() -> None:
    replication = Replication(lag_s=10.0, interval_s=0.2, failed_s=15.0, serving_s=16.0)
    results = measure(spec(), replication.markers(), injected_ms=T0 + 15_000, restored_ms=T0 + 20_000,
                      serving={STANDBY: T0 + 16_000}, marker_keys=["k"])

    failing, passing = rpo_finding(results, 2.0), rpo_finding(results, 11.0)

    assert failing.status == "FAIL" and passing.status == "PASS"
    assert failing.measured is not None and abs(failing.measured - 10.0) <= 0.2
    assert failing.evidence.target == "dataCheck:orders"


def test_no_markers_make_the_rpo_inconclusive_never_zero() -> None:
    results = measure(spec(), [], injected_ms=T0, restored_ms=T0 + 1000, serving={}, marker_keys=[])

    finding = rpo_finding(results, 2.0)

    assert (finding.status, finding.measured) == ("INCONCLUSIVE", None)
    assert "no marker was acknowledged" in finding.detail


def test_a_region_starts_serving_at_its_first_good_entrypoint_answer_after_the_injection() -> None:
    def sample(at: float, served_by: str | None, ok: bool = True) -> Sample:
        return Sample(target="entrypoint", vantage="local", seq=int(at), scheduled_ms=at, sent_ms=at, ended_ms=at + 1,
                      ok=ok, latency_ms=1.0, served_by=served_by)

    samples = [sample(T0 - 100, STANDBY), sample(T0 + 50, None, ok=False), sample(T0 + 400, STANDBY),
               sample(T0 + 300, STANDBY), sample(T0 + 500, "us-east-1")]

    assert serving_starts(samples, "entrypoint", T0) == {STANDBY: T0 + 300, "us-east-1": T0 + 500}
