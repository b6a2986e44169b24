"""Assessment math on synthetic sample streams whose ground truth is known exactly.

Times in the scenarios are milliseconds relative to T0; every stream is built by ``stream`` from pieces
``(from_ms, to_ms, state)`` where state is the region that answered or FAIL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest

from livefire.assessment import Assessment, assess, percentile, steady_state
from livefire.contracts import Plan, ProbeTarget, Sample
from livefire.spec import DrillSpec, Vantage, parse_spec

T0 = 1_700_000_000_000.0
USE1, USW2, FAIL = "us-east-1", "us-west-2", "FAIL"
INJECT, RESTORE, END = 3000, 23000, 43000
KEYS = [
    "drills/payments/d-1/samples/local/baseline-0000.jsonl.gz",
    "drills/payments/d-1/samples/local/drill-0000.jsonl.gz",
    "drills/payments/d-1/samples/far/drill-0000.jsonl.gz",
]


def make_spec(**overrides: Any) -> DrillSpec:
    document: dict[str, Any] = {
        "apiVersion": "livefire/v1",
        "kind": "Drill",
        "metadata": {"name": "payments-ap", "service": "payments"},
        "pattern": "active-passive",
        "regions": [
            {"name": USE1, "role": "primary", "cluster": {"sandbox": "use1"}, "endpoint": "http://use1/healthz"},
            {"name": USW2, "role": "standby", "cluster": {"sandbox": "usw2"}, "endpoint": "http://usw2/healthz"},
        ],
        "entrypoint": "http://entry/healthz",
        "fault": {
            "kind": "http-abort",
            "region": USE1,
            "target": {"namespace": "payments", "virtualService": "payments"},
            "abort": {"httpStatus": 503, "percent": 100},
        },
        "phases": {"baseline": "3s", "lead": "0s", "fault": "20s", "recovery": "20s"},
        "probes": {"interval": "100ms", "burstInterval": "10ms", "sustain": "1s"},
        "objectives": {"rto": "5s", "failbackRto": "15s", "availability": 90},
        "guardrails": {"allowedNamespaces": ["payments"]},
    }
    document.update(overrides)
    return parse_spec(document)


def make_plan(spec: DrillSpec, vantages: Iterable[str] = ("local",)) -> Plan:
    targets = [ProbeTarget(name="entry", url=spec.entrypoint, region=None, role="entrypoint")]
    targets += [
        ProbeTarget(name=r.name.replace("-", ""), url=r.endpoint, region=r.name, role=r.role) for r in spec.regions
    ]
    return Plan(
        drill_id="d-1",
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:drill:d-1",
        service=spec.metadata.service,
        pattern=spec.pattern,
        mode="live",
        spec_key="drills/payments/d-1/spec.json",
        spec_digest=spec.digest(),
        evidence_prefix="drills/payments/d-1/",
        started_at_ms=int(T0),
        vantages=[Vantage(name=v, region=USE1) for v in vantages],
        targets=targets,
        faults=[],
        baseline_seconds=3.0,
        observe_seconds=40.0,
        lead_wait_seconds=0,
        fault_wait_seconds=20,
    )


def stream(
    target: str,
    *pieces: tuple[int, int, str],
    step: int = 100,
    vantage: str = "local",
    latency: float = 20.0,
) -> list[Sample]:
    """Probes every ``step`` ms over each piece; a piece's state is the serving region or FAIL (a 503)."""
    samples: list[Sample] = []
    for start, end, state in pieces:
        for at in range(start, end, step):
            failed = state == FAIL
            samples.append(
                Sample(
                    target=target,
                    vantage=vantage,
                    seq=len(samples),
                    scheduled_ms=T0 + at,
                    sent_ms=T0 + at,
                    ended_ms=T0 + at + latency,
                    ok=not failed,
                    status=503 if failed else 200,
                    latency_ms=latency,
                    served_by=None if failed else state,
                    version="v1",
                )
            )
    return samples


def regions(vantage: str = "local", *, faulted_fails: bool = True) -> list[Sample]:
    use1_fault = FAIL if faulted_fails else USE1
    return [
        *stream("useast1", (0, INJECT, USE1), (INJECT, RESTORE, use1_fault), (RESTORE, END, USE1), vantage=vantage),
        *stream("uswest2", (0, END, USW2), vantage=vantage),
    ]


def failover_entry(
    outage_end: int = 5200, failback_at: int = 25000, vantage: str = "local", step: int = 100
) -> list[Sample]:
    """Primary until just after the injection, fails from 3100 to outage_end, standby, then primary again."""
    return stream(
        "entry",
        (0, INJECT + 100, USE1),
        (INJECT + 100, outage_end, FAIL),
        (outage_end, failback_at, USW2),
        (failback_at, END, USE1),
        vantage=vantage,
        step=step,
    )


