"""Steady state: the baseline gate before the fault and the steadyAfterRollback finding at the end of recovery."""

from __future__ import annotations

from collections.abc import Sequence

from livefire.assessment import steady_state
from livefire.assessment.columns import SampleColumns
from livefire.contracts import Sample, SteadyResult
from livefire.spec import DrillSpec
from tests.unit.assessment.scenarios import (
    END,
    FAIL,
    INJECT,
    RESTORE,
    T0,
    USE1,
    USW2,
    failover_entry,
    make_spec,
    regions,
    run,
    status,
    stream,
)


def steady(spec: DrillSpec, baseline: list[Sample], expected_targets: Sequence[str] = ()) -> SteadyResult:
    return steady_state(spec, SampleColumns.of(baseline), expected_targets=expected_targets)


def test_a_healthy_baseline_is_steady() -> None:
    spec = make_spec()

    baseline = [s for s in [*regions(), *failover_entry()] if s.sent_ms < T0 + INJECT]

    result = steady(spec, baseline)

    assert result.steady is True


def test_an_unsteady_baseline_names_the_target() -> None:
    spec = make_spec()
    entry = stream("entry", (0, 2500, USE1), (2500, INJECT, FAIL))

    result = steady(spec, [*stream("uswest2", (0, INJECT, USW2)), *entry])

    assert result.steady is False
    assert "target entry from vantage local" in result.reason
    assert "uswest2" not in result.reason


def every_tenth_failing(until: int = INJECT) -> list[Sample]:
    return [s.model_copy(update={"ok": False, "status": 503, "served_by": None}) if s.seq % 10 == 9 else s
            for s in stream("entry", (0, until, USE1))]


def test_a_lower_availability_objective_relaxes_the_steady_floor() -> None:
    strict, lenient = make_spec(objectives={}), make_spec(objectives={"availability": 80})

    assert steady(lenient, every_tenth_failing()).steady is True
    unsteady = steady(strict, every_tenth_failing())
    assert unsteady.steady is False
    assert "steady.availability: 90.00% < 99% (27/30 ok)" in unsteady.reason


def test_the_steady_floor_can_be_set_in_the_spec() -> None:
    spec = make_spec(steady={"availability": 85})

    assert steady(spec, every_tenth_failing()).steady is True


def test_a_run_of_failures_longer_than_allowed_is_not_steady_even_above_the_floor() -> None:
    spec = make_spec(objectives={"availability": 80})
    entry = stream("entry", (0, 2500, USE1), (2500, INJECT, FAIL))

    result = steady(spec, entry)

    assert result.steady is False
    assert "steady.maxConsecutiveErrors: 5 failed probes in a row from seq 25 (at most 2)" in result.reason
    assert steady(make_spec(objectives={"availability": 80}, steady={"maxConsecutiveErrors": 5}),
                        entry).steady is True


def test_a_slow_baseline_is_not_steady_when_the_spec_caps_its_p99() -> None:
    spec = make_spec(steady={"p99Latency": "50ms"})
    entry = stream("entry", (0, INJECT, USE1), latency=80.0)

    result = steady(spec, entry)

    assert result.steady is False
    assert "steady.p99Latency: p99 80.0 ms > 50 ms" in result.reason
    assert steady(make_spec(), entry).steady is True


def test_a_target_with_too_few_or_no_samples_is_not_steady() -> None:
    spec = make_spec()
    entry = stream("entry", (0, 200, USE1))

    result = steady(spec, entry, expected_targets=["entry", "uswest2"])

    assert result.steady is False
    assert "target entry from vantage local: 2 probes (need at least 3)" in result.reason
    assert "target uswest2 from vantage local: 0 probes" in result.reason


def test_no_baseline_samples_at_all_is_not_steady() -> None:
    result = steady(make_spec(), [])

    assert (result.steady, result.reason) == (False, "no baseline samples")


# --- after the rollback: the last third of the recovery phase (23 s to 42.9 s: from 36.3 s) ---------------------


def test_a_clean_recovery_is_steady_after_the_rollback_over_the_last_third_of_recovery() -> None:
    result = run(make_spec(), [*regions(), *failover_entry()])

    steady = result.finding("steadyAfterRollback")
    assert steady is not None
    assert steady.status == "PASS", steady.detail
    assert steady.evidence.from_ms == T0 + 36300  # 42.9 s - (42.9 s - 23 s) / 3, to the next probe
    assert (steady.required_samples, steady.samples) == (3, 67)


