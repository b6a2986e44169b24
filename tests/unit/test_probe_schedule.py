"""The probe schedule and its adaptive bursts, without a network: a scripted probe function stands in."""

from __future__ import annotations

import asyncio
import itertools
import ssl
import time
from collections.abc import Callable, Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livefire.contracts import ProbeTarget, Sample
from livefire.probing.engine import (
    Burst,
    ProbeEngine,
    ProbeSettings,
    TransitionTracker,
    WallClock,
    state_of,
)
from livefire.probing.http import ProbeOutcome
from livefire.probing.window import ErrorRateGuard, resolve_from_env
from livefire.spec import AbortIf, Expect, ServedBy

UP_EAST = (True, "us-east-1")
UP_WEST = (True, "us-west-2")
DOWN = (False, None)


def _scripted(outcome_at: Callable[[str, float], ProbeOutcome], latency: float = 0.0):
    """A probe function answering ``outcome_at(url, seconds since the engine started)`` after ``latency``."""
    started = time.monotonic()

    async def probe(
        url: str,
        *,
        timeout: float,
        resolve: Mapping[str, str],
        served_by: ServedBy,
        expect: Expect,
        ssl_context: ssl.SSLContext | None,
    ) -> ProbeOutcome:
        sent = time.monotonic() - started
        if latency:
            await asyncio.sleep(min(latency, timeout))
        return outcome_at(url, sent)

    return probe


def _always(outcome: ProbeOutcome) -> Callable[[str, float], ProbeOutcome]:
    return lambda _url, _at: outcome


def _targets(*names: str) -> list[ProbeTarget]:
    return [ProbeTarget(name=n, url=f"http://{n}.test/healthz", role="region") for n in names]


def _run(
    engine: ProbeEngine,
    targets: list[ProbeTarget],
    duration: float,
    stop_when: Callable[[], str | None] | None = None,
) -> tuple[list[Sample], str | None]:
    samples: list[Sample] = []
    reason = asyncio.run(engine.run(targets, duration, samples.append, stop_when))
    return samples, reason


OK_EAST = ProbeOutcome(ok=True, status=200, served_by="us-east-1", version="v1")


# --- the transition tracker -------------------------------------------------------------------------------


def test_the_first_completed_probe_sets_the_state_without_a_burst():
    tracker = TransitionTracker(hold=5)

    burst = tracker.observe(0.0, UP_EAST, burst=None, now=0.1)

    assert burst is None
    assert tracker.state == UP_EAST


def test_a_failure_after_success_starts_a_burst_at_the_moment_it_is_seen():
    tracker = TransitionTracker(hold=5)
    tracker.observe(0.0, UP_EAST, burst=None, now=0.01)

    burst = tracker.observe(0.25, DOWN, burst=None, now=0.26)

    assert burst == Burst(start=0.26, held=0, active=True)


def test_a_new_serving_region_starts_a_burst_even_when_both_answers_succeed():
    tracker = TransitionTracker(hold=5)
    tracker.observe(0.0, UP_EAST, burst=None, now=0.01)

    assert tracker.observe(0.25, UP_WEST, burst=None, now=0.26) is not None


def test_failures_from_different_regions_are_the_same_failed_state():
    tracker = TransitionTracker(hold=5)
    tracker.observe(0.0, state_of(False, "us-east-1"), burst=None, now=0.01)

    assert tracker.observe(0.25, state_of(False, "us-west-2"), burst=None, now=0.26) is None


def test_a_burst_ends_once_the_new_state_held_for_hold_consecutive_burst_probes():
    tracker = TransitionTracker(hold=3)
    tracker.observe(0.0, UP_EAST, burst=None, now=0.0)
    burst = tracker.observe(0.25, DOWN, burst=None, now=0.26)
    assert burst is not None

    tracker.observe(0.26, DOWN, burst=burst, now=0.27)
    tracker.observe(0.27, DOWN, burst=burst, now=0.28)
    assert burst.active
    tracker.observe(0.28, DOWN, burst=burst, now=0.29)

    assert not burst.active


def test_base_probes_do_not_count_towards_holding_the_new_state():
    tracker = TransitionTracker(hold=2)
    tracker.observe(0.0, UP_EAST, burst=None, now=0.0)
    burst = tracker.observe(0.25, DOWN, burst=None, now=0.26)
    assert burst is not None

    tracker.observe(0.5, DOWN, burst=None, now=0.51)
    tracker.observe(0.75, DOWN, burst=None, now=0.76)

    assert burst.active