def run(spec: DrillSpec, samples: list[Sample], vantages: Iterable[str] = ("local",), **times: Any) -> Assessment:
    timeline = {"injected_at_ms": T0 + INJECT, "restored_at_ms": T0 + RESTORE} | times
    return assess(spec, make_plan(spec, vantages), samples, sample_keys=KEYS, **timeline)


def status(assessment: Assessment, finding_id: str) -> str:
    finding = assessment.finding(finding_id)
    assert finding is not None, f"no finding {finding_id}"
    return finding.status


def test_a_clean_active_passive_failover_passes_with_the_exact_rto_and_bracket() -> None:
    spec = make_spec()

    result = run(spec, [*regions(), *failover_entry()])

    assert result.verdict == "PASS", result.verdict_reason
    assert result.rto_seconds == 2.2
    assert result.rto_bracket is not None
    assert (result.rto_bracket.last_failure_ms, result.rto_bracket.first_success_ms) == (T0 + 5100, T0 + 5200)
    assert result.rto_bracket.width_ms == 100
    assert result.rto_bracket.first_success_ended_ms == T0 + 5220  # the good probe saw the server by its end
    assert result.rto_bracket.contains(T0 + 5210) and not result.rto_bracket.contains(T0 + 5221)
    assert not result.rto_bracket.contains(T0 + 5099)
    assert result.failback_seconds == 2.0
    assert result.failback_bracket is not None
    assert result.failback_bracket.last_failure_ms == T0 + 24900
    assert result.failback_bracket.first_success_ms == T0 + 25000
    assert [f.id for f in result.findings] == [
        "faultTookEffect",
        "sampleCoverage",
        "rto",
        "failbackRto",
        "availability",
        "standbyServedDuringFault",
        "primaryServedAfterFailback",
    ]
    assert all(f.status == "PASS" for f in result.findings)


def test_detection_times_count_from_the_injection_to_the_first_failure() -> None:
    spec = make_spec()

    result = run(spec, [*regions(), *failover_entry()])

    assert result.fault_took_effect is True
    assert result.detection_seconds == 0.0
    assert result.entrypoint_detection_seconds == 0.1
    entry = next(d for d in result.detection if d.target == "entry")
    assert (entry.first_failure_ms, entry.first_failure_seq) == (T0 + 3100, 31)


def test_availability_counts_every_entrypoint_probe_of_the_fault_and_recovery_phases() -> None:
    spec = make_spec()

    result = run(spec, [*regions(), *failover_entry()])

    availability = result.finding("availability")
    assert availability is not None
    assert availability.measured == pytest.approx(100.0 * 379 / 400)
    assert availability.threshold == 90.0
    fault = result.stats_for("fault", "local", "entry")
    assert fault is not None
    assert (fault.sent, fault.ok, fault.errors) == (200, 179, {"http-503": 21})
    assert fault.served_by == {"us-east-1@v1": 1, "us-west-2@v1": 178}
    baseline = result.stats_for("baseline", "local", "entry")
    assert baseline is not None
    assert (baseline.sent, baseline.availability_pct) == (30, 100.0)


def test_the_longest_outage_runs_from_the_first_failure_to_the_next_success() -> None:
    spec = make_spec()

    result = run(spec, [*regions(), *failover_entry()])

    assert result.max_outage_ms == 2100
    assert result.max_outage is not None
    assert (result.max_outage.from_ms, result.max_outage.to_ms, result.max_outage.failures) == (
        T0 + 3100,
        T0 + 5200,
        21,
    )


def test_the_served_by_timeline_shows_primary_then_standby_then_primary() -> None:
    spec = make_spec()

    result = run(spec, [*regions(), *failover_entry()])

    timeline = [(s.region, s.from_ms - T0, s.to_ms - T0, s.samples) for s in result.served_by_timeline]
    assert timeline == [
        (USE1, 0, 3000, 31),
        (USW2, 5200, 24900, 198),
        (USE1, 25000, 42900, 180),
    ]


def test_burst_samples_narrow_the_rto_bracket_to_the_burst_interval() -> None:
    spec = make_spec()
    entry = failover_entry()
    burst = stream("entry", (5110, 5200, FAIL), step=10)
    for extra in burst:
        entry.append(extra.model_copy(update={"seq": 1000 + extra.seq, "burst": True}))

    result = run(spec, [*regions(), *entry])

    assert result.rto_bracket is not None
    assert result.rto_bracket.last_failure_ms == T0 + 5190
    assert result.rto_bracket.width_ms == 10
    assert result.rto_seconds == 2.2


