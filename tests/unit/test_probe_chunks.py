"""A window probed in chunks (one Lambda invocation each): the schedule, the watch, the burst budget and the guard go
on across every boundary, with no base slot skipped or sent twice. A scripted probe function stands in for HTTP."""

from __future__ import annotations

import asyncio
import itertools
import math
import ssl
import time
from collections.abc import Mapping

import pytest

from livefire.config import DEFAULT_PROBE_CHUNK_S, PROBE_CHUNK_ENV, probe_chunk_seconds
from livefire.contracts import ProbeTarget, Sample, TargetResume
from livefire.probing.carry import Chunk, Handoff, TargetState, WallClock
from livefire.probing.engine import ProbeEngine, ProbeSettings
from livefire.probing.http import ProbeOutcome
from livefire.probing.watch import State, TokenBucket, TransitionTracker
from livefire.probing.window import ErrorRateGuard
from livefire.spec import AbortIf, Expect, ServedBy
from tests.conftest import PROBE_ENGINE_ON_THE_WALL_CLOCK

pytestmark = PROBE_ENGINE_ON_THE_WALL_CLOCK

OK = ProbeOutcome(ok=True, status=200, served_by="us-east-1", version="v1")
FAILING = ProbeOutcome(ok=False, status=503, error="http_5xx")


def _answering(outcome: ProbeOutcome):
    async def probe(url: str, *, timeout: float, resolve: Mapping[str, str], served_by: ServedBy, expect: Expect,
                    ssl_context: ssl.SSLContext | None) -> ProbeOutcome:
        return outcome

    return probe


def _targets(*names: str) -> list[ProbeTarget]:
    return [ProbeTarget(name=n, url=f"http://{n}.test/healthz", role="region") for n in names]


def _in_chunks(engine: ProbeEngine, targets: list[ProbeTarget], duration_s: float, chunk_s: float,
               pause_s: float = 0.0) -> tuple[list[Sample], list[TargetResume], int]:
    """Probe a window of ``duration_s`` in chunks of ``chunk_s`` one after the other, each handed the previous
    one's state as it starts, ``pause_s`` apart (a state transition and a cold start); the samples, the last
    chunk's targets, and how many chunks it took."""
    samples: list[Sample] = []
    grid_ms = time.time_ns() / 1e6 + 5.0
    end_ms = grid_ms + duration_s * 1000.0
    previous: Handoff | None = None
    for index in itertools.count():
        start_ms = grid_ms + index * chunk_s * 1000.0
        chunk = Chunk(grid_ms=grid_ms, end_ms=end_ms, start_ms=start_ms, stop_ms=start_ms + chunk_s * 1000.0,
                      previous=previous, seq_base=index * 1000)
        result = asyncio.run(engine.run_chunk(targets, chunk, samples.append))
        if result.done:
            return samples, result.targets, index + 1
        previous = Handoff(result.targets, result.end_ms)
        time.sleep(pause_s)
    raise AssertionError("unreachable")


def test_a_window_in_chunks_sends_every_base_slot_of_every_target_once_on_one_grid():
    settings = ProbeSettings(interval=0.02, timeout=0.5, burst_interval=0.01)
    engine = ProbeEngine(settings, vantage="local", probe=_answering(OK))

    samples, carried, chunks = _in_chunks(engine, _targets("entry", "east"), duration_s=0.6, chunk_s=0.15,
                                          pause_s=0.05)

    assert chunks >= 3
    for name in ("entry", "east"):
        base = sorted(s.scheduled_ms for s in samples if s.target == name and not s.burst)
        assert len(base) == math.ceil(0.6 / 0.02)
        assert all(b - a == pytest.approx(20.0, abs=0.01) for a, b in itertools.pairwise(base))
        seqs = [s.seq for s in samples if s.target == name]
        assert len(set(seqs)) == len(seqs)
    assert {t.target: t.sent for t in carried} == {"entry": 30, "east": 30}


def test_base_slots_due_while_no_chunk_ran_are_sent_at_once_by_the_next_chunk():
    settings = ProbeSettings(interval=0.02, timeout=0.5, burst_interval=0.01)
    engine = ProbeEngine(settings, vantage="local", probe=_answering(OK))

    samples, _, _ = _in_chunks(engine, _targets("entry"), duration_s=0.5, chunk_s=0.15, pause_s=0.1)

    late = [s for s in samples if s.sent_ms - s.scheduled_ms > 50.0]
    assert late  # the pause's slots: sent late, never dropped
    assert len(samples) == 25


def test_an_outage_across_boundaries_is_watched_on_and_spends_one_budget_not_one_per_chunk():
    settings = ProbeSettings(interval=0.05, timeout=0.5, burst_interval=0.005, burst_max_duration=12.5 / 180,
                             burst_budget=0.0)  # 12.5 tokens: 180 watch slots a second, nothing refilled
    engine = ProbeEngine(settings, vantage="local", probe=_answering(FAILING))

    samples, carried, chunks = _in_chunks(engine, _targets("entry"), duration_s=0.6, chunk_s=0.04)

    assert chunks >= 4
    watched = [s for s in samples if s.burst]
    assert len(watched) == 12
    assert carried[0].tokens < 1.0 and carried[0].watch == 12
    assert carried[0].peak_per_second >= 12


class _FixedClock(WallClock):
    """A wall clock anchored where the test says: ``mono`` seconds is ``wall_ms`` epoch ms."""

    def __init__(self, mono: float, wall_ms: float) -> None:
        self._mono = mono
        self._wall_ms = wall_ms


