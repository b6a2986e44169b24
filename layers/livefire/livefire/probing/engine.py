"""Fixed-schedule probing with adaptive bursts.

Send ``i`` of a target happens at ``start + offset + i * interval`` whatever the earlier probes are doing:
every probe is its own task, so a slow answer never delays the next send (no coordinated omission).
When a target's state changes — ok <-> failed, or the region serving a successful answer — the target is
also probed on a burst grid (``burst_interval``) until the new state held for ``burst_hold`` consecutive
burst probes, or the burst hit its bound (``burst_max_seconds`` / ``burst_max_probes``). Transitions that
happen while a burst runs (a flapping failover, an ejection after consecutive errors) are bracketed to about
one burst interval. A transition seen between bursts is bracketed by the base interval: bursts react, they
cannot look back. The average load stays near the base rate: bursts are short, and each target spends burst
probes from a budget that refills by ``burst_budget`` probes per base send (capped at ``burst_max_probes``),
so even an endpoint that flaps all the time costs at most ``1 + burst_budget`` times the base rate.
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from livefire.contracts import ProbeTarget, Sample
from livefire.probing.http import ProbeOutcome, parse_url, probe_once
from livefire.spec import Expect, Probes, ServedBy

BURST_HOLD = 5
BURST_MAX_SECONDS = 1.0
BURST_MAX_PROBES = 100
BURST_BUDGET = 1.0

# The state a transition is judged on: (ok, served-by of a successful answer).
State = tuple[bool, str | None]


def state_of(ok: bool, served_by: str | None) -> State:
    """Only who served a success matters: a fault's 503 often carries no region at all."""
    return (True, served_by) if ok else (False, None)


@dataclass(frozen=True)
class ProbeSettings:
    interval: float
    timeout: float
    burst_interval: float
    expect: Expect = field(default_factory=Expect)
    served_by: ServedBy = field(default_factory=ServedBy)
    resolve: Mapping[str, str] = field(default_factory=dict)
    burst_hold: int = BURST_HOLD
    burst_max_seconds: float = BURST_MAX_SECONDS
    burst_max_probes: int = BURST_MAX_PROBES
    burst_budget: float = BURST_BUDGET

    @classmethod
    def from_spec(
        cls, probes: Probes, served_by: ServedBy, *, resolve: Mapping[str, str] | None = None
    ) -> ProbeSettings:
        return cls(
            interval=probes.interval,
            timeout=probes.timeout,
            burst_interval=probes.burst_interval,
            expect=probes.expect,
            served_by=served_by,
            resolve=dict(resolve or {}),
        )


class WallClock:
    """UTC epoch milliseconds from one wall-clock anchor plus monotonic deltas (immune to clock steps)."""

    def __init__(self) -> None:
        self._mono = time.monotonic()
        self._wall_ms = time.time_ns() / 1e6

    def epoch_ms(self, mono: float) -> float:
        return self._wall_ms + (mono - self._mono) * 1000.0


@dataclass
class Burst:
    start: float
    held: int = 0
    active: bool = True


class TransitionTracker:
    """The state of one target, as shown by its newest-sent completed probe, and its current burst."""

    def __init__(self, hold: int = BURST_HOLD) -> None:
        self.hold = hold
        self.state: State | None = None
        self.burst: Burst | None = None
        self._state_sent = -math.inf

    def observe(self, sent: float, state: State, *, burst: Burst | None, now: float) -> Burst | None:
        """Record a completed probe sent at ``sent`` (by ``burst``, or a base probe when None).

        Returns a new burst to run when the probe shows a transition. Only a base probe starts a burst: a late
        answer to a burst that is over updates the state but cannot chain burst after burst.
        """
        if sent < self._state_sent:
            return None  # overtaken: a probe sent later has already completed
        self._state_sent = sent
        previous, self.state = self.state, state
        current = self.burst if self.burst is not None and self.burst.active else None
        counts = burst is not None and burst is current
        if previous is None:
            return None
        if state != previous:
            if current is not None:
                current.held = 1 if counts else 0  # the new state must now hold
                return None
            if burst is not None:
                return None
            self.burst = Burst(start=now)
            return self.burst
        if counts and current is not None:
            current.held += 1
            if current.held >= self.hold:
                current.active = False
        return None