def test_a_recovery_slower_than_the_objective_fails_the_rto_finding() -> None:
    spec = make_spec()

    result = run(spec, [*regions(), *failover_entry(outage_end=9000)])

    assert result.verdict == "FAIL"
    assert result.rto_seconds == 6.0
    rto = result.finding("rto")
    assert rto is not None
    assert (rto.status, rto.measured, rto.threshold) == ("FAIL", 6.0, 5.0)
    assert rto.evidence.seqs == [89, 90]
    assert rto.evidence.sample_keys == sorted(k for k in KEYS if "/local/" in k)
    assert "failed: rto" in result.verdict_reason


def test_a_success_blip_shorter_than_sustain_is_not_recovery() -> None:
    spec = make_spec()
    entry = stream(
        "entry",
        (0, INJECT + 100, USE1),
        (INJECT + 100, 4000, FAIL),
        (4000, 4500, USW2),
        (4500, 6000, FAIL),
        (6000, 25000, USW2),
        (25000, END, USE1),
    )

    result = run(spec, [*regions(), *entry])

    assert result.rto_seconds == 3.0
    assert result.rto_bracket is not None
    assert result.rto_bracket.last_failure_ms == T0 + 5900


def test_successes_served_by_the_faulted_region_during_the_fault_are_not_recovery() -> None:
    spec = make_spec()
    entry = stream(
        "entry",
        (0, INJECT + 100, USE1),
        (INJECT + 100, 4000, FAIL),
        (4000, 6000, USE1),
        (6000, 25000, USW2),
        (25000, END, USE1),
    )

    result = run(spec, [*regions(), *entry])

    assert result.rto_seconds == 3.0
    assert result.rto_bracket is not None
    assert result.rto_bracket.last_failure_ms == T0 + 5900


def test_a_fault_that_never_shows_in_the_probes_is_inconclusive() -> None:
    spec = make_spec()
    entry = stream("entry", (0, END, USE1))

    result = run(spec, [*regions(faulted_fails=False), *entry])

    assert result.verdict == "INCONCLUSIVE"
    assert result.fault_took_effect is False
    assert status(result, "faultTookEffect") == "INCONCLUSIVE"
    assert "never showed in the probes" in result.verdict_reason


def test_a_drill_without_injection_is_inconclusive() -> None:
    spec = make_spec()

    result = run(spec, [*regions(), *failover_entry()], injected_at_ms=None, restored_at_ms=None)

    assert result.verdict == "INCONCLUSIVE"
    assert result.rto_seconds is None
    assert [p.name for p in result.phases] == ["baseline"]


def test_an_entrypoint_that_never_recovers_has_no_rto_and_fails() -> None:
    spec = make_spec()
    entry = stream("entry", (0, INJECT + 100, USE1), (INJECT + 100, END, FAIL))

    result = run(spec, [*regions(), *entry])

    assert result.verdict == "FAIL"
    assert result.rto_seconds is None
    assert result.rto_bracket is None
    assert "never recovered" in result.rto_note
    assert status(result, "rto") == "FAIL"
    assert status(result, "failbackRto") == "FAIL"
    assert result.max_outage_ms == pytest.approx(END - 100 + 20 - (INJECT + 100))


def test_recovery_only_after_the_rollback_is_measured_and_named() -> None:
    spec = make_spec(objectives={"rto": "30s"})
    entry = stream("entry", (0, INJECT + 100, USE1), (INJECT + 100, RESTORE + 300, FAIL), (RESTORE + 300, END, USE1))

    result = run(spec, [*regions(), *entry])

    assert result.rto_seconds == 20.3
    assert "only after the rollback" in result.rto_note
    assert status(result, "standbyServedDuringFault") == "FAIL"
    assert result.verdict == "FAIL"


def test_a_seamless_failover_has_rto_zero_and_says_so() -> None:
    spec = make_spec()
    entry = stream("entry", (0, INJECT + 100, USE1), (INJECT + 100, 25000, USW2), (25000, END, USE1))

    result = run(spec, [*regions(), *entry])

    assert result.verdict == "PASS", result.verdict_reason
    assert result.rto_seconds == 0.0
    assert result.rto_bracket is None
    assert "seamless" in result.rto_note
    assert result.max_outage_ms == 0.0


def test_a_seamless_entrypoint_still_served_by_the_faulted_region_fails_the_pattern() -> None:
    spec = make_spec()
    entry = stream("entry", (0, END, USE1))

    result = run(spec, [*regions(), *entry])

    assert result.rto_seconds == 0.0
    assert "faulted region us-east-1 served" in result.rto_note
    assert status(result, "standbyServedDuringFault") == "FAIL"
    assert result.verdict == "FAIL"


