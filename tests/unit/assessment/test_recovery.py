"""Recovery math: detection, RTO and its bracket, failback, outages and who served."""

from __future__ import annotations

from typing import Any

import pytest

from livefire.contracts import Sample
from tests.unit.assessment.scenarios import (
    END,
    FAIL,
    INJECT,
    RESTORE,
    T0,
    USE1,
    USW2,
    active_active_spec,
    failover_entry,
    make_spec,
    regions,
    run,
    status,
    stream,
)


def test_detection_times_count_from_the_injection_to_the_first_failure() -> None:
    spec = make_spec()

    result = run(spec, [*regions(), *failover_entry()])

    assert result.fault_took_effect is True
    assert result.detection_seconds == 0.0
    assert result.entrypoint_detection_seconds == 0.1
    entry = next(d for d in result.detection if d.target == "entry")
    assert (entry.first_failure_ms, entry.first_failure_seq) == (T0 + 3100, 31)


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


@pytest.mark.parametrize(
    "false_recovery",
    [[(4000, 4500, USW2), (4500, 6000, FAIL)], [(4000, 6000, USE1)]],
    ids=["a-success-blip-shorter-than-sustain", "successes-served-by-the-faulted-region-during-the-fault"],
)
def test_what_is_not_a_sustained_success_on_a_healthy_region_is_not_recovery(
    false_recovery: list[tuple[int, int, Any]],
) -> None:
    spec = make_spec()
    entry = stream(
        "entry",
        (0, INJECT + 100, USE1),
        (INJECT + 100, 4000, FAIL),
        *false_recovery,
        (6000, 25000, USW2),
        (25000, END, USE1),
    )

    result = run(spec, [*regions(), *entry])

    assert result.rto_seconds == 3.0
    assert result.rto_bracket is not None
    assert result.rto_bracket.last_failure_ms == T0 + 5900


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


def test_no_outage_observed_is_no_rto_not_an_rto_of_zero() -> None:
    spec = make_spec()
    entry = stream("entry", (0, INJECT + 100, USE1), (INJECT + 100, 25000, USW2), (25000, END, USE1))

    result = run(spec, [*regions(), *entry])

    assert result.rto_seconds is None
    assert result.rto_bracket is None
    assert result.rto_note.startswith("no outage observed")
    assert result.outage_observed is False
    assert result.max_outage_ms == 0.0
    rto = result.finding("rto")
    assert rto is not None and rto.measured is None
    assert (rto.status, "no outage observed" in rto.detail) == ("INCONCLUSIVE", True)  # active-passive fails over


def test_a_vantage_without_outage_does_not_hide_the_rto_another_vantage_measured() -> None:
    spec = make_spec()
    calm = stream("entry", (0, INJECT + 100, USE1), (INJECT + 100, 25000, USW2), (25000, END, USE1), vantage="far")
    samples = [*regions("local"), *failover_entry(vantage="local"), *regions("far"), *calm]

    result = run(spec, samples, vantages=("local", "far"))

    assert result.rto_seconds == 2.2
    assert result.outage_observed is True
    assert status(result, "rto") == "PASS"


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


def test_active_active_failback_waits_for_the_faulted_region_to_serve_again() -> None:
    spec = active_active_spec(failbackRto="5s")
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


# --- fault instants are brackets [request sent, answer received] ---------------------------------------------


def test_a_fault_that_takes_effect_while_the_patch_is_in_flight_changes_no_finding() -> None:
    spec = make_spec()
    samples = [*regions(), *failover_entry()]  # the entrypoint fails 100 ms after the patch was sent

    answered_late = run(spec, samples, injection_answered_at_ms=T0 + INJECT + 500)
    answered_at_once = run(spec, samples)

    assert answered_late.rto_seconds == answered_at_once.rto_seconds == 2.2  # from the send, not the answer
    assert [(f.id, f.status) for f in answered_late.findings] == [(f.id, f.status) for f in answered_at_once.findings]
    assert answered_late.verdict == "PASS", answered_late.verdict_reason
    assert answered_late.injection is not None
    assert (answered_late.injection.sent_ms, answered_late.injection.answered_ms) == (T0 + INJECT, T0 + INJECT + 500)


