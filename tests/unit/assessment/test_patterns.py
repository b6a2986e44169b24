"""Each DR pattern's own findings: active-passive, active-active, canary and blue-green."""

from __future__ import annotations

import pytest

from tests.unit.assessment.scenarios import (
    CLEAN_CUTOVER,
    END,
    FAIL,
    INJECT,
    RESTORE,
    T0,
    USE1,
    USW2,
    active_active_spec,
    blue_green_run,
    canary_every_fifth,
    canary_run,
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


def test_a_seamless_entrypoint_still_served_by_the_faulted_region_fails_the_pattern() -> None:
    spec = make_spec()
    entry = stream("entry", (0, END, USE1))

    result = run(spec, [*regions(), *entry])

    assert result.rto_seconds is None
    assert "faulted region us-east-1 served" in result.rto_note
    assert status(result, "rto") == "INCONCLUSIVE"
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


def test_a_standby_that_served_before_the_injection_fails_the_pattern() -> None:
    spec = make_spec()
    entry = stream(
        "entry", (0, 1000, USE1), (1000, 1500, USW2), (1500, INJECT + 100, USE1),
        (INJECT + 100, 5200, FAIL), (5200, 25000, USW2), (25000, END, USE1),
    )

    result = run(spec, [*regions(), *entry])

    assert status(result, "standbyServedDuringFault") == "FAIL"
    assert result.verdict == "FAIL"


def test_active_active_passes_when_the_surviving_region_keeps_serving() -> None:
    spec = active_active_spec(rto="5s", availability=99)
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


def test_active_active_fails_when_the_entrypoint_drops_below_the_slo() -> None:
    spec = active_active_spec()

    result = run(spec, [*regions(), *failover_entry()])

    kept = result.finding("entrypointKeptServing")
    assert kept is not None
    assert (kept.status, kept.threshold) == ("FAIL", 99.0)
    assert kept.measured == pytest.approx(100.0 * 179 / 200)


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
        "revertedAfterRollback", "steadyAfterRollback",
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


def test_active_active_without_any_outage_passes_its_rto_with_no_rto_value() -> None:
    spec = active_active_spec(rto="5s")
    entry = [s.model_copy(update={"served_by": USW2 if (s.sent_ms - T0) % 200 or INJECT <= s.sent_ms - T0 < RESTORE
                                  else USE1}) for s in stream("entry", (0, END, USE1))]

    result = run(spec, [*regions(), *entry])

    rto = result.finding("rto")
    assert rto is not None
    assert (rto.status, rto.measured) == ("PASS", None)
    assert "no outage observed" in rto.detail
    assert result.rto_seconds is None
    assert result.verdict == "PASS", result.verdict_reason


def test_probes_still_in_flight_when_the_injection_was_sent_belong_to_the_fault() -> None:
    spec = make_spec()
    in_flight = [
        *stream("entry", (INJECT - 100, INJECT, FAIL), latency=200.0),  # answered 100 ms after the injection
        *stream("entry", (INJECT - 50, INJECT, USW2), latency=200.0),  # the standby answered it, after failover
    ]
    entry = stream(
        "entry", (0, INJECT - 100, USE1), (INJECT, INJECT + 100, FAIL), (INJECT + 100, INJECT + 5000, USW2),
        (INJECT + 5000, INJECT + 5100, FAIL), (INJECT + 5100, 25000, USW2), (25000, END, USE1),
    )

    result = run(spec, [*regions(), *entry, *in_flight])

    assert status(result, "standbyServedDuringFault") == "PASS"
    assert result.rto_seconds is not None and result.rto_seconds < 1.0  # not the blip at +5 s