def test_a_primary_that_never_returns_fails_failback() -> None:
    spec = make_spec()

    result = run(spec, [*regions(), *failover_entry(failback_at=END)])

    assert result.failback_seconds is None
    assert status(result, "failbackRto") == "FAIL"
    assert status(result, "primaryServedAfterFailback") == "FAIL"
    assert status(result, "rto") == "PASS"
    assert result.verdict == "FAIL"


def test_a_slow_failback_fails_only_the_failback_objective() -> None:
    spec = make_spec()

    result = run(spec, [*regions(), *failover_entry(failback_at=RESTORE + 16000)])

    assert result.failback_seconds == 16.0
    assert status(result, "failbackRto") == "FAIL"
    assert status(result, "primaryServedAfterFailback") == "PASS"
    assert result.verdict_reason == "failed: failbackRto"


def test_a_standby_that_served_before_the_injection_fails_the_pattern() -> None:
    spec = make_spec()
    entry = stream(
        "entry", (0, 1000, USE1), (1000, 1500, USW2), (1500, INJECT + 100, USE1),
        (INJECT + 100, 5200, FAIL), (5200, 25000, USW2), (25000, END, USE1),
    )

    result = run(spec, [*regions(), *entry])

    assert status(result, "standbyServedDuringFault") == "FAIL"
    assert result.verdict == "FAIL"


def test_too_few_samples_in_the_recovery_phase_is_inconclusive() -> None:
    spec = make_spec()
    entry = [s for s in failover_entry() if s.sent_ms < T0 + RESTORE + 200]

    result = run(spec, [*regions(), *entry])

    assert result.verdict == "INCONCLUSIVE"
    assert status(result, "sampleCoverage") == "INCONCLUSIVE"
    assert "entry from local in the recovery phase: 2" in result.verdict_reason


def test_the_headline_rto_is_the_worst_vantage() -> None:
    spec = make_spec()
    samples = [
        *regions("local"),
        *failover_entry(vantage="local"),
        *regions("far"),
        *failover_entry(outage_end=7000, vantage="far"),
    ]

    result = run(spec, samples, vantages=("local", "far"))

    assert sorted((r.vantage, r.seconds) for r in result.rto_by_vantage) == [("far", 4.0), ("local", 2.2)]
    assert result.rto_seconds == 4.0
    rto = result.finding("rto")
    assert rto is not None
    assert rto.evidence.vantage == "far"
    assert rto.evidence.sample_keys == ["drills/payments/d-1/samples/far/drill-0000.jsonl.gz"]


def test_a_planned_vantage_without_samples_makes_the_drill_inconclusive() -> None:
    spec = make_spec()

    result = run(spec, [*regions(), *failover_entry()], vantages=("local", "far"))

    assert result.verdict == "INCONCLUSIVE"
    assert "from far" in result.verdict_reason


def test_p99_latency_is_judged_on_successful_entrypoint_probes_during_the_fault() -> None:
    spec = make_spec(objectives={"p99Latency": "50ms"})
    entry = failover_entry()
    slow = {T0 + 6000 + 100 * k for k in range(3)}
    entry = [s.model_copy(update={"latency_ms": 80.0}) if s.sent_ms in slow else s for s in entry]

    result = run(spec, [*regions(), *entry])

    latency = result.finding("p99Latency")
    assert latency is not None
    assert (latency.measured, latency.threshold, latency.status) == (80.0, 50.0, "FAIL")
    fault = result.stats_for("fault", "local", "entry")
    assert fault is not None
    assert (fault.latency.p50_ms, fault.latency.p99_ms) == (20.0, 80.0)


def test_active_active_passes_when_the_surviving_region_keeps_serving() -> None:
    spec = make_spec(
        pattern="active-active",
        regions=[
            {"name": USE1, "role": "active", "cluster": {"sandbox": "use1"}, "endpoint": "http://use1/healthz"},
            {"name": USW2, "role": "active", "cluster": {"sandbox": "usw2"}, "endpoint": "http://usw2/healthz"},
        ],
        objectives={"rto": "5s", "availability": 99},
    )
    both = [s for s in stream("entry", (0, END, USE1)) if (s.sent_ms - T0) % 200 == 0]
    both += [
        s.model_copy(update={"served_by": USW2})
        for s in stream("entry", (0, END, USE1))
        if (s.sent_ms - T0) % 200 == 100
    ]
    entry = [
        s.model_copy(update={"served_by": USW2}) if INJECT <= s.sent_ms - T0 < RESTORE else s for s in both
    ]

    result = run(spec, [*regions(), *entry])

    assert result.verdict == "PASS", result.verdict_reason
    assert status(result, "entrypointKeptServing") == "PASS"
    regions_served = {(s.region, s.from_ms - T0) for s in result.served_by_timeline}
    assert regions_served == {(USE1, 0), (USW2, 100), (USE1, RESTORE)}


