"""The findings every drill gets (fault effect, sample coverage) and one per objective."""

from __future__ import annotations

import pytest

from tests.unit.assessment.scenarios import (
    END,
    FAIL,
    INJECT,
    KEYS,
    RESTORE,
    T0,
    USE1,
    USW2,
    canary_every_fifth,
    failover_entry,
    make_spec,
    only,
    regions,
    run,
    shift_spec,
    status,
    stream,
    versions,
)


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


def test_a_fault_that_never_shows_in_the_probes_is_inconclusive() -> None:
    spec = make_spec()
    entry = stream("entry", (0, END, USE1))

    result = run(spec, [*regions(faulted_fails=False), *entry])

    assert result.verdict == "INCONCLUSIVE"
    assert result.fault_took_effect is False
    assert status(result, "faultTookEffect") == "INCONCLUSIVE"
    assert "never showed in the probes" in result.verdict_reason


def test_a_slow_failback_fails_only_the_failback_objective() -> None:
    spec = make_spec()

    result = run(spec, [*regions(), *failover_entry(failback_at=RESTORE + 16000)])

    assert result.failback_seconds == 16.0
    assert status(result, "failbackRto") == "FAIL"
    assert status(result, "primaryServedAfterFailback") == "PASS"
    assert result.verdict_reason == "failed: failbackRto"  # back by the end: steady after the rollback


def test_too_few_samples_in_the_recovery_phase_is_inconclusive() -> None:
    spec = make_spec()
    entry = [s for s in failover_entry() if s.sent_ms < T0 + RESTORE + 200]

    result = run(spec, [*regions(), *entry])

    assert result.verdict == "INCONCLUSIVE"
    assert status(result, "sampleCoverage") == "INCONCLUSIVE"
    assert "entry from local in the recovery phase: 2" in result.verdict_reason


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
