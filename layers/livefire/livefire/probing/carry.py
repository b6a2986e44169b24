"""What a probe window carries from one chunk (one Lambda invocation) to the next: every target's place on its
fixed grid, its watch and burst budget, and its load so far (docs/architecture.md §6).

The engine keeps time on ``time.monotonic()``, which means nothing in another invocation (maybe another
container); the carried state is in UTC epoch ms, and each chunk maps it onto its own monotonic clock through one
wall-clock anchor (``WallClock``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from livefire.contracts import ProbeTarget, TargetResume
from livefire.probing.watch import Server, State, TokenBucket, TransitionTracker


class WallClock:
    """UTC epoch milliseconds from one wall-clock anchor plus monotonic deltas (immune to clock steps)."""

    def __init__(self) -> None:
        self._mono = time.monotonic()
        self._wall_ms = time.time_ns() / 1e6

    def epoch_ms(self, mono: float) -> float:
        return self._wall_ms + (mono - self._mono) * 1000.0

    def monotonic(self, epoch_ms: float) -> float:
        """The ``time.monotonic()`` instant of an epoch-ms instant (the inverse of ``epoch_ms``)."""
        return self._mono + (epoch_ms - self._wall_ms) / 1000.0


@dataclass(frozen=True)
class Handoff:
    """What a chunk hands to the next when it stops sending: every target's state, the window's end as it knew
    it (epoch ms), and whether the window is over (it ended, or a guardrail stopped it)."""

    targets: Sequence[TargetResume]
    end_ms: float
    over: bool = False


@dataclass(frozen=True)
class Chunk:
    """The part of a window one run probes. Instants in UTC epoch ms: ``grid_ms`` is the origin every chunk of
    the window shares (the first chunk's start), ``end_ms`` the window's end as known (a drill window may move it
    later), ``start_ms`` and ``stop_ms`` where this chunk starts and stops sending (its base slots are those in
    between: consecutive chunks share no slot and skip none). ``previous`` is what the previous chunk handed over
    (None for the first); the run can start before it arrives (``ProbeEngine.run_chunk``). A chunk's samples are
    numbered from ``seq_base``."""

    grid_ms: float
    end_ms: float
    start_ms: float = -math.inf
    stop_ms: float = math.inf
    previous: Handoff | None = None
    seq_base: int = 0

    @classmethod
    def whole(cls, duration_s: float, lead_s: float) -> Chunk:
        """A whole window of ``duration_s`` from ``lead_s`` seconds on, in one run."""
        grid_ms = time.time_ns() / 1e6 + lead_s * 1000.0
        return cls(grid_ms=grid_ms, end_ms=grid_ms + max(duration_s, 0.0) * 1000.0)


@dataclass
class Load:
    """How many probes one target was sent, and the most within one wall-clock second (by scheduled instant)."""

    sent: int = 0
    succeeded: int = 0
    watch: int = 0
    peak_per_second: int = 0
    second: int = 0
    in_second: int = 0

    def sent_at(self, scheduled_ms: float, watch: bool) -> None:
        """Count a probe as it is sent (its success is counted once it ended)."""
        self.sent += 1
        self.watch += 1 if watch else 0
        second = math.floor(scheduled_ms / 1000.0)
        if second != self.second:
            self.second, self.in_second = second, 0
        self.in_second += 1
        self.peak_per_second = max(self.peak_per_second, self.in_second)


@dataclass
class TargetState:
    """One target within a run: its grid (``first_send`` + i x interval, monotonic), watch and load."""

    spec: ProbeTarget
    tracker: TransitionTracker
    bucket: TokenBucket
    first_send: float
    next_base: int = 0
    next_seq: int = 0
    watching: bool = False
    load: Load = field(default_factory=Load)
    # What this run's probes showed before the previous chunk's state arrived: (sent, ok, server, base).
    observed: list[tuple[float, bool, Server, bool]] = field(default_factory=list)

    def resume(self, clock: WallClock) -> TargetResume:
        """The state to hand to the next chunk: as the probes completed so far left it."""
        tracker, state = self.tracker, self.tracker.state
        return TargetResume(
            target=self.spec.name,
            next_base=self.next_base,
            next_seq=self.next_seq,
            reference=sorted(tracker.reference, key=repr),
            learning=tracker.learning,
            base_seen=tracker.base_seen,
            state_ok=None if state is None else state.ok,
            state_server=None if state is None else state.server,
            held=tracker.held,
            state_sent_ms=None if math.isinf(tracker.state_sent) else clock.epoch_ms(tracker.state_sent),
            tokens=self.bucket.tokens,
            tokens_at_ms=clock.epoch_ms(self.bucket.stamp),
            sent=self.load.sent,
            succeeded=self.load.succeeded,
            watch=self.load.watch,
            peak_per_second=self.load.peak_per_second,
            second=self.load.second,
            in_second=self.load.in_second,
        )

    def adopt(self, carried: TargetResume, clock: WallClock) -> None:
        """Go on from the previous chunk's state: its tracker, then what this run observed before the state
        arrived (replayed in order); its burst budget (this run does not watch before); its load added to this
        run's. The grid and the seq numbers stay this run's."""
        tracker = TransitionTracker(self.tracker.hold, self.tracker.reference_probes)
        tracker.reference = set(carried.reference)
        tracker.learning = carried.learning
        tracker.base_seen = carried.base_seen
        tracker.state = None if carried.state_ok is None else State(ok=carried.state_ok, server=carried.state_server)
        tracker.held = carried.held
        tracker.state_sent = -math.inf if carried.state_sent_ms is None else clock.monotonic(carried.state_sent_ms)
        for sent, ok, server, base in self.observed:
            tracker.observe(sent, ok, server, base=base)
        self.tracker = tracker
        self.bucket = TokenBucket(self.bucket.capacity, self.bucket.rate, clock.monotonic(carried.tokens_at_ms),
                                  tokens=carried.tokens)
        mine = self.load
        in_second = carried.in_second + (mine.in_second if mine.second == carried.second else 0)
        self.load = Load(sent=carried.sent + mine.sent, succeeded=carried.succeeded + mine.succeeded,
                         watch=carried.watch + mine.watch,
                         peak_per_second=max(carried.peak_per_second, mine.peak_per_second, in_second),
                         second=max(carried.second, mine.second),
                         in_second=in_second if mine.second <= carried.second else mine.in_second)
        self.observed = []