def test_active_active_failback_waits_for_the_faulted_region_to_serve_again() -> None:
    spec = make_spec(
        pattern="active-active",
        regions=[
            {"name": USE1, "role": "active", "cluster": {"sandbox": "use1"}, "endpoint": "http://use1/healthz"},
            {"name": USW2, "role": "active", "cluster": {"sandbox": "usw2"}, "endpoint": "http://usw2/healthz"},
        ],
        objectives={"failbackRto": "5s"},
    )
    entry = [
        s.model_copy(update={"served_by": USE1 if (s.sent_ms - T0) % 200 == 0 else USW2})
        for s in stream("entry", (0, END, USW2))
    ]
    entry = [s.model_copy(update={"served_by": USW2}) if INJECT <= s.sent_ms - T0 < 24000 else s for s in entry]

    result = run(spec, [*regions(), *entry])

    assert result.failback_seconds == 1.0
    assert result.failback_bracket is not None
    # from the last probe us-west-2 answered to the first one us-east-1 answered again
    assert (result.failback_bracket.last_failure_ms, result.failback_bracket.first_success_ms) == (
        T0 + 23900, T0 + 24000,
    )
    assert status(result, "failbackRto") == "PASS"


def test_active_active_fails_when_the_entrypoint_drops_below_the_slo() -> None:
    spec = make_spec(
        pattern="active-active",
        regions=[
            {"name": USE1, "role": "active", "cluster": {"sandbox": "use1"}, "endpoint": "http://use1/healthz"},
            {"name": USW2, "role": "active", "cluster": {"sandbox": "usw2"}, "endpoint": "http://usw2/healthz"},
        ],
        objectives={},
    )

    result = run(spec, [*regions(), *failover_entry()])

    kept = result.finding("entrypointKeptServing")
    assert kept is not None
    assert (kept.status, kept.threshold) == ("FAIL", 99.0)
    assert kept.measured == pytest.approx(100.0 * 179 / 200)


def test_a_delay_fault_takes_effect_through_latency_alone() -> None:
    spec = make_spec(
        fault={
            "kind": "http-delay",
            "region": USE1,
            "target": {"namespace": "payments", "virtualService": "payments"},
            "delay": {"fixedDelay": "500ms"},
        },
        objectives={},
    )
    slow_use1 = [
        s.model_copy(update={"latency_ms": 520.0}) if INJECT <= s.sent_ms - T0 < RESTORE else s
        for s in stream("useast1", (0, END, USE1))
    ]
    samples = [*slow_use1, *stream("uswest2", (0, END, USW2)), *failover_entry()]

    result = run(spec, samples)

    assert result.fault_took_effect is True
    assert result.detection_seconds == 0.0


def test_the_assessment_round_trips_through_json() -> None:
    spec = make_spec()
    result = run(spec, [*regions(), *failover_entry()])

    again = Assessment.model_validate_json(result.model_dump_json())

    assert again == result


def test_a_restore_before_the_injection_is_rejected() -> None:
    spec = make_spec()

    with pytest.raises(ValueError, match="before"):
        run(spec, regions(), injected_at_ms=T0 + 5000, restored_at_ms=T0 + 4000)


def test_percentile_uses_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]

    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50.0, 95.0, 99.0)
    assert percentile([5.0, 1.0, 4.0, 2.0, 3.0], 50) == 3.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_a_healthy_baseline_is_steady() -> None:
    spec = make_spec()

    baseline = [s for s in [*regions(), *failover_entry()] if s.sent_ms < T0 + INJECT]

    result = steady_state(spec, baseline)

    assert result.steady is True


def test_an_unsteady_baseline_names_the_target() -> None:
    spec = make_spec()
    entry = stream("entry", (0, 2500, USE1), (2500, INJECT, FAIL))

    result = steady_state(spec, [*stream("uswest2", (0, INJECT, USW2)), *entry])

    assert result.steady is False
    assert "target entry from vantage local" in result.reason
    assert "uswest2" not in result.reason


def test_a_lower_availability_objective_relaxes_the_steady_floor() -> None:
    spec = make_spec(objectives={"availability": 80})
    entry = stream("entry", (0, 2500, USE1), (2500, INJECT, FAIL))

    result = steady_state(spec, entry)

    assert result.steady is True, result.reason


