"""The whole judgement: findings in order, the verdict, the model's round trip, percentiles."""

from __future__ import annotations

import pytest

from livefire.assessment import Assessment, percentile
from tests.unit.assessment.scenarios import (
    T0,
    failover_entry,
    make_spec,
    regions,
    run,
)


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
        "steadyAfterRollback",
    ]
    assert all(f.status == "PASS" for f in result.findings)


def test_a_drill_without_injection_is_inconclusive() -> None:
    spec = make_spec()

    result = run(spec, [*regions(), *failover_entry()], injected_at_ms=None, restored_at_ms=None)

    assert result.verdict == "INCONCLUSIVE"
    assert result.rto_seconds is None
    assert [p.name for p in result.phases] == ["baseline"]


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


def test_every_finding_states_its_rule_in_one_sentence() -> None:
    failover = run(make_spec(objectives={"rto": "5s", "failbackRto": "15s", "availability": 90, "p99Latency": "1s"}),
                   [*regions(), *failover_entry()])

    rules = {f.id: f.rule for f in failover.findings}

    assert set(rules) == {"faultTookEffect", "sampleCoverage", "rto", "failbackRto", "availability", "p99Latency",
                          "standbyServedDuringFault", "primaryServedAfterFailback", "steadyAfterRollback"}
    assert all(rule.endswith(".") for rule in rules.values()), rules
    assert "needs 100 probes per vantage" in rules["p99Latency"]
