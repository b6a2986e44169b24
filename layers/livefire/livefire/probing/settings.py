"""The probe schedule's settings, from the spec's ``probes`` section: the base interval, the watch's burst
interval and the burst budget that pays for it (the schedule and its load bound are described in
``probing/engine.py``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from livefire.probing.watch import BURST_HOLD, REFERENCE_PROBES
from livefire.spec import Expect, Probes, ServedBy

BURST_MAX_DURATION_S = 60.0  # the default of probes.burstMaxDuration
BURST_BUDGET = 1.0


@dataclass(frozen=True)
class ProbeSettings:
    interval: float
    timeout: float
    burst_interval: float
    expect: Expect = field(default_factory=Expect)
    served_by: ServedBy = field(default_factory=ServedBy)
    resolve: Mapping[str, str] = field(default_factory=dict)
    burst_hold: int = BURST_HOLD
    burst_max_duration: float = BURST_MAX_DURATION_S
    burst_budget: float = BURST_BUDGET
    reference_probes: int = REFERENCE_PROBES

    @classmethod
    def from_spec(
        cls, probes: Probes, served_by: ServedBy, *, resolve: Mapping[str, str] | None = None
    ) -> ProbeSettings:
        return cls(
            interval=probes.interval,
            timeout=probes.timeout,
            burst_interval=probes.burst_interval,
            burst_max_duration=probes.burst_max_duration,
            expect=probes.expect,
            served_by=served_by,
            resolve=dict(resolve or {}),
        )

    @property
    def burst_capacity(self) -> float:
        """Tokens enough to watch a target at the burst interval for ``burst_max_duration`` while the bucket
        refills (watch slots on base sends are free; a refill that keeps up needs no more than the slots)."""
        drain = (1.0 / self.burst_interval) - (1.0 + self.burst_budget) / self.interval
        if drain <= 0:
            return self.burst_max_duration / self.burst_interval
        return self.burst_max_duration * drain

    def load(self, seconds: float) -> tuple[float, float]:
        """(peak, average) probes per second one target can be sent: at the burst interval while watched, and
        over a window of ``seconds`` at most ``max_sends`` (the load a drill adds to a failing endpoint)."""
        peak = max(1.0 / self.burst_interval, 1.0 / self.interval)
        return peak, self.max_sends(seconds) / seconds if seconds > 0 else peak

    def max_sends(self, seconds: float) -> int:
        """The most probes one target can be sent in a window of ``seconds`` (base and watch together)."""
        base = math.ceil(max(seconds, 0.0) / self.interval)
        return base + math.floor(self.burst_capacity + self.burst_budget * max(seconds, 0.0) / self.interval)
