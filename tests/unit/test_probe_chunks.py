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

from livefire.contracts import ProbeTarget, Sample, TargetResume
from livefire.probing.carry import Chunk, TargetState, WallClock
from livefire.probing.engine import ProbeEngine, ProbeSettings
from livefire.probing.http import ProbeOutcome
from livefire.probing.watch import State, TokenBucket, TransitionTracker
from livefire.probing.window import ErrorRateGuard
from livefire.spec import AbortIf, Expect, ServedBy

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
    """Probe a window of ``duration_s`` in chunks of ``chunk_s``, ``pause_s`` apart (a state transition and a
    cold start); the samples, the last chunk's targets, and how many chunks it took."""
    samples: list[Sample] = []
    grid_ms = time.time_ns() / 1e6 + 5.0
    carried: list[TargetResume] = []
    end_ms = grid_ms + duration_s * 1000.0
    for chunks in itertools.count(1):
        chunk = Chunk(grid_ms=grid_ms, end_ms=end_ms, stop_ms=time.time_ns() / 1e6 + chunk_s * 1000.0,
                      targets=carried)
        result = asyncio.run(engine.run_chunk(targets, chunk, samples.append))
        carried = result.targets
        if result.done:
            return samples, carried, chunks
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
        seqs = sorted(s.seq for s in samples if s.target == name)
        assert seqs == list(range(len(seqs)))
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


def test_the_carried_state_lands_on_the_next_chunks_clock_at_the_same_wall_clock_instants():
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
                          TokenBucket(capacity=50.0, rate=10.0, now=7.0), first_send=7.0)
    resumed.restore(carried, second)

    assert carried.state_sent_ms == pytest.approx(1_000_500.0)
    assert resumed.tracker.state_sent == pytest.approx(7.3)  # 1_000_500 ms on the second clock
    assert resumed.tracker.state == State(ok=False) and resumed.tracker.needs_watch
    assert resumed.tracker.reference == {("us-east-1", "v1")} and not resumed.tracker.learning
    assert (resumed.bucket.tokens, resumed.bucket.stamp) == (pytest.approx(30.0), pytest.approx(7.3))
    assert (resumed.next_base, resumed.next_seq) == (26, 31)


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
    after = ErrorRateGuard("entry", abort_if, first_ms, recent)
    for at in range(3000, 3300, 100):
        after.add(_sample(float(at), ok=False))

    assert first_ms == 0.0 and all(at > 1900.0 for at, _ in recent)
    assert after.check() is not None  # 8 of the last 10 failed: 5 seen by the earlier chunk