def test_a_flip_during_a_burst_restarts_the_hold_count_instead_of_starting_a_second_burst():
    tracker = TransitionTracker(hold=3)
    tracker.observe(0.0, UP_EAST, burst=None, now=0.0)
    burst = tracker.observe(0.25, DOWN, burst=None, now=0.26)
    assert burst is not None
    tracker.observe(0.26, DOWN, burst=burst, now=0.27)
    tracker.observe(0.27, DOWN, burst=burst, now=0.28)

    second = tracker.observe(0.28, UP_WEST, burst=burst, now=0.29)
    tracker.observe(0.29, UP_WEST, burst=burst, now=0.30)

    assert second is None
    assert burst.active and burst.held == 2
    tracker.observe(0.30, UP_WEST, burst=burst, now=0.31)
    assert not burst.active


def test_a_base_probe_transition_after_a_finished_burst_starts_a_new_one():
    tracker = TransitionTracker(hold=1)
    tracker.observe(0.0, UP_EAST, burst=None, now=0.0)
    first = tracker.observe(0.25, DOWN, burst=None, now=0.26)
    assert first is not None
    tracker.observe(0.26, DOWN, burst=first, now=0.27)
    assert not first.active

    second = tracker.observe(0.5, UP_EAST, burst=None, now=0.51)

    assert second is not None and second is not first


def test_a_late_answer_to_a_finished_burst_updates_the_state_but_starts_no_burst():
    tracker = TransitionTracker(hold=1)
    tracker.observe(0.0, UP_EAST, burst=None, now=0.0)
    first = tracker.observe(0.25, DOWN, burst=None, now=0.26)
    assert first is not None
    tracker.observe(0.26, DOWN, burst=first, now=0.27)

    chained = tracker.observe(0.27, UP_EAST, burst=first, now=0.30)

    assert chained is None
    assert tracker.state == UP_EAST


def test_an_overtaken_completion_neither_changes_the_state_nor_starts_a_burst():
    tracker = TransitionTracker(hold=5)
    tracker.observe(0.0, UP_EAST, burst=None, now=0.01)
    tracker.observe(0.5, UP_EAST, burst=None, now=0.51)

    late = tracker.observe(0.25, DOWN, burst=None, now=2.25)  # a timeout that ended after a later success

    assert late is None
    assert tracker.state == UP_EAST


@given(
    st.lists(st.sampled_from([UP_EAST, UP_WEST, DOWN]), min_size=1, max_size=30).flatmap(
        lambda states: st.tuples(st.just(states), st.permutations(range(len(states))))
    )
)
def test_the_state_is_the_newest_sent_probe_whatever_order_the_answers_arrive_in(case):
    states, completion_order = case
    tracker = TransitionTracker(hold=5)

    for now, index in enumerate(completion_order):
        tracker.observe(float(index), states[index], burst=None, now=float(now))

    assert tracker.state == states[-1]


# --- the clock ----------------------------------------------------------------------------------------------


def test_the_wall_clock_adds_monotonic_deltas_to_one_anchor():
    clock = WallClock()
    base = time.monotonic()

    delta = clock.epoch_ms(base + 1.5) - clock.epoch_ms(base)

    assert delta == pytest.approx(1500.0, abs=1e-3)
    assert abs(clock.epoch_ms(time.monotonic()) - time.time() * 1000) < 1000  # loose: same epoch


# --- the engine, with a scripted probe ---------------------------------------------------------------------


def test_base_sends_are_scheduled_on_a_fixed_grid_per_target_spread_over_the_interval():
    settings = ProbeSettings(interval=0.04, timeout=0.5, burst_interval=0.01)
    engine = ProbeEngine(settings, vantage="local", probe=_scripted(_always(OK_EAST)))

    samples, reason = _run(engine, _targets("a", "b"), duration=0.4)

    assert reason is None
    by_target = {name: [s for s in samples if s.target == name] for name in ("a", "b")}
    for name, mine in by_target.items():
        mine.sort(key=lambda s: s.seq)
        assert [s.seq for s in mine] == list(range(10)), name
        steps = [b.scheduled_ms - a.scheduled_ms for a, b in itertools.pairwise(mine)]
        assert steps == pytest.approx([40.0] * 9, abs=1e-3)
    offset = by_target["b"][0].scheduled_ms - by_target["a"][0].scheduled_ms
    assert offset == pytest.approx(20.0, abs=1e-3)


