"""Evidence sufficiency: how many samples a rule needs before it may be judged, and how failures count
(docs/architecture.md §7). A finding never says more than its samples.

- A share (an availability of A%) needs ⌈100 / (100 - A)⌉ fixed-schedule probes per vantage, at least
  ``MIN_SAMPLES`` and at most ``MAX_SHARE_SAMPLES`` (what an objective of 100% needs): then one probe weighs no
  more than the error budget.
- A percentile q needs ⌈100 / (100 - q)⌉ samples per vantage, 100 for a p99: with fewer, the nearest rank is
  only the slowest sample.
- Latency counts every fixed-schedule probe that succeeded or timed out. A timed-out probe counts as at least
  the probe timeout, never dropped: a percentile that falls on one is a lower bound. Probes that failed in
  another way (an error status, a refused connection) carry no latency; availability judges them.
- Per vantage, a rule is judged only with enough samples. A finding FAILs when a judged vantage fails, is
  INCONCLUSIVE (naming how many samples were needed) when a vantage could not be judged, and PASSes otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from livefire.assessment.columns import Probe
from livefire.assessment.model import Status
from livefire.assessment.timeline import MIN_SAMPLES, availability_of
from livefire.probing.http import TIMEOUT as TIMEOUT_ERROR

MAX_SHARE_SAMPLES = 1000


def share_samples_needed(percent: float) -> int:
    """Probes per vantage needed to judge an availability of ``percent``."""
    if percent >= 100.0:
        return MAX_SHARE_SAMPLES
    return max(MIN_SAMPLES, min(MAX_SHARE_SAMPLES, math.ceil(100.0 / (100.0 - percent) - 1e-9)))


def percentile_samples_needed(q: float) -> int:
    """Samples per vantage needed for the q-th percentile to be more than the slowest sample."""
    return math.ceil(100.0 / (100.0 - q) - 1e-9)


@dataclass(frozen=True)
class Quantile:
    """A latency percentile over ``count`` probes; ``censored`` when it fell on a timed-out probe, so that the
    true value is at least ``value_ms``."""

    value_ms: float
    censored: bool
    count: int
    timeouts: int


def latency_quantile(samples: Sequence[Probe], q: float, timeout_ms: float) -> Quantile | None:
    """Nearest-rank percentile of the latency of ``samples``, timeouts counted at least the probe timeout."""
    counted = [
        (max(s.latency_ms, timeout_ms), True) if s.error == TIMEOUT_ERROR else (s.latency_ms, False)
        for s in samples if s.ok or s.error == TIMEOUT_ERROR
    ]
    if not counted:
        return None
    counted.sort()
    value, censored = counted[max(1, math.ceil(q / 100.0 * len(counted))) - 1]
    return Quantile(value_ms=value, censored=censored, count=len(counted), timeouts=sum(c for _, c in counted))


@dataclass(frozen=True)
class Measure:
    """One vantage's value for a rule: ``passed`` is None when it could not be judged (too few samples)."""

    vantage: str
    count: int
    value: float | None
    passed: bool | None
    text: str


def share_measure(vantage: str, samples: Sequence[Probe], floor: float) -> Measure:
    """An availability of at least ``floor`` percent over the fixed-schedule probes ``samples``."""
    needed = share_samples_needed(floor)
    value = availability_of(samples)
    if value is None or len(samples) < needed:
        return Measure(vantage, len(samples), value, None, f"{vantage}: {len(samples)} probes (need {needed})")
    return Measure(vantage, len(samples), value, value >= floor, f"{vantage}: {value:.3f}% of {len(samples)}")


def latency_measure(vantage: str, samples: Sequence[Probe], q: float, limit_ms: float, timeout_ms: float) -> Measure:
    """A q-th percentile latency of at most ``limit_ms`` over ``samples``, timeouts counted."""
    needed = percentile_samples_needed(q)
    quantile = latency_quantile(samples, q, timeout_ms)
    count = quantile.count if quantile else 0
    if quantile is None or count < needed:
        return Measure(vantage, count, quantile.value_ms if quantile else None, None,
                       f"{vantage}: {count} probes with a latency (need {needed} for a p{q:g})")
    bound = "at least " if quantile.censored else ""
    text = f"{vantage}: {bound}{quantile.value_ms:.1f} ms over {count} probes ({quantile.timeouts} timed out)"
    if quantile.censored and quantile.value_ms <= limit_ms:
        return Measure(vantage, count, quantile.value_ms, None,
                       text + "; the probe timeout is not above the limit, so it cannot be judged")
    return Measure(vantage, count, quantile.value_ms, quantile.value_ms <= limit_ms, text)


def combine(measures: Sequence[Measure]) -> Status:
    """FAIL when a judged vantage failed, INCONCLUSIVE when one could not be judged (or there is none)."""
    if any(m.passed is False for m in measures):
        return "FAIL"
    if not measures or any(m.passed is None for m in measures):
        return "INCONCLUSIVE"
    return "PASS"


def fewest(measures: Sequence[Measure]) -> int:
    return min((m.count for m in measures), default=0)
