"""The baseline steadiness gate."""

from __future__ import annotations

from livefire.assessment import steady_state
from tests.unit.assessment.scenarios import (
    FAIL,
    INJECT,
    T0,
    USE1,
    USW2,
    failover_entry,
    make_spec,
    regions,
    stream,
)


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