def test_the_handed_state_lands_on_the_next_chunks_clock_and_what_it_saw_meanwhile_is_replayed():
    first, second = _FixedClock(100.0, 1_000_000.0), _FixedClock(7.0, 1_000_200.0)
    tracker = TransitionTracker(hold=3, reference_probes=2)
    tracker.observe(100.1, True, ("us-east-1", "v1"), base=True)
    tracker.observe(100.2, True, ("us-east-1", "v1"), base=True)
    tracker.observe(100.5, False, (None, None), base=True)
    bucket = TokenBucket(capacity=50.0, rate=10.0, now=100.0)
    for _ in range(20):
        bucket.take(100.5)
    left = TargetState(_targets("entry")[0], tracker, bucket, first_send=100.0, next_base=26, next_seq=31)
    carried = left.resume(first)
    resumed = TargetState(_targets("entry")[0], TransitionTracker(hold=3, reference_probes=2),
                          TokenBucket(capacity=50.0, rate=10.0, now=7.0), first_send=7.0, next_base=40, next_seq=9000)
    resumed.observed.append((7.35, False, (None, None), True))  # sent by this chunk before the state arrived
    resumed.load.sent_at(1_000_350.0, watch=False)

    resumed.adopt(carried, second)

    assert carried.state_sent_ms == pytest.approx(1_000_500.0)
    assert resumed.tracker.state == State(ok=False) and resumed.tracker.held == 2
    assert resumed.tracker.state_sent == pytest.approx(7.35)
    assert resumed.tracker.reference == {("us-east-1", "v1")} and not resumed.tracker.learning
    assert (resumed.bucket.tokens, resumed.bucket.stamp) == (pytest.approx(30.0), pytest.approx(7.3))
    assert (resumed.next_base, resumed.next_seq) == (40, 9000)  # the grid and the numbering stay this chunk's
    assert resumed.load.sent == 1 and resumed.observed == []


def _sample(at_ms: float, ok: bool) -> Sample:
    return Sample(target="entry", vantage="local", seq=0, scheduled_ms=at_ms, sent_ms=at_ms, ended_ms=at_ms + 1,
                  ok=ok, latency_ms=1.0)


def test_the_guard_goes_on_from_the_last_span_the_previous_chunk_saw():
    abort_if = AbortIf.model_validate({"errorRateOver": 50, "for": "1s"})
    before = ErrorRateGuard("entry", abort_if)
    for at in range(0, 3000, 100):
        before.add(_sample(float(at), ok=at < 2500))
    assert before.check() is None

    first_ms, recent = before.carried()
    after = ErrorRateGuard("entry", abort_if)
    for at in range(3000, 3300, 100):  # seen by the next chunk before the state arrived
        after.add(_sample(float(at), ok=False))
    assert after.check() is None  # not a whole span yet
    after.adopt(first_ms, recent)

    assert first_ms == 0.0 and all(at > 1900.0 for at, _ in recent)
    assert after.check() is not None  # 8 of the last 10 failed: 5 seen by the earlier chunk


def test_a_chunk_relayed_while_the_previous_one_probes_sends_on_time_and_watches_on_once_the_state_arrives():
    settings = ProbeSettings(interval=0.05, timeout=0.5, burst_interval=0.005, burst_max_duration=0.5,
                             burst_budget=0.0)  # 90 tokens: 180 watch slots a second, nothing refilled
    engine = ProbeEngine(settings, vantage="local", probe=_answering(FAILING))
    grid_ms = time.time_ns() / 1e6 + 20.0
    samples: list[Sample] = []
    handed: list[Handoff] = []
    arrived: list[float] = []

    async def relay() -> list[TargetResume]:
        previous: asyncio.Future[Handoff] = asyncio.get_running_loop().create_future()

        def on_stop(handoff: Handoff) -> None:
            handed.append(handoff)
            arrived.append(time.time_ns() / 1e6 + 300.0)
            previous.get_loop().call_later(0.3, previous.set_result, handoff)  # a slow S3 round trip

        first = Chunk(grid_ms=grid_ms, end_ms=grid_ms + 900.0, start_ms=grid_ms, stop_ms=grid_ms + 200.0)
        second = Chunk(grid_ms=grid_ms, end_ms=grid_ms + 900.0, start_ms=grid_ms + 200.0, stop_ms=grid_ms + 900.0,
                       seq_base=1000)
        _, last = await asyncio.gather(engine.run_chunk(_targets("entry"), first, samples.append, on_stop=on_stop),
                                       engine.run_chunk(_targets("entry"), second, samples.append, previous=previous))
        return last.targets

    carried = asyncio.run(relay())

    base = sorted((s for s in samples if not s.burst), key=lambda s: s.scheduled_ms)
    assert len(base) == 18
    assert all(b.scheduled_ms - a.scheduled_ms == pytest.approx(50.0, abs=0.01) for a, b in itertools.pairwise(base))
    first_of_second = min((s for s in base if s.seq >= 1000), key=lambda s: s.scheduled_ms)
    assert first_of_second.sent_ms < arrived[0]  # sent on its slot, before the previous chunk's state came in
    assert len(handed) == 1 and not handed[0].over
    watched = [s for s in samples if s.burst]
    assert len(watched) <= 90 and carried[0].watch == len(watched)  # one budget across the boundary
    assert any(s.seq < 1000 for s in watched) and any(s.seq >= 1000 for s in watched)  # watched on after it


def test_the_chunk_length_is_a_function_setting_with_a_safe_default_and_a_named_refusal():
    assert probe_chunk_seconds({}) == DEFAULT_PROBE_CHUNK_S <= 900 / 2  # an invocation lives about two chunks
    assert probe_chunk_seconds({PROBE_CHUNK_ENV: "10"}) == 10.0
    for bad in ("0", "ten", "900"):
        with pytest.raises(ValueError, match=PROBE_CHUNK_ENV):
            probe_chunk_seconds({PROBE_CHUNK_ENV: bad})
