"""The limits a spec cannot exceed beyond each field's own bounds (README "Limits"; docs/architecture.md §4).

They keep a drill inside what Step Functions and one Lambda function can carry: the size of an execution input,
a bounded observation, and a probe load one vantage sustains without running out of sockets or time.
"""

from __future__ import annotations

import math

from livefire.spec.durations import DAY, format_duration
from livefire.spec.sections import Probes

# Step Functions refuses an execution input over 256 KiB; the spec travels in one.
MAX_SPEC_BYTES = 256 * 1024
# Deeper nesting than this is never a drill spec (and could exhaust a parser's stack).
MAX_DEPTH = 32
MAX_REGIONS = 20
# lead + fault + recovery: a drill observes at most a day (the probe windows run in chunks of one Lambda
# invocation each, docs/architecture.md §6; the state machine's TimeoutSeconds covers it).
MAX_OBSERVE_S = DAY
# Per vantage: base probes per second over every target, and connections that may be open at once when every
# probe waits its whole timeout while the targets are watched at the burst interval (a Lambda function may
# hold 1,024 file descriptors; the rest is left to the runtime, the SDK and the sample writer).
MAX_PROBE_RATE = 200.0
MAX_IN_FLIGHT = 800


def probe_load(probes: Probes, targets: int) -> tuple[float, int]:
    """(base probes per second, connections in flight at worst) of one vantage probing ``targets`` endpoints."""
    rate = targets / probes.interval
    in_flight = targets * math.ceil(round(probes.timeout / probes.burst_interval, 9))
    return rate, in_flight


def probe_budget_problem(probes: Probes, targets: int) -> str | None:
    """What makes this probe load too much for one vantage, as ``field: problem``; None if it fits."""
    rate, in_flight = probe_load(probes, targets)
    if rate > MAX_PROBE_RATE:
        slowest = format_duration(math.ceil(targets / MAX_PROBE_RATE * 1000) / 1000)
        return (f"probes.interval: {targets} targets every {format_duration(probes.interval)} is {rate:.0f} "
                f"probes/s per vantage, over the budget of {MAX_PROBE_RATE:.0f}/s: make it at least {slowest}")
    if in_flight > MAX_IN_FLIGHT:
        return (f"probes.timeout: {targets} targets x {format_duration(probes.timeout)} timeout / "
                f"{format_duration(probes.burst_interval)} burstInterval is up to {in_flight} connections in "
                f"flight per vantage, over the budget of {MAX_IN_FLIGHT}: shorten probes.timeout or lengthen "
                "probes.burstInterval")
    return None
