"""The probe schedule and its adaptive bursts, without a network: a scripted probe function stands in."""

from __future__ import annotations

import asyncio
import itertools
import ssl
import statistics
import time
from collections.abc import Callable, Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livefire.contracts import ProbeTarget, Sample
from livefire.probing.engine import ProbeEngine, ProbeSettings, WallClock
from livefire.probing.http import ProbeOutcome
from livefire.probing.watch import State, TokenBucket, TransitionTracker
from livefire.probing.window import ErrorRateGuard, resolve_from_env
from livefire.spec import AbortIf, Expect, ServedBy
from tests.conftest import PROBE_ENGINE_ON_THE_WALL_CLOCK

pytestmark = PROBE_ENGINE_ON_THE_WALL_CLOCK

EAST = ("us-east-1", "v1")
WEST = ("us-west-2", "v1")
EAST_V2 = ("us-east-1", "v2")
NOBODY = (None, None)


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


def _learned(*servers: tuple[str | None, str | None], hold: int = 3, reference_probes: int = 2) -> TransitionTracker:
    """A tracker that learned ``servers`` as its reference from base probes sent at 0, 1, 2, ..."""
    tracker = TransitionTracker(hold=hold, reference_probes=reference_probes)
    for sent, server in enumerate(servers):
        tracker.observe(float(sent), True, server, base=True)
    return tracker


def test_the_first_state_seen_is_where_the_target_starts_and_needs_no_watch():
    tracker = TransitionTracker(hold=5, reference_probes=3)

    assert tracker.observe(0.0, True, EAST, base=True) is False
    assert tracker.state == State(ok=True, server=None)
    assert tracker.reference == {EAST}


def test_every_server_that_answers_while_learning_joins_the_reference_so_active_active_is_no_transition():
    tracker = _learned(EAST, WEST, EAST, WEST, reference_probes=4)

    assert tracker.reference == {EAST, WEST}
    assert not tracker.learning
    assert tracker.observe(10.0, True, WEST, base=True) is False
    assert tracker.observe(11.0, True, EAST, base=True) is False


def test_learning_stops_at_the_first_failure():
    tracker = TransitionTracker(hold=3, reference_probes=10)
    tracker.observe(0.0, True, EAST, base=True)

    tracker.observe(1.0, False, NOBODY, base=True)
    tracker.observe(2.0, True, WEST, base=True)

    assert not tracker.learning
    assert tracker.reference == {EAST}
    assert tracker.state == State(ok=True, server=WEST)
    assert tracker.degraded


def test_a_failure_is_degraded_and_needs_watching_for_as_long_as_it_lasts():
    tracker = _learned(EAST, EAST)

    needs = [tracker.observe(float(sent), False, NOBODY, base=False) for sent in range(2, 40)]

    assert all(needs)
    assert tracker.degraded


def test_a_recovery_is_watched_until_the_reference_state_held_for_hold_probes():
    tracker = _learned(EAST, EAST, hold=3)
    tracker.observe(2.0, False, NOBODY, base=True)

    assert tracker.observe(3.0, True, EAST, base=False) is True
    assert tracker.observe(4.0, True, EAST, base=False) is True
    assert tracker.observe(5.0, True, EAST, base=False) is False
    assert not tracker.degraded


def test_a_standby_serving_after_failover_stays_degraded_until_the_primary_serves_again():
    tracker = _learned(EAST, EAST, hold=2)
    tracker.observe(2.0, False, NOBODY, base=True)

    standby = [tracker.observe(float(sent), True, WEST, base=False) for sent in range(3, 30)]
    back = [tracker.observe(float(sent), True, EAST, base=False) for sent in range(30, 33)]

    assert all(standby)
    assert back == [True, False, False]


def test_a_new_version_after_a_cutover_is_degraded_but_a_new_region_of_the_reference_is_not_a_failure():
    tracker = _learned(EAST, EAST)

    assert tracker.observe(2.0, True, EAST_V2, base=True) is True
    assert tracker.state == State(ok=True, server=EAST_V2)


def test_only_a_success_elsewhere_that_held_counts_as_settled_elsewhere():
    tracker = _learned(EAST, EAST, hold=2)
    tracker.observe(2.0, True, WEST, base=True)
    assert not tracker.settled_elsewhere

    tracker.observe(3.0, True, WEST, base=False)
    assert tracker.settled_elsewhere
    tracker.observe(4.0, False, NOBODY, base=False)
    assert not tracker.settled_elsewhere


def test_a_failure_of_any_region_is_the_same_failed_state():
    tracker = _learned(EAST, EAST, hold=2)
    tracker.observe(2.0, False, EAST, base=True)

    tracker.observe(3.0, False, WEST, base=False)

    assert tracker.held == 2


def test_a_target_that_fails_from_the_start_takes_its_first_success_as_the_reference():
    tracker = TransitionTracker(hold=2, reference_probes=5)
    tracker.observe(0.0, False, NOBODY, base=True)

    tracker.observe(1.0, True, WEST, base=True)

    assert tracker.reference == {WEST}
    assert tracker.state == State(ok=True, server=None)