def test_every_sample_names_its_target_and_vantage_and_orders_its_times():
    settings = ProbeSettings(interval=0.05, timeout=0.5, burst_interval=0.01)
    engine = ProbeEngine(settings, vantage="vantage-1", probe=_scripted(_always(OK_EAST), latency=0.01))

    samples, _ = _run(engine, _targets("entry"), duration=0.2)

    assert len(samples) == 4
    for sample in samples:
        assert (sample.target, sample.vantage, sample.burst) == ("entry", "vantage-1", False)
        assert sample.scheduled_ms <= sample.sent_ms + 0.01 and sample.sent_ms <= sample.ended_ms
        assert sample.latency_ms == pytest.approx(sample.ended_ms - sample.sent_ms, abs=1e-3)
        assert (sample.ok, sample.status, sample.served_by, sample.version) == (True, 200, "us-east-1", "v1")


def test_a_slow_answer_does_not_delay_the_next_send_of_the_same_target():
    settings = ProbeSettings(interval=0.02, timeout=1.0, burst_interval=0.01)
    engine = ProbeEngine(settings, vantage="local", probe=_scripted(_always(OK_EAST), latency=0.1))

    samples, _ = _run(engine, _targets("slow"), duration=0.3)

    samples.sort(key=lambda s: s.seq)
    assert len(samples) == 15
    overlapping = [b for a, b in itertools.pairwise(samples) if b.sent_ms < a.ended_ms]
    assert len(overlapping) == 14


def test_a_transition_is_followed_by_a_burst_that_stops_once_the_new_state_held():
    def outcome_at(_url: str, at: float) -> ProbeOutcome:
        if at < 0.15:
            return OK_EAST
        return ProbeOutcome(ok=True, status=200, served_by="us-west-2")

    settings = ProbeSettings(interval=0.1, timeout=0.5, burst_interval=0.01, burst_hold=5)
    engine = ProbeEngine(settings, vantage="local", probe=_scripted(outcome_at))

    samples, _ = _run(engine, _targets("entry"), duration=0.5)

    bursts = sorted((s for s in samples if s.burst), key=lambda s: s.seq)
    assert 5 <= len(bursts) < 20
    assert all(s.served_by == "us-west-2" for s in bursts)
    steps = sorted(b.scheduled_ms - a.scheduled_ms for a, b in itertools.pairwise(bursts))
    assert steps == pytest.approx([10.0] * (len(bursts) - 1), abs=1e-3)
    assert len([s for s in samples if not s.burst]) == 5


def test_a_burst_that_never_settles_stops_at_its_probe_bound_without_chaining_another():
    flips = iter(range(10_000))

    def flapping(_url: str, _at: float) -> ProbeOutcome:
        return OK_EAST if next(flips) % 2 else ProbeOutcome(ok=False, status=503, error="http_5xx")

    settings = ProbeSettings(
        interval=0.1, timeout=0.5, burst_interval=0.002, burst_max_probes=12, burst_max_seconds=10.0
    )
    engine = ProbeEngine(settings, vantage="local", probe=_scripted(flapping))

    samples, _ = _run(engine, _targets("entry"), duration=0.15)

    assert len([s for s in samples if not s.burst]) == 2
    assert len([s for s in samples if s.burst]) == 12


def test_an_endpoint_that_flaps_all_the_time_spends_no_more_than_its_burst_budget():
    calls = iter(range(100_000))

    def flapping(_url: str, _at: float) -> ProbeOutcome:
        return OK_EAST if next(calls) % 3 else ProbeOutcome(ok=False, status=503, error="http_5xx")

    settings = ProbeSettings(interval=0.02, timeout=0.5, burst_interval=0.001, burst_max_probes=10, burst_budget=0.5)
    engine = ProbeEngine(settings, vantage="local", probe=_scripted(flapping))

    samples, _ = _run(engine, _targets("entry"), duration=0.4)

    base = len([s for s in samples if not s.burst])
    bursts = len([s for s in samples if s.burst])
    assert base == 20
    assert 10 <= bursts <= 10 + 0.5 * base