@dataclass
class _Target:
    spec: ProbeTarget
    tracker: TransitionTracker
    burst_tokens: float
    next_seq: int = 0


OnSample = Callable[[Sample], None]
StopWhen = Callable[[], str | None]


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
    ) -> str | None:
        """Probe every target for ``duration_s``; return the reason ``stop_when`` gave if it stopped early.

        Returns once every probe sent has ended (each is bounded by the probe timeout). An exception raised
        by ``on_sample`` or ``stop_when`` stops the run and is raised here.
        """
        for target in targets:
            parse_url(target.url)
        context = self._ssl_context
        if context is None and any(parse_url(t.url).scheme == "https" for t in targets):
            context = self._ssl_context = ssl.create_default_context()
        run = _Run(
            self.settings,
            self.vantage,
            context,
            probe=self._probe,
            targets=targets,
            duration_s=duration_s,
            on_sample=on_sample,
            stop_when=stop_when,
        )
        return await run.execute()


class _Run:
    _START_LEAD = 0.005  # let every scheduler task start before the first send is due

    def __init__(
        self,
        settings: ProbeSettings,
        vantage: str,
        ssl_context: ssl.SSLContext | None,
        *,
        probe: ProbeFunction,
        targets: Sequence[ProbeTarget],
        duration_s: float,
        on_sample: OnSample,
        stop_when: StopWhen | None,
    ) -> None:
        self.settings = settings
        self.vantage = vantage
        self.ssl_context = ssl_context
        self.probe = probe
        self.on_sample = on_sample
        self.stop_when = stop_when
        self.clock = WallClock()
        self.start = time.monotonic() + self._START_LEAD
        self.end = self.start + max(duration_s, 0.0)
        self.targets = [
            _Target(t, TransitionTracker(settings.burst_hold), burst_tokens=float(settings.burst_max_probes))
            for t in targets
        ]
        self.tasks: set[asyncio.Task[None]] = set()
        self.stopped = False
        self.failure: BaseException | None = None

    async def execute(self) -> str | None:
        count = len(self.targets)
        for index, target in enumerate(self.targets):
            # Spread the targets over the interval so their sends do not all fall on the same instant.
            self._spawn(self._base(target, offset=index * self.settings.interval / max(count, 1)))
        try:
            reason = await self._watch()
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

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self._done)

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

    async def _watch(self) -> str | None:
        tick = 0
        while not self.stopped:
            moment = self.start + tick * self.settings.interval
            if moment >= self.end:
                return None
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

    async def _base(self, target: _Target, *, offset: float) -> None:
        first = self.start + offset
        send = 0
        while not self.stopped:
            moment = first + send * self.settings.interval
            if moment >= self.end:
                return
            await self._sleep_until(moment)
            if self.stopped:
                return
            target.burst_tokens = min(
                target.burst_tokens + self.settings.burst_budget, float(self.settings.burst_max_probes)
            )
            self._spawn(self._probe(target, moment, burst=None))
            send += 1

    async def _burst(self, target: _Target, burst: Burst) -> None:
        settings = self.settings
        try:
            for send in range(settings.burst_max_probes):
                moment = burst.start + send * settings.burst_interval
                if moment - burst.start >= settings.burst_max_seconds or moment >= self.end:
                    return
                await self._sleep_until(moment)
                if not burst.active or self.stopped or target.burst_tokens < 1:
                    return
                target.burst_tokens -= 1
                self._spawn(self._probe(target, moment, burst=burst))
        finally:
            burst.active = False

    async def _probe(self, target: _Target, scheduled: float, *, burst: Burst | None) -> None:
        settings = self.settings
        seq = target.next_seq
        target.next_seq += 1
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
            burst=burst is not None,
        )
        new_burst = target.tracker.observe(
            sent, state_of(outcome.ok, outcome.served_by), burst=burst, now=time.monotonic()
        )
        if new_burst is not None and not self.stopped:
            self._spawn(self._burst(target, new_burst))
        self.on_sample(sample)