def test_an_overtaken_completion_neither_changes_the_state_nor_the_count():
    tracker = _learned(EAST, EAST)
    tracker.observe(5.0, True, EAST, base=True)

    late = tracker.observe(4.0, False, NOBODY, base=True)  # a timeout that ended after a later success

    assert late is False
    assert tracker.state == State(ok=True, server=None)


@given(
    st.lists(st.sampled_from([(True, EAST), (True, WEST), (False, NOBODY)]), min_size=1, max_size=30).flatmap(
        lambda states: st.tuples(st.just(states), st.permutations(range(len(states))))
    )
)
def test_the_state_is_the_newest_sent_probe_whatever_order_the_answers_arrive_in(case):
    states, completion_order = case
    tracker = TransitionTracker(hold=5, reference_probes=1)

    for index in completion_order:
        ok, server = states[index]
        tracker.observe(float(index), ok, server, base=True)

    ok, server = states[-1]
    assert tracker.state == tracker.fold(ok, server)


# --- the token bucket ---------------------------------------------------------------------------------------


def test_the_bucket_starts_full_and_refuses_once_empty():
    bucket = TokenBucket(capacity=3, rate=10.0, now=0.0)

    taken = [bucket.take(0.0) for _ in range(4)]

    assert taken == [True, True, True, False]


def test_the_bucket_refills_continuously_up_to_its_capacity_and_says_how_long_to_wait():
    bucket = TokenBucket(capacity=2, rate=10.0, now=0.0)
    bucket.take(0.0)
    bucket.take(0.0)

    assert bucket.wait(0.05) == pytest.approx(0.05)
    assert bucket.take(0.1) is True
    assert bucket.take(100.0) and bucket.take(100.0) and not bucket.take(100.0)


def test_a_bucket_that_never_refills_has_no_token_to_wait_for():
    bucket = TokenBucket(capacity=1, rate=0.0, now=0.0)
    bucket.take(0.0)

    assert bucket.wait(5.0) == float("inf")


def test_the_stated_load_bound_is_base_sends_plus_capacity_plus_budget_per_interval():
    settings = ProbeSettings(interval=0.1, timeout=1.0, burst_interval=0.01, burst_max_duration=1.25, burst_budget=1.0)

    assert settings.burst_capacity == pytest.approx(100.0)  # 1.25 s x (100 watch slots - 10 base - 10 refill)/s
    assert settings.max_sends(3.0) == 30 + 100 + 30
    assert settings.max_sends(0.05) == 1 + 100


def test_the_default_budget_watches_an_outage_of_a_minute_at_the_burst_interval():
    settings = ProbeSettings(interval=0.1, timeout=1.0, burst_interval=0.01)

    watch_rate = 1 / 0.01 - 1 / 0.1  # watch slots on base sends are the base sends
    assert settings.burst_capacity / (watch_rate - 1 / 0.1) == pytest.approx(60.0)
    assert settings.load(600.0)[0] == pytest.approx(100.0)  # peak: one probe per burst interval


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


def test_a_healthy_target_costs_exactly_the_base_rate():
    settings = ProbeSettings(interval=0.02, timeout=0.5, burst_interval=0.005)
    engine = ProbeEngine(settings, vantage="local", probe=_scripted(_always(OK_EAST)))

    samples, _ = _run(engine, _targets("entry"), duration=0.3)

    assert len(samples) == 15
    assert not [s for s in samples if s.burst]


def test_an_entrypoint_alternating_between_reference_regions_is_never_watched():
    calls = itertools.count()
    west = ProbeOutcome(ok=True, status=200, served_by="us-west-2", version="v1")

    def round_robin(_url: str, _at: float) -> ProbeOutcome:
        return OK_EAST if next(calls) % 2 else west

    settings = ProbeSettings(interval=0.02, timeout=0.5, burst_interval=0.005, reference_probes=4)
    engine = ProbeEngine(settings, vantage="local", probe=_scripted(round_robin))

    samples, _ = _run(engine, _targets("entry"), duration=0.3)

    assert {s.served_by for s in samples} == {"us-east-1", "us-west-2"}
    assert not [s for s in samples if s.burst]


def test_an_outage_is_watched_on_the_burst_grid_so_its_end_lies_between_two_sends_a_burst_interval_apart():
    failing = ProbeOutcome(ok=False, status=503, error="http_5xx")

    def outage(_url: str, at: float) -> ProbeOutcome:
        return failing if 0.33 <= at < 0.57 else OK_EAST

    settings = ProbeSettings(interval=0.1, timeout=0.5, burst_interval=0.01, burst_hold=5)
    engine = ProbeEngine(settings, vantage="local", probe=_scripted(outage))

    samples, _ = _run(engine, _targets("entry"), duration=0.9)

    samples.sort(key=lambda s: s.sent_ms)
    last_failure = max(i for i, s in enumerate(samples) if not s.ok)
    gap = samples[last_failure + 1].sent_ms - samples[last_failure].sent_ms
    assert 0 < gap <= 10.0 + 5.0
    watched = sorted((s for s in samples if s.burst), key=lambda s: s.seq)
    base = sorted((s for s in samples if not s.burst), key=lambda s: s.seq)
    offsets = [(s.scheduled_ms - base[0].scheduled_ms) / 10.0 for s in watched]
    assert offsets == pytest.approx([round(o) for o in offsets], abs=1e-3)  # on the base-aligned 10 ms grid
    assert not {round(o) for o in offsets} & {10 * i for i in range(len(base))}  # never twice at a base send
    after = [s for s in watched if s.sent_ms > samples[last_failure].sent_ms]
    assert 4 <= len(after) <= 5  # the recovery held for 5 probes (one may be a base probe), then the watch ends
    assert len(base) == 9