def test_stop_when_ends_the_run_early_and_its_reason_is_returned():
    settings = ProbeSettings(interval=0.02, timeout=0.5, burst_interval=0.01)
    engine = ProbeEngine(settings, vantage="local", probe=_scripted(_always(OK_EAST)))
    samples: list[Sample] = []

    def stop_when() -> str | None:
        return "enough" if len(samples) >= 5 else None

    reason = asyncio.run(engine.run(_targets("entry"), 30.0, samples.append, stop_when))

    assert reason == "enough"
    assert 5 <= len(samples) < 20


def test_an_error_in_the_sample_callback_stops_the_run_and_is_raised():
    settings = ProbeSettings(interval=0.02, timeout=0.5, burst_interval=0.01)
    engine = ProbeEngine(settings, vantage="local", probe=_scripted(_always(OK_EAST)))
    seen: list[Sample] = []

    def on_sample(sample: Sample) -> None:
        seen.append(sample)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        asyncio.run(engine.run(_targets("entry"), 30.0, on_sample))
    assert 1 <= len(seen) < 20


def test_a_target_that_is_not_an_http_url_is_refused_before_anything_is_sent():
    engine = ProbeEngine(ProbeSettings(interval=0.1, timeout=0.5, burst_interval=0.01), vantage="local")
    bad = [ProbeTarget(name="x", url="ftp://example.test/", role="region")]

    with pytest.raises(ValueError, match="not an http"):
        asyncio.run(engine.run(bad, 1.0, lambda _s: None))


# --- the guardrail and the resolve map -------------------------------------------------------------------


def _sample(target: str, at_ms: float, ok: bool, *, burst: bool = False) -> Sample:
    return Sample(
        target=target,
        vantage="local",
        seq=0,
        scheduled_ms=at_ms,
        sent_ms=at_ms,
        ended_ms=at_ms + 1,
        ok=ok,
        latency_ms=1.0,
        burst=burst,
    )


def _guard(rate: float = 50.0, span: str = "1s") -> ErrorRateGuard:
    return ErrorRateGuard("entry", AbortIf.model_validate({"errorRateOver": rate, "for": span}))


def test_the_guardrail_waits_for_a_full_span_of_samples_before_it_can_fire():
    guard = _guard()
    for i in range(10):  # 0..900 ms: less than 1 s of samples
        guard.add(_sample("entry", 1_000_000 + i * 100, ok=False))

    assert guard.check() is None
    guard.add(_sample("entry", 1_001_000, ok=False))
    assert guard.check() is not None


def test_the_guardrail_names_the_rate_the_span_and_the_limit():
    guard = _guard(rate=50, span="1s")
    for i in range(11):
        guard.add(_sample("entry", 1_000_000 + i * 100, ok=i % 3 == 0))  # window: 3, 6, 9 succeed

    message = guard.check()

    assert message is not None
    assert "70.0%" in message and "7/10" in message and "1s" in message and "50%" in message


def test_the_guardrail_does_not_fire_at_exactly_the_limit():
    guard = _guard(rate=50)
    for i in range(11):
        guard.add(_sample("entry", 1_000_000 + i * 100, ok=i % 2 == 0))  # window: 5 of 10 failed

    assert guard.check() is None


def test_the_guardrail_counts_only_base_probes_of_its_own_target_in_the_recent_span():
    guard = _guard(rate=50)
    for i in range(20):  # old failures, out of the span by the end
        guard.add(_sample("entry", 1_000_000 + i * 100, ok=False))
    for i in range(20, 31):
        guard.add(_sample("entry", 1_000_000 + i * 100, ok=True))
    for i in range(50):
        guard.add(_sample("entry", 1_002_500 + i, ok=False, burst=True))
        guard.add(_sample("other", 1_002_500 + i, ok=False))

    assert guard.check() is None


def test_the_resolve_map_comes_from_a_json_object_in_the_environment():
    env = {"LIVEFIRE_RESOLVE": '{"payments.sandbox:80": "127.0.0.1:40123"}'}

    assert resolve_from_env(env) == {"payments.sandbox:80": "127.0.0.1:40123"}
    assert resolve_from_env({}) == {}


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '{"payments.sandbox": "127.0.0.1"}'])
def test_a_malformed_resolve_map_is_refused_with_the_variable_named(raw):
    with pytest.raises(ValueError, match="LIVEFIRE_RESOLVE"):
        resolve_from_env({"LIVEFIRE_RESOLVE": raw})