def test_a_standby_answer_inside_the_injection_bracket_is_neither_before_nor_during_the_fault() -> None:
    spec = make_spec()
    entry = stream("entry", (0, INJECT, USE1), (INJECT, INJECT + 400, USW2), (INJECT + 400, 5200, FAIL),
                   (5200, 25000, USW2), (25000, END, USE1))

    bracketed = run(spec, [*regions(), *entry], injection_answered_at_ms=T0 + INJECT + 500)
    stamped_at_the_answer = run(spec, [*regions(), *entry], injected_at_ms=T0 + INJECT + 500)

    standby = bracketed.finding("standbyServedDuringFault")
    assert standby is not None
    assert standby.status == "PASS", standby.detail
    assert standby.measured == 178  # 5.2 s to 23 s; the 4 answers inside the bracket are not counted
    late = stamped_at_the_answer.finding("standbyServedDuringFault")
    assert late is not None and late.status == "FAIL" and "before the injection" in late.detail


def test_failback_counts_from_the_restore_request_and_the_assessment_states_both_brackets() -> None:
    spec = make_spec()

    result = run(spec, [*regions(), *failover_entry()], restore_answered_at_ms=T0 + RESTORE + 800)

    assert result.failback_seconds == 2.0
    assert result.restore is not None
    assert (result.restore.sent_ms, result.restore.answered_ms) == (T0 + RESTORE, T0 + RESTORE + 800)


# ---------------------------------------------------------------- a window that ends before a failback is sustained


def ended_at(samples: list[Sample], at: int) -> list[Sample]:
    """The probes of a window that closed at ``at`` ms."""
    return [s for s in samples if s.sent_ms < T0 + at]


def test_a_window_that_ends_inside_the_primarys_first_run_leaves_the_failback_unjudged_not_failed() -> None:
    spec = make_spec()  # failbackRto 15 s, sustain 1 s
    closed = RESTORE + 3000  # the window saw 3 s after the rollback: a failback by 15 s could still come

    result = run(spec, ended_at([*regions(), *failover_entry(failback_at=RESTORE + 2500)], closed))

    assert result.failback_seconds is None
    assert "the window ended 2.900 s after the rollback" in result.failback_note
    assert status(result, "failbackRto") == "INCONCLUSIVE"
    assert status(result, "primaryServedAfterFailback") == "INCONCLUSIVE"


def test_a_window_that_ends_while_the_standby_still_serves_fails_the_failback() -> None:
    spec = make_spec()

    result = run(spec, ended_at([*regions(), *failover_entry(failback_at=END)], RESTORE + 3000))

    assert result.failback_seconds is None
    assert "never served a sustained 1 s run after the rollback" in result.failback_note
    assert status(result, "failbackRto") == "FAIL"
    assert status(result, "primaryServedAfterFailback") == "FAIL"


def test_a_run_that_opens_after_the_objective_fails_even_when_the_window_ends_inside_it() -> None:
    spec = make_spec()  # failbackRto 15 s

    result = run(spec, [*regions(), *failover_entry(failback_at=END - 500)])  # back 19.5 s after the rollback

    assert result.failback_seconds is None
    assert status(result, "failbackRto") == "FAIL"


@pytest.mark.parametrize(("objective", "expected"), [("5s", "FAIL"), ("10s", "INCONCLUSIVE")])
def test_a_vantage_cut_short_leaves_the_failback_unjudged_unless_another_already_missed_the_objective(
        objective: str, expected: str) -> None:
    spec = make_spec(objectives={"rto": "5s", "failbackRto": objective, "availability": 90})
    cut_short = ended_at([*regions(), *failover_entry(failback_at=RESTORE + 2500)], RESTORE + 3000)
    back_after_8_s = [*regions("far"), *failover_entry(failback_at=RESTORE + 8000, vantage="far")]

    result = run(spec, [*cut_short, *back_after_8_s], vantages=("local", "far"))

    assert status(result, "failbackRto") == expected
