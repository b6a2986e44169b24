"""What one target's probes say about it: its state, whether it needs watching, and the burst budget that pays
for watch probes. The schedule that uses them, and why, is described in ``probing/engine.py``."""

from __future__ import annotations

import math
from dataclasses import dataclass

BURST_HOLD = 5
REFERENCE_PROBES = 10

# Who answered a success: (region, version).
Server = tuple[str | None, str | None]


@dataclass(frozen=True)
class State:
    """A probe's state: failed, or ok and served by ``server`` (None: one of the reference servers)."""

    ok: bool
    server: Server | None = None


class TransitionTracker:
    """The state of one target, as shown by its newest-sent completed probe, and whether to watch it."""

    def __init__(self, hold: int = BURST_HOLD, reference_probes: int = REFERENCE_PROBES) -> None:
        self.hold = hold
        self.reference_probes = reference_probes
        self.reference: set[Server] = set()
        self.learning = True
        self.state: State | None = None
        self.held = 0
        self.base_seen = 0
        self.state_sent = -math.inf  # time.monotonic() of the probe that set the state

    def fold(self, ok: bool, server: Server) -> State:
        if not ok:
            return State(ok=False)
        return State(ok=True, server=None if server in self.reference else server)

    def observe(self, sent: float, ok: bool, server: Server, *, base: bool) -> bool:
        """Record a probe sent at ``sent`` that completed; return whether the target needs watching now."""
        if sent < self.state_sent:
            return self.needs_watch  # overtaken: a probe sent later has already completed
        self.state_sent = sent
        if self.learning:
            if ok:
                self.reference.add(server)
            self.base_seen += 1 if base else 0
            self.learning = ok and self.base_seen < self.reference_probes
        elif ok and not self.reference:
            self.reference.add(server)  # nothing answered while learning: the first success is the reference
        state = self.fold(ok, server)
        if state == self.state:
            self.held += 1
        else:
            # The first state seen is where the target starts, not a transition.
            self.held = self.hold if self.state is None else 1
            self.state = state
        return self.needs_watch

    @property
    def degraded(self) -> bool:
        return self.state is not None and (not self.state.ok or self.state.server is not None)

    @property
    def needs_watch(self) -> bool:
        return self.state is not None and (self.degraded or self.held < self.hold)

    @property
    def settled_elsewhere(self) -> bool:
        """Served by a non-reference server, and that held: a failover or a cutover in place."""
        return self.state is not None and self.state.ok and self.state.server is not None and self.held >= self.hold


class TokenBucket:
    """Watch probes are paid from here: ``capacity`` at most, refilled continuously at ``rate`` per second (the
    spec's burst budget, ``ProbeSettings.burst_capacity``). ``tokens`` and ``stamp`` are its whole state."""

    def __init__(self, capacity: float, rate: float, now: float, tokens: float | None = None) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity if tokens is None else min(capacity, tokens)
        self._stamp = now

    @property
    def stamp(self) -> float:
        """When the bucket was last refilled (the clock ``now`` is given in)."""
        return self._stamp

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self._stamp) * self.rate)
            self._stamp = now

    def take(self, now: float) -> bool:
        self._refill(now)
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def wait(self, now: float) -> float:
        """Seconds until a token is there (infinite when the bucket never refills)."""
        self._refill(now)
        if self.tokens >= 1.0:
            return 0.0
        return math.inf if self.rate <= 0 else (1.0 - self.tokens) / self.rate