def test_a_rollback_that_leaves_the_entrypoint_failing_fails_steady_after_rollback() -> None:
    entry = [s.model_copy(update={"ok": False, "status": 503, "served_by": None})
             if s.sent_ms >= T0 + 38000 and s.seq % 5 == 0 else s for s in failover_entry()]

    result = run(make_spec(), [*regions(), *entry])

    steady = result.finding("steadyAfterRollback")
    assert steady is not None and steady.status == "FAIL"
    assert "steady.availability" in steady.detail
    assert result.verdict == "FAIL"


def test_a_rollback_that_leaves_the_entrypoint_slow_fails_steady_after_rollback() -> None:
    entry = [s.model_copy(update={"latency_ms": 200.0}) if s.sent_ms >= T0 + RESTORE else s for s in failover_entry()]

    result = run(make_spec(), [*regions(), *entry])

    steady = result.finding("steadyAfterRollback")
    assert steady is not None and steady.status == "FAIL"
    assert "median latency 200.0 ms > 70.0 ms (baseline median 20.0 ms)" in steady.detail


def failing_back_at(at: int) -> list[Sample]:
    return stream("entry", (0, INJECT + 100, USE1), (INJECT + 100, 5200, FAIL), (5200, at, USW2), (at, END, USE1))


def test_an_active_passive_entrypoint_still_on_the_standby_at_the_end_is_not_steady_after_rollback() -> None:
    result = run(make_spec(objectives={}), [*regions(), *failing_back_at(42500)])

    steady = result.finding("steadyAfterRollback")
    assert steady is not None and steady.status == "FAIL"
    assert "the primary does not serve again: 6 of the 11 answers in the last 1 s came from elsewhere (last seq " \
        "424, us-west-2)" in steady.detail


def test_a_failback_inside_the_window_that_holds_to_the_end_is_steady() -> None:
    result = run(make_spec(objectives={}), [*regions(), *failing_back_at(40000)])

    assert status(result, "steadyAfterRollback") == "PASS"


def test_steady_after_rollback_judges_the_window_the_spec_sets() -> None:
    entry = [s.model_copy(update={"ok": False, "status": 503, "served_by": None}) if s.seq in (380, 385) else s
             for s in failover_entry()]  # two failures at 38 s, inside the last third but not the last 2 s

    default = run(make_spec(objectives={}), [*regions(), *entry])
    last_two_seconds = run(make_spec(objectives={}, steady={"window": "2s"}), [*regions(), *entry])

    assert status(default, "steadyAfterRollback") == "FAIL"
    assert status(last_two_seconds, "steadyAfterRollback") == "PASS"


def test_steady_after_rollback_is_inconclusive_without_a_restore() -> None:
    result = run(make_spec(), [*regions(), *failover_entry()], restored_at_ms=None)

    steady = result.finding("steadyAfterRollback")
    assert steady is not None and (steady.status, steady.detail) == ("INCONCLUSIVE", "the fault was not restored")


def test_too_few_probes_after_the_rollback_make_it_inconclusive() -> None:
    entry = [s for s in failover_entry() if s.sent_ms < T0 + RESTORE + 200]

    result = run(make_spec(), [*regions(), *entry])

    steady = result.finding("steadyAfterRollback")
    assert steady is not None and steady.status == "INCONCLUSIVE"
    assert "(need 3)" in steady.detail


def test_steady_after_rollback_counts_every_vantage() -> None:
    degraded = [s.model_copy(update={"ok": False, "status": 503, "served_by": None})
                if s.sent_ms >= T0 + 40000 else s for s in failover_entry(vantage="far")]
    samples = [*regions("local"), *failover_entry(vantage="local"), *regions("far"), *degraded]

    result = run(make_spec(), samples, vantages=("local", "far"))

    steady = result.finding("steadyAfterRollback")
    assert steady is not None and steady.status == "FAIL"
    assert steady.evidence.vantage == "far"
    assert "local:" in steady.detail and "far:" in steady.detail


def test_a_window_too_short_for_the_floor_tolerates_one_failed_probe_but_not_two() -> None:
    floor_99 = make_spec(objectives={}, steady={"window": "1s"})  # 11 probes, where 99% needs 100 to resolve
    floor_90 = make_spec(objectives={"availability": 90}, steady={"window": "1s"})  # 90% needs 10: no slack

    def failing(*seqs: int) -> list[Sample]:
        return [s.model_copy(update={"ok": False, "status": 503, "served_by": None}) if s.seq in seqs else s
                for s in failover_entry()]

    assert status(run(floor_99, [*regions(), *failing(425)]), "steadyAfterRollback") == "PASS"
    assert status(run(floor_99, [*regions(), *failing(423, 426)]), "steadyAfterRollback") == "FAIL"
    assert status(run(floor_90, [*regions(), *failing(423, 426)]), "steadyAfterRollback") == "FAIL"
