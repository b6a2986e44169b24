"""Fixed-schedule probing that watches a target closely while its state needs it.

Base probes: send ``i`` of a target happens at ``start + offset + i * interval`` whatever the earlier probes are
doing: every probe is its own task, so a slow answer never delays the next send (no coordinated omission).

States: a probe either failed or succeeded served by a server (region, version); every *reference* server
counts as one: those that answered the first ``reference_probes`` base probes before any failure (both regions
of an active-active pair, the primary of an active-passive one). A target is *degraded* while it fails or is
served by a non-reference server (a standby after failover, a new version after a cutover).

Watching: besides its base probes, a target is probed on a finer grid aligned with its base grid
- at the burst interval right after any transition, until the new state held for ``burst_hold`` probes, and
  for as long as it fails: the end of an outage (the RTO) lies between two sends at most ``burst_interval``
  apart (1.1x when ``interval`` is not a multiple of it) while the bucket below lasts;
- once between base sends (midway with the default budget) while it stays settled on a non-reference server:
  a failover or a cutover usually lasts until the rollback and beyond, longer than any bucket could watch at
  the burst interval, so the failback is bracketed to ``interval / (1 + burst_budget)`` and the bucket is kept
  for the next outage.
A transition out of a healthy reference state can only be noticed by a base probe (bracketed by the base
interval); the watch it starts brackets whatever follows. No schedule can bracket an instant nobody can
predict to a burst interval without probing at that rate all along.

Load: every watch probe spends a token from a per-target bucket, the spec's burst budget
(``probes.burstMaxDuration``): it holds ``burst_capacity`` tokens, enough to watch a target at the burst interval
for ``burstMaxDuration`` on end (60 s by default), starts full and refills continuously at ``burst_budget`` tokens
per base interval (1.0: at the base rate). So over a window of ``T`` seconds one target is sent at most

    ceil(T / interval)  +  floor(burst_capacity + burst_budget * T / interval)

probes (``ProbeSettings.max_sends``): at most (1 + burst_budget) times the base rate plus a one-off
``burst_capacity``; while watched at the burst interval, a target is sent 1 / burst_interval probes a second
(base sends included: a watch slot on a base send is that send). A healthy target costs exactly the base rate;
only degraded time is paid for, and probes spent during an outage are earned back by the quiet time around it.
An outage up to ``burstMaxDuration`` long is watched at the burst interval whole, so its end is bracketed to it;
past that the watch goes on at the refill rate, midway between base sends. Bounded in count by the bucket and in
time by the window; a watch ends as soon as the state no longer needs it.

Chunks: a window longer than one invocation is probed in consecutive runs (``Chunk``). Every run shares the
window's grid origin, and the next run goes on from each target's next base send, with its watch and bucket
(``probing/carry.py``): no base probe is skipped or sent twice at a boundary; a base send the next run starts too
late for goes out at once (its sample keeps its scheduled instant).
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from livefire.contracts import ProbeTarget, Sample, TargetResume
from livefire.probing.carry import Chunk, Handoff, TargetState, WallClock
from livefire.probing.http import ProbeOutcome, parse_url, probe_once
from livefire.probing.settings import ProbeSettings
from livefire.probing.watch import TokenBucket, TransitionTracker
from livefire.spec import Expect, ServedBy

START_LEAD_S = 0.005  # a window's grid starts this far ahead: every scheduler task starts before the first send
_GRID_TOLERANCE = 0.1  # of a burst interval: a watch slot this close to a base send is that base send

OnSample = Callable[[Sample], None]
StopWhen = Callable[[], str | None]
EndAt = Callable[[], float | None]  # a later end the run should reach (time.monotonic()), asked once per interval


class ProbeFunction(Protocol):
    """The shape of ``probe_once``: one probe of one URL that never raises for a network failure."""

    def __call__(
        self,
        url: str,
        *,
        timeout: float,
        resolve: Mapping[str, str],
        served_by: ServedBy,
        expect: Expect,
        ssl_context: ssl.SSLContext | None,
    ) -> Awaitable[ProbeOutcome]: ...


class ProbeEngine:
    def __init__(
        self,
        settings: ProbeSettings,
        *,
        vantage: str,
        ssl_context: ssl.SSLContext | None = None,
        probe: ProbeFunction = probe_once,
    ) -> None:
        self.settings = settings
        self.vantage = vantage
        self._ssl_context = ssl_context
        self._probe = probe

    async def run(
        self,
        targets: Sequence[ProbeTarget],
        duration_s: float,
        on_sample: OnSample,
        stop_when: StopWhen | None = None,
        end_at: EndAt | None = None,
    ) -> str | None:
        """Probe every target for ``duration_s`` (or until the later end ``end_at`` asks for); return the reason
        ``stop_when`` gave if it stopped early.

        Returns once every probe sent has ended (each is bounded by the probe timeout). An exception raised
        by ``on_sample`` or ``stop_when`` stops the run and is raised here.
        """
        chunk = Chunk.whole(duration_s, START_LEAD_S)
        return (await self.run_chunk(targets, chunk, on_sample, stop_when, end_at)).reason

    async def run_chunk(
        self,
        targets: Sequence[ProbeTarget],
        chunk: Chunk,
        on_sample: OnSample,
        stop_when: StopWhen | None = None,
        end_at: EndAt | None = None,
        *,
        previous: Awaitable[Handoff] | None = None,
        on_stop: Callable[[Handoff], None] | None = None,
    ) -> ChunkResult:
        """Probe one chunk of a window (``run`` is a whole window in one chunk): send the base slots from
        ``chunk.start_ms`` to ``chunk.stop_ms``, go on from the previous chunk's state (``chunk.previous``, or
        ``previous`` once it arrives: base sends start on time without it, the watch waits for it), and hand
        this chunk's state to ``on_stop`` as sending stops (before the probes in flight end)."""
        for target in targets:
            parse_url(target.url)
        context = self._ssl_context
        if context is None and any(parse_url(t.url).scheme == "https" for t in targets):
            context = self._ssl_context = ssl.create_default_context()
        run = _Run(self.settings, self.vantage, context, probe=self._probe, targets=targets, chunk=chunk,
                   on_sample=on_sample, stop_when=stop_when, end_at=end_at)
        reason = await run.execute(previous, on_stop)
        return ChunkResult(
            reason=reason,
            done=reason is not None or run.over or run.end <= run.stop,
            end_ms=run.clock.epoch_ms(run.end),
            targets=[target.resume(run.clock) for target in run.targets],
        )


