"""rtoRegression: a drill whose RTO is worse than the configured factor times the service's recent median fails;
the recent RTOs are the history's earlier completed drills of the same pattern."""

from __future__ import annotations

from livefire.assessment.regression import recent_rtos, with_recent_rtos
from livefire.records import HistoryEntry
from tests.unit.assessment.scenarios import failover_entry, make_spec, regions, run, status

SPEC = make_spec(objectives={"rto": "5s", "rtoRegression": 1.5})


def entry(drill_id: str, rto: float | None, *, pattern: str = "active-passive",
          status_: str = "COMPLETED") -> HistoryEntry:
    return HistoryEntry(drill_id=drill_id, started_at_ms=1, pattern=pattern, status=status_, rto_seconds=rto)


def test_an_rto_over_the_factor_times_the_recent_median_fails_the_drill() -> None:
    slow = run(SPEC, [*regions(), *failover_entry(outage_end=8000)])  # RTO about 5 s

    result = with_recent_rtos(slow, SPEC, [2.0, 2.2, 2.1])

    assert status(result, "rtoRegression") == "FAIL"
    finding = result.finding("rtoRegression")
    assert finding is not None and finding.threshold == 3.15
    assert "against 1.5 x the median 2.100 s of the last 3 drills (2.000, 2.200, 2.100 s" in finding.detail
    assert result.verdict == "FAIL"


def test_an_rto_in_line_with_the_recent_drills_passes() -> None:
    usual = run(SPEC, [*regions(), *failover_entry(outage_end=5200)])  # RTO about 2.2 s

    result = with_recent_rtos(usual, SPEC, [2.0, 2.2, 2.1])

    assert status(result, "rtoRegression") == "PASS"
    assert result.verdict == "PASS", result.verdict_reason


def test_without_an_earlier_rto_the_regression_cannot_be_judged() -> None:
    first = run(SPEC, [*regions(), *failover_entry()])

    assert status(with_recent_rtos(first, SPEC, []), "rtoRegression") == "INCONCLUSIVE"


def test_a_spec_without_the_objective_gets_no_regression_finding() -> None:
    plain = make_spec()
    judged = run(plain, [*regions(), *failover_entry()])

    assert with_recent_rtos(judged, plain, [0.1]) is judged


def test_the_recent_rtos_are_earlier_completed_drills_of_the_same_pattern_newest_first() -> None:
    history = [entry("d-now", 9.0), entry("d-6", 1.6), entry("d-5", None), entry("d-4", 1.4, pattern="canary"),
               entry("d-3", 1.3, status_="ERROR"), entry("d-2", 1.2), entry("d-1", 1.1), entry("d-0", 1.0),
               entry("d-x", 0.9), entry("d-y", 0.8)]

    assert recent_rtos(history, "d-now", "active-passive") == [1.6, 1.2, 1.1, 1.0, 0.9]