def test_a_target_with_too_few_or_no_samples_is_not_steady() -> None:
    spec = make_spec()
    entry = stream("entry", (0, 200, USE1))

    result = steady_state(spec, entry, expected_targets=["entry", "uswest2"])

    assert result.steady is False
    assert "target entry from vantage local: 2 samples" in result.reason
    assert "target uswest2 from vantage local: 0 samples" in result.reason


def test_no_baseline_samples_at_all_is_not_steady() -> None:
    result = steady_state(make_spec(), [])

    assert (result.steady, result.reason) == (False, "no baseline samples")


# --- canary and blue-green: versions instead of regions -----------------------------------------------------

Pick = Callable[[int], tuple[bool, str]]


def versions(target: str, *pieces: tuple[int, int, Pick], step: int = 100, burst: bool = False) -> list[Sample]:
    """Probes every ``step`` ms; ``pick(at)`` gives (ok, version) of the probe sent at ``at`` ms, served by USE1.

    A failure still names its version, as the sandbox's broken canary does (an app error, not the mesh)."""
    samples: list[Sample] = []
    for start, end, pick in pieces:
        for at in range(start, end, step):
            ok, version = pick(at)
            samples.append(
                Sample(
                    target=target, vantage="local", seq=len(samples), scheduled_ms=T0 + at, sent_ms=T0 + at,
                    ended_ms=T0 + at + 20, ok=ok, status=200 if ok else 500, error=None if ok else "http_5xx",
                    latency_ms=20.0, served_by=USE1, version=version, burst=burst,
                )
            )
    return samples


def only(version: str) -> Pick:
    return lambda _at: (True, version)


