"""Evidence sufficiency: each objective needs enough samples, and a timed-out probe is never dropped."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from livefire.assessment.sufficiency import latency_quantile, percentile_samples_needed, share_samples_needed
from livefire.contracts import Sample
from livefire.spec import DrillSpec
from tests.unit.assessment.scenarios import (
    END,
    INJECT,
    RESTORE,
    T0,
    USE1,
    USW2,
    failover_entry,
    make_spec,
    regions,
    run,
    stream,
)

TIMEOUT_MS = 1000.0


def timed_out(sample: Sample) -> Sample:
    return sample.model_copy(update={"ok": False, "status": None, "error": "timeout", "served_by": None,
                                     "latency_ms": TIMEOUT_MS, "ended_ms": sample.sent_ms + TIMEOUT_MS})


def slow_spec() -> DrillSpec:
    return make_spec(probes={"interval": "100ms", "burstInterval": "10ms", "sustain": "1s", "timeout": "1s"},
                     objectives={"p99Latency": "500ms"})


def entry_during_fault(make: Callable[[Sample], Sample]) -> list[Sample]:
    """The entrypoint: normal before and after the fault; during it, each probe as ``make(sample)`` returns."""
    samples = stream("entry", (0, END, USE1))
    return [make(s) if T0 + INJECT <= s.sent_ms < T0 + RESTORE else s for s in samples]


@pytest.mark.parametrize(("percent", "needed"), [(50, 3), (90, 10), (99, 100), (99.5, 200), (100, 1000)])
def test_an_availability_objective_needs_enough_probes_for_one_to_fit_its_error_budget(
    percent: float, needed: int
) -> None:
    assert share_samples_needed(percent) == needed


def test_a_p99_needs_a_hundred_samples() -> None:
    assert (percentile_samples_needed(99), percentile_samples_needed(50)) == (100, 2)


def test_a_timed_out_probe_counts_as_at_least_the_timeout() -> None:
    samples = [*stream("entry", (0, 9800, USE1)), *(timed_out(s) for s in stream("entry", (9800, 10000, USE1)))]

    p99 = latency_quantile(samples, 99, TIMEOUT_MS)

    assert p99 is not None
    assert (p99.value_ms, p99.censored, p99.count, p99.timeouts) == (1000.0, True, 100, 2)


def test_all_timeouts_fail_the_latency_objective() -> None:
    result = run(slow_spec(), [*regions(), *entry_during_fault(timed_out)])

    latency = result.finding("p99Latency")
    assert latency is not None
    assert (latency.status, latency.measured, latency.threshold) == ("FAIL", 1000.0, 500.0)
    # the last second's probes were still in flight when the restore was sent: they belong to the recovery phase
    assert "at least 1000.0 ms over 190 probes (190 timed out)" in latency.detail


def test_one_success_among_many_timeouts_does_not_pass() -> None:
    def all_but_one(sample: Sample) -> Sample:
        return sample if sample.sent_ms == T0 + 10000 else timed_out(sample)

    result = run(slow_spec(), [*regions(), *entry_during_fault(all_but_one)])

    latency = result.finding("p99Latency")
    assert latency is not None and latency.status == "FAIL"


def test_too_few_latency_samples_are_inconclusive_and_say_how_many_were_needed() -> None:
    spec = make_spec(objectives={"p99Latency": "500ms"}, probes={"interval": "500ms", "sustain": "1s"})
    entry = stream("entry", (0, END, USE1), step=500)

    result = run(spec, [*regions(), *entry])

    latency = result.finding("p99Latency")
    assert latency is not None and latency.status == "INCONCLUSIVE"
    assert "local: 40 probes with a latency (need 100 for a p99)" in latency.detail
    assert (latency.required_samples, latency.samples) == (100, 40)


def test_errors_that_are_not_timeouts_carry_no_latency() -> None:
    spec = make_spec(objectives={"p99Latency": "50ms"})

    result = run(spec, [*regions(), *failover_entry()])  # 21 fast 503s among 200 fault probes

    latency = result.finding("p99Latency")
    assert latency is not None and latency.status == "PASS"
    assert "over 179 probes (0 timed out)" in latency.detail


def test_a_timeout_no_longer_than_the_objective_cannot_be_judged() -> None:
    spec = make_spec(probes={"interval": "100ms", "sustain": "1s", "timeout": "1s"},
                     objectives={"p99Latency": "2s"})

    result = run(spec, [*regions(), *entry_during_fault(timed_out)])

    latency = result.finding("p99Latency")
    assert latency is not None and latency.status == "INCONCLUSIVE"
    assert "the probe timeout is not above the limit" in latency.detail


def test_an_availability_objective_with_too_few_probes_is_inconclusive() -> None:
    spec = make_spec(objectives={"availability": 99.9}, probes={"interval": "100ms", "sustain": "1s"})
    entry = stream("entry", (0, INJECT + 100, USE1), (INJECT + 100, RESTORE, USW2), (RESTORE, END, USE1))

    result = run(spec, [*regions(), *entry])

    availability = result.finding("availability")
    assert availability is not None and availability.status == "INCONCLUSIVE"
    assert "local: 400 probes (need 1000)" in availability.detail


def test_a_failed_vantage_with_enough_probes_fails_even_if_another_has_too_few() -> None:
    spec = make_spec(objectives={"availability": 99})
    few = [s for s in stream("entry", (0, END, USE1), vantage="far") if s.sent_ms < T0 + INJECT + 2000]
    samples = [*regions("local"), *failover_entry(vantage="local"), *regions("far"), *few]

    result = run(spec, samples, vantages=("local", "far"))

    availability = result.finding("availability")
    assert availability is not None and availability.status == "FAIL"  # local: 94.75% of 400
    assert "far: 20 probes (need 100)" in availability.detail