@dataclass(frozen=True)
class ChunkResult:
    """How a chunk ended: the stop reason (a guardrail), whether the window is done, its end as known (epoch
    ms), and every target's state and load for the next chunk (or the summary)."""

    reason: str | None
    done: bool
    end_ms: float
    targets: list[TargetResume]


class _Run:

    def __init__(
        self,
        settings: ProbeSettings,
        vantage: str,
        ssl_context: ssl.SSLContext | None,
        *,
        probe: ProbeFunction,
        targets: Sequence[ProbeTarget],
        chunk: Chunk,
        on_sample: OnSample,
        stop_when: StopWhen | None,
        end_at: EndAt | None = None,
    ) -> None:
        self.settings = settings
        self.end_at = end_at
        self.vantage = vantage
        self.ssl_context = ssl_context
        self.probe = probe
        self.on_sample = on_sample
        self.stop_when = stop_when
        self.clock = WallClock()
        self.start = self.clock.monotonic(chunk.grid_ms)
        self.end = self.clock.monotonic(chunk.end_ms)
        self.stop = math.inf if math.isinf(chunk.stop_ms) else self.clock.monotonic(chunk.stop_ms)
        begin = -math.inf if math.isinf(chunk.start_ms) else self.clock.monotonic(chunk.start_ms)
        count = max(len(targets), 1)
        rate = settings.burst_budget / settings.interval
        # Spread the targets over the interval so their sends do not all fall on the same instant.
        self.targets = [
            TargetState(
                t,
                TransitionTracker(settings.burst_hold, settings.reference_probes),
                TokenBucket(settings.burst_capacity, rate, self.start),
                first_send=self.start + index * settings.interval / count,
                next_seq=chunk.seq_base,
            )
            for index, t in enumerate(targets)
        ]
        for target in self.targets:  # the first base slot at or after this chunk's start
            if begin > target.first_send:
                target.next_base = math.ceil((begin - target.first_send) / settings.interval - 1e-6)
        self.tasks: set[asyncio.Task[None]] = set()
        self.senders: set[asyncio.Task[None]] = set()  # the base and watch loops
        self.stopped = False
        self.failure: BaseException | None = None
        self.adopted = asyncio.Event()
        self.over = False
        if chunk.previous is not None:
            self._adopt(chunk.previous)

    def _adopt(self, handoff: Handoff) -> None:
        """Take the previous chunk's state over (``TargetState.adopt``); watch what needs it."""
        carried = {state.target: state for state in handoff.targets}
        for target in self.targets:
            if target.spec.name in carried:
                target.adopt(carried[target.spec.name], self.clock)
        later = self.clock.monotonic(handoff.end_ms)
        if handoff.over:
            self.over = True
            self.end = min(self.end, later)
        elif later > self.end:
            self.end = later
        self.adopted.set()

    @property
    def until(self) -> float:
        """Where sending stops: the window's end or the chunk's, whichever comes first (a slot within a
        microsecond of it is past it: the instants went through epoch ms and back)."""
        return min(self.end, self.stop) - 1e-6

    async def execute(self, previous: Awaitable[Handoff] | None = None,
                      on_stop: Callable[[Handoff], None] | None = None) -> str | None:
        if previous is None and not self.adopted.is_set():
            self.adopted.set()  # the window's first chunk
        for target in self.targets:
            self._spawn(self._base(target), sender=True)
            if target.tracker.needs_watch:  # the previous chunk was watching it
                target.watching = True
                self._spawn(self._watch_target(target), sender=True)
        if previous is not None:
            self._spawn(self._await_previous(previous))
        try:
            reason = await self._supervise()
            if on_stop is not None:
                while self.senders:  # every probe of this chunk is sent: its state is whole but for the answers
                    await asyncio.wait(set(self.senders))
                await self.adopted.wait()
                on_stop(Handoff([t.resume(self.clock) for t in self.targets], self.clock.epoch_ms(self.end),
                                over=reason is not None or self.over or self.end <= self.stop))
            while self.tasks:
                await asyncio.wait(set(self.tasks))
        except BaseException:
            self.stopped = True
            for task in self.tasks:
                task.cancel()
            raise
        if self.failure is not None:
            raise self.failure
        return reason

    async def _await_previous(self, previous: Awaitable[Handoff]) -> None:
        self._adopt(await previous)
        for target in self.targets:
            if target.tracker.needs_watch and not target.watching and not self.stopped:
                target.watching = True
                self._spawn(self._watch_target(target), sender=True)

    async def _past_until(self) -> bool:
        """Whether sending is over: past ``until`` once the previous chunk's state is in (it may move the
        window's end later: until then, wait for it)."""
        if not self.adopted.is_set():
            await self.adopted.wait()
            return False
        return True

    def _spawn(self, coroutine: Coroutine[Any, Any, None], *, sender: bool = False) -> None:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self._done)
        if sender:
            self.senders.add(task)
            task.add_done_callback(self.senders.discard)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and self.failure is None:
            self.failure = error
            self.stopped = True

    @staticmethod
    async def _sleep_until(moment: float) -> None:
        delay = moment - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _supervise(self) -> str | None:
        """Ask ``stop_when`` once per base interval until the window ends or it gives a reason."""
        tick = max(0, math.ceil((time.monotonic() - self.start) / self.settings.interval))
        while not self.stopped:
            moment = self.start + tick * self.settings.interval
            later = self.end_at() if self.end_at is not None else None
            if later is not None and later > self.end:
                self.end = later  # read by every send loop at its next send
            if moment >= self.until:
                if await self._past_until():
                    return None
                continue
            await self._sleep_until(moment)
            if self.stopped:
                return None
            if self.stop_when is not None:
                reason = self.stop_when()
                if reason:
                    self.stopped = True
                    return reason
            tick += 1
        return None

    async def _base(self, target: TargetState) -> None:
        while not self.stopped:
            moment = target.first_send + target.next_base * self.settings.interval
            if moment >= self.until:
                if await self._past_until():
                    return  # the next chunk goes on from its start
                continue
            await self._sleep_until(moment)
            if self.stopped:
                return
            self._spawn(self._probe(target, moment, watch=False))
            target.next_base += 1

    async def _watch_target(self, target: TargetState) -> None:
        """Probe on the burst grid (aligned with the target's base grid) while the tracker asks for it."""
        step = self.settings.burst_interval
        ratio = self.settings.interval / step
        slot = math.ceil((time.monotonic() - target.first_send) / step)
        try:
            while not self.stopped:
                moment = target.first_send + slot * step
                if moment >= self.until:
                    return
                await self._sleep_until(moment)
                if self.stopped or not target.tracker.needs_watch:
                    return
                now = time.monotonic()
                woke, position = slot, slot / ratio
                # Unlike base sends, slots missed while the loop was busy are not caught up: probes sent
                # back to back would see the same instant.
                slot = max(slot + 1, math.ceil((now - target.first_send) / step))
                if abs(position - round(position)) * ratio < _GRID_TOLERANCE:
                    continue  # a base probe goes out at this instant anyway
                if target.tracker.settled_elsewhere and woke != self._spread_slot(target, moment - step / 2):
                    slot = max(slot, self._spread_slot(target, now))  # settled elsewhere: midway probes only
                    continue
                if not target.bucket.take(now):
                    wait = target.bucket.wait(now)
                    if math.isinf(wait):
                        return
                    slot = max(slot, self._spread_slot(target, now + wait))
                    continue
                self._spawn(self._probe(target, moment, watch=True))
        finally:
            target.watching = False

    def _spread_slot(self, target: TargetState, ready: float) -> int:
        """The watch slot of the first instant from ``ready`` on that splits the base interval evenly (midway
        between base sends with a budget of 1.0): where the watch probes go at the refill rate."""
        settings = self.settings
        spread = settings.interval / (1.0 + settings.burst_budget)
        share = math.ceil((ready - target.first_send) / spread - 1e-9)
        if abs(share * spread / settings.interval - round(share * spread / settings.interval)) < 1e-9:
            share += 1  # a base send
        return round(share * spread / settings.burst_interval)

    async def _probe(self, target: TargetState, scheduled: float, *, watch: bool) -> None:
        settings = self.settings
        seq = target.next_seq
        target.next_seq += 1
        target.load.sent_at(self.clock.epoch_ms(scheduled), watch)
        sent = time.monotonic()
        outcome = await self.probe(
            target.spec.url,
            timeout=settings.timeout,
            resolve=settings.resolve,
            served_by=settings.served_by,
            expect=settings.expect,
            ssl_context=self.ssl_context,
        )
        ended = time.monotonic()
        sample = Sample(
            target=target.spec.name,
            vantage=self.vantage,
            seq=seq,
            scheduled_ms=self.clock.epoch_ms(scheduled),
            sent_ms=self.clock.epoch_ms(sent),
            ended_ms=self.clock.epoch_ms(ended),
            ok=outcome.ok,
            status=outcome.status,
            error=outcome.error,
            latency_ms=(ended - sent) * 1000.0,
            served_by=outcome.served_by,
            version=outcome.version,
            burst=watch,
        )
        target.load.succeeded += 1 if outcome.ok else 0
        server = (outcome.served_by, outcome.version)
        if not self.adopted.is_set():  # replayed onto the previous chunk's state when it arrives
            target.observed.append((sent, outcome.ok, server, not watch))
        needs_watch = target.tracker.observe(sent, outcome.ok, server, base=not watch)
        if needs_watch and not target.watching and not self.stopped and self.adopted.is_set():
            target.watching = True
            self._spawn(self._watch_target(target), sender=True)
        self.on_sample(sample)