def canary_every_fifth(failing_canaries: int = 2) -> Pick:
    """v2 for the probe at every 500 ms + 200 (20%); every ``failing_canaries``-th v2 answer fails."""

    def pick(at: int) -> tuple[bool, str]:
        if at % 500 != 200:
            return True, "v1"
        return (at // 500) % failing_canaries != 0, "v2"

    return pick


def shift_spec(pattern: str, weights: dict[str, int], **objectives: Any) -> DrillSpec:
    return make_spec(
        pattern=pattern,
        regions=[{"name": USE1, "role": "primary", "cluster": {"sandbox": "use1"}, "endpoint": "http://use1/healthz"}],
        fault={
            "kind": "traffic-shift", "region": USE1, "weights": weights,
            "target": {"namespace": "payments", "virtualService": "payments"},
        },
        objectives={"failbackRto": "5s", **objectives},
    )


def canary_run(during: Pick, after: tuple[int, Pick] = (RESTORE + 300, only("v1")), **objectives: Any) -> Assessment:
    spec = shift_spec("canary", {"v1": 80, "v2": 20}, **objectives)
    revert_at, settled = after
    pieces = [(0, INJECT + 200, only("v1")), (INJECT + 200, revert_at, during), (revert_at, END, settled)]
    return run(spec, [*versions("entry", *pieces), *versions("useast1", *pieces)])


def test_a_canary_that_gets_its_weight_passes_with_bounded_errors_and_a_timed_revert() -> None:
    result = canary_run(canary_every_fifth())

    assert result.verdict == "PASS", result.verdict_reason
    split = result.finding("canarySplit")
    assert split is not None and split.threshold == 20.0
    assert split.measured == pytest.approx(100 * 40 / 198, abs=1e-6)  # 40 v2 of 198 probes from 3200 to 22900
    errors = result.finding("canaryErrorsBounded")
    assert errors is not None and errors.measured == pytest.approx(100 * 20 / 198, abs=1e-6)
    assert "v2: 20" in errors.detail
    assert result.failback_seconds == 0.3  # the last v2 answer at 23200, only v1 from 23300
    assert result.failback_bracket is not None and result.failback_bracket.last_failure_ms == T0 + 23200
    assert status(result, "revertedAfterRollback") == "PASS"
    assert result.rto_seconds is None and "does not apply" in result.rto_note
    assert [f.id for f in result.findings] == [
        "faultTookEffect", "sampleCoverage", "failbackRto", "canarySplit", "canaryErrorsBounded",
        "revertedAfterRollback",
    ]


def test_a_canary_that_gets_far_more_than_its_weight_fails_the_split() -> None:
    result = canary_run(lambda at: (True, "v2" if at % 200 == 0 else "v1"))

    assert status(result, "canarySplit") == "FAIL"
    assert "outside the tolerance: v1, v2" in (result.finding("canarySplit") or pytest.fail()).detail
    assert result.verdict == "FAIL"


def test_the_split_tolerance_is_four_binomial_sigmas_plus_one_sample() -> None:
    # 198 probes at p = 0.2: 4 * sqrt(0.16 / 198) + 1/198 = 11.9 points; 30% is inside, 35% is not.
    inside = canary_run(lambda at: (True, "v2" if at % 1000 in (200, 500, 800) else "v1"))
    outside = canary_run(lambda at: (True, "v2" if at % 2000 in (200, 500, 800, 1100, 1400, 1700, 1900) else "v1"))

    assert (inside.finding("canarySplit") or pytest.fail()).measured == pytest.approx(30.3, abs=0.1)
    assert status(inside, "canarySplit") == "PASS"
    assert (outside.finding("canarySplit") or pytest.fail()).measured == pytest.approx(35.2, abs=0.1)
    assert status(outside, "canarySplit") == "FAIL"


def test_errors_of_the_stable_version_beyond_the_canary_share_fail() -> None:
    def broken(at: int) -> tuple[bool, str]:
        version = "v2" if at % 500 == 200 else "v1"
        return at % 300 != 0 and version == "v1", version

    result = canary_run(broken)

    assert status(result, "canaryErrorsBounded") == "FAIL"
    assert result.verdict == "FAIL"


def test_watch_probes_do_not_count_in_the_split() -> None:
    spec = shift_spec("canary", {"v1": 80, "v2": 20})
    pieces = [(0, INJECT + 200, only("v1")), (INJECT + 200, RESTORE + 300, canary_every_fifth()),
              (RESTORE + 300, END, only("v1"))]
    extra = versions("entry", (5000, 6000, only("v2")), step=10, burst=True)
    samples = [*versions("entry", *pieces), *versions("useast1", *pieces)]
    samples += [s.model_copy(update={"seq": 5000 + s.seq}) for s in extra]

    result = run(spec, samples)

    assert (result.finding("canarySplit") or pytest.fail()).measured == pytest.approx(100 * 40 / 198, abs=1e-6)


def test_the_split_ends_when_the_fault_surely_ended_not_when_the_restore_was_recorded() -> None:
    spec = shift_spec("canary", {"v1": 80, "v2": 20})
    pieces = [(0, INJECT + 200, only("v1")), (INJECT + 200, RESTORE, canary_every_fifth()), (RESTORE, END, only("v1"))]
    samples = [*versions("entry", *pieces), *versions("useast1", *pieces)]

    result = run(spec, samples, restored_at_ms=T0 + RESTORE + 2000)  # the plan's fault wait is 20 s

    assert (result.finding("canarySplit") or pytest.fail()).measured == pytest.approx(100 * 40 / 198, abs=1e-6)


def test_a_canary_never_reverted_fails_the_revert() -> None:
    result = canary_run(canary_every_fifth(), after=(END, only("v1")))

    assert status(result, "revertedAfterRollback") == "FAIL"
    assert status(result, "failbackRto") == "FAIL"
    assert result.failback_seconds is None


def test_an_rto_objective_on_a_canary_is_not_judged() -> None:
    result = canary_run(canary_every_fifth(), rto="5s")

    assert status(result, "rto") == "INCONCLUSIVE"
    assert result.verdict == "INCONCLUSIVE"


def blue_green_run(entry: list[tuple[int, int, Pick]], **objectives: Any) -> Assessment:
    spec = shift_spec("blue-green", {"v1": 0, "v2": 100}, **objectives)
    region = [
        (0, INJECT + 100, only("v1")), (INJECT + 100, RESTORE + 100, only("v2")), (RESTORE + 100, END, only("v1")),
    ]
    return run(spec, [*versions("entry", *entry), *versions("useast1", *region)])


CLEAN_CUTOVER = [
    (0, INJECT + 100, only("v1")), (INJECT + 100, RESTORE + 400, only("v2")), (RESTORE + 400, END, only("v1")),
]


def test_a_clean_blue_green_cutover_and_rollback_passes() -> None:
    result = blue_green_run(CLEAN_CUTOVER)

    assert result.verdict == "PASS", result.verdict_reason
    assert (result.finding("mixedVersionWindow") or pytest.fail()).measured == 0.0
    assert (result.finding("zeroErrors") or pytest.fail()).measured == 0.0
    assert result.failback_seconds == 0.4
    assert "version v1" in (result.finding("revertedAfterRollback") or pytest.fail()).title


def test_blue_answering_after_green_longer_than_the_tolerance_fails_the_cutover() -> None:
    def mixed(at: int) -> tuple[bool, str]:
        return True, "v1" if at in (INJECT + 200, INJECT + 500) else "v2"

    entry = [(0, INJECT + 100, only("v1")), (INJECT + 100, RESTORE + 400, mixed), (RESTORE + 400, END, only("v1"))]

    strict = blue_green_run(entry)
    lenient = blue_green_run(entry, mixedVersionWindow="1s")

    mixed_window = strict.finding("mixedVersionWindow")
    assert mixed_window is not None and mixed_window.measured == 0.4  # first v2 at 3100, last v1 at 3500
    assert (mixed_window.status, mixed_window.threshold) == ("FAIL", 0.1)
    assert status(lenient, "mixedVersionWindow") == "PASS"


def test_blue_back_after_the_rollback_is_not_a_mixed_window_even_before_the_restore_is_recorded() -> None:
    entry = [
        (0, INJECT + 100, only("v1")), (INJECT + 100, RESTORE - 1000, only("v2")), (RESTORE - 1000, END, only("v1")),
    ]

    result = blue_green_run(entry)  # the restore is verified and recorded 1 s after the mesh flipped back

    assert (result.finding("mixedVersionWindow") or pytest.fail()).measured == 0.0
    assert result.verdict == "PASS", result.verdict_reason


def test_a_cutover_that_never_settles_on_green_fails() -> None:
    flapping = [(0, INJECT + 100, only("v1")), (INJECT + 100, RESTORE, lambda at: (True, "v2" if at % 700 else "v1")),
                (RESTORE, END, only("v1"))]

    result = blue_green_run(flapping)

    mixed = result.finding("mixedVersionWindow")
    assert mixed is not None and mixed.status == "FAIL" and "never completed" in mixed.detail


def test_a_single_error_during_a_blue_green_cutover_fails_it() -> None:
    entry = [(0, INJECT + 100, only("v1")), (INJECT + 100, RESTORE + 400, lambda at: (at != 9000, "v2")),
             (RESTORE + 400, END, only("v1"))]

    result = blue_green_run(entry)

    zero = result.finding("zeroErrors")
    assert zero is not None and (zero.status, zero.measured) == ("FAIL", 1.0)
    assert zero.evidence.from_ms == T0 + 9000


def test_a_cutover_that_never_happened_is_inconclusive() -> None:
    spec = shift_spec("blue-green", {"v1": 0, "v2": 100})
    flat = [(0, END, only("v1"))]

    result = run(spec, [*versions("entry", *flat), *versions("useast1", *flat)])

    assert status(result, "faultTookEffect") == "INCONCLUSIVE"
    assert status(result, "mixedVersionWindow") == "FAIL"
    assert result.verdict == "INCONCLUSIVE"


# --- failover patterns: what a broken failover looks like ---------------------------------------------------


def test_a_failover_that_never_happened_fails_and_says_so() -> None:
    spec = make_spec(objectives={"rto": "30s", "failbackRto": "15s"})
    entry = stream("entry", (0, INJECT + 100, USE1), (INJECT + 100, RESTORE + 300, FAIL), (RESTORE + 300, END, USE1))

    result = run(spec, [*regions(), *entry])

    assert result.verdict == "FAIL"
    assert result.rto_seconds == 20.3
    standby = result.finding("standbyServedDuringFault")
    assert standby is not None and standby.status == "FAIL"
    assert standby.detail.startswith("failover never happened")
    rto = result.finding("rto")
    assert rto is not None and rto.status == "FAIL" and "only after the rollback" in rto.detail


def test_availability_counts_only_scheduled_probes_not_the_watch_around_an_outage() -> None:
    spec = make_spec(objectives={"availability": 98})
    entry = failover_entry(outage_end=3300)  # two scheduled failures: 3100 and 3200
    watch = stream("entry", (3105, 3300, FAIL), step=5)
    samples = [*regions(), *entry, *(s.model_copy(update={"seq": 1000 + s.seq, "burst": True}) for s in watch)]

    result = run(spec, samples)

    availability = result.finding("availability")
    assert availability is not None
    assert availability.measured == pytest.approx(100 * (1 - 2 / 400))
    assert availability.status == "PASS"


def test_a_shift_without_probes_before_the_injection_is_inconclusive() -> None:
    spec = shift_spec("canary", {"v1": 80, "v2": 20})
    pieces = [(INJECT, RESTORE, canary_every_fifth()), (RESTORE, END, only("v1"))]

    result = run(spec, [*versions("entry", *pieces), *versions("useast1", *pieces)])

    assert result.verdict == "INCONCLUSIVE"
    assert "entry from local in the baseline phase: 0" in result.verdict_reason