def test_an_endless_outage_spends_the_bucket_then_goes_on_at_the_refill_rate():
    failing = ProbeOutcome(ok=False, status=503, error="http_5xx")
    settings = ProbeSettings(
        interval=0.05, timeout=0.5, burst_interval=0.005, burst_max_duration=10 / 160, burst_budget=1.0
    )  # 10 tokens: 160 a second drained (180 watch slots, 20 refilled)
    engine = ProbeEngine(settings, vantage="local", probe=_scripted(_always(failing)))

    samples, _ = _run(engine, _targets("entry"), duration=1.0)

    # Scheduled instants, not sent ones: on a busy machine a stalled send and the next one go out close together.
    # The bucket refills in real time, so which slot a refilled token lands on is not exact; its pace is.
    watched = sorted(s.scheduled_ms for s in samples if s.burst)
    base = sorted(s.scheduled_ms for s in samples if not s.burst)
    assert len(base) == 20
    assert 10 + 20 - 3 <= len(watched) <= 10 + 20
    assert len(samples) <= settings.max_sends(1.0)
    spent = [w for w in watched if w >= base[2]]  # past the capacity (10 tokens at 5 ms from the first failure)
    assert statistics.median(b - a for a, b in itertools.pairwise(spent)) > 25.0  # about one per base interval
    assert 14 <= len(spent) <= 19  # the refill rate: 20 a second over the 0.9 s left (a stall delays, adds none)
    grid = [(w - base[0]) / 5.0 for w in spent]
    assert all(abs(k - round(k)) < 1e-6 for k in grid) and not set(spent) & set(base)  # burst grid, between sends


def test_a_target_settled_on_a_standby_is_watched_only_midway_between_base_sends():
    west = ProbeOutcome(ok=True, status=200, served_by="us-west-2", version="v1")

    def failover(_url: str, at: float) -> ProbeOutcome:
        return OK_EAST if at < 0.21 else west

    settings = ProbeSettings(interval=0.05, timeout=0.5, burst_interval=0.005, burst_hold=4, reference_probes=3)
    engine = ProbeEngine(settings, vantage="local", probe=_scripted(failover))

    samples, _ = _run(engine, _targets("entry"), duration=1.0)

    base = [s.scheduled_ms for s in samples if not s.burst]
    watched = sorted(s.scheduled_ms for s in samples if s.burst)
    settled = [w for w in watched if w > watched[0] + 20.0]  # past the burst that confirmed the new state
    assert 3 <= len(watched) - len(settled) <= 4
    assert all(min(abs(w - b) for b in base) == pytest.approx(25.0, abs=0.01) for w in settled)
    assert len(settled) >= 12  # about one per base interval from ~0.25 s to 1 s


def test_without_a_budget_the_watch_stops_once_the_bucket_is_empty():
    failing = ProbeOutcome(ok=False, status=503, error="http_5xx")
    settings = ProbeSettings(interval=0.05, timeout=0.5, burst_interval=0.005, burst_max_duration=7.5 / 180,
                             burst_budget=0.0)  # 7.5 tokens: 180 watch slots a second, nothing refilled
    engine = ProbeEngine(settings, vantage="local", probe=_scripted(_always(failing)))

    samples, _ = _run(engine, _targets("entry"), duration=0.5)

    assert len([s for s in samples if s.burst]) == 7


def test_an_endpoint_that_flaps_all_the_time_stays_within_the_stated_load_bound():
    calls = itertools.count()

    def flapping(_url: str, _at: float) -> ProbeOutcome:
        return OK_EAST if next(calls) % 3 else ProbeOutcome(ok=False, status=503, error="http_5xx")

    settings = ProbeSettings(
        interval=0.02, timeout=0.5, burst_interval=0.002, burst_max_duration=10 / 425, burst_budget=0.5
    )  # 10 tokens: 425 a second drained (450 watch slots, 25 refilled)
    engine = ProbeEngine(settings, vantage="local", probe=_scripted(flapping))

    samples, _ = _run(engine, _targets("entry"), duration=0.4)

    base = len([s for s in samples if not s.burst])
    watched = len([s for s in samples if s.burst])
    assert base == 20
    assert 10 <= watched <= 10 + 0.5 * 20
    assert len(samples) <= settings.max_sends(0.4)


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
