"""The user-facing endpoint of the sandbox: picks a region like Istio locality failover + outlier detection.

The DestinationRule's ``trafficPolicy`` is read on every request, so an edit applies at once:
- ``loadBalancer.localityLbSetting.failover`` gives a priority order (the first ``from`` first, then its
  ``to`` ...); without it requests are spread round-robin over the regions not ejected (active-active).
- ``outlierDetection`` ejects a region after ``consecutive5xxErrors`` 5xx in a row (Envoy's consecutive-5xx
  detector ejects at once) for ``baseEjectionTime`` times its ejection multiplier, capped at
  ``maxEjectionTime``; the multiplier grows by one per ejection and, as in Envoy, shrinks by one per
  ``interval`` spent healthy. ``maxEjectionPercent`` bounds how many regions may be ejected at once, but one
  always may be. Without ``outlierDetection`` nothing is ever ejected, so failover never happens.
- Every region ejected: panic, the first by priority gets the request anyway.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from livefire_local.sandbox.loopback import LoopbackServed, LoopbackServer, Request, Response
from livefire_local.sandbox.services import Responder, parse_istio_duration

DEFAULT_CONSECUTIVE_5XX = 5
DEFAULT_INTERVAL_S = 10.0
DEFAULT_BASE_EJECTION_S = 30.0
DEFAULT_MAX_EJECTION_S = 300.0
DEFAULT_MAX_EJECTION_PERCENT = 10.0
UPSTREAM_FAILURE = b"upstream connect error"


@dataclass
class _Health:
    consecutive_5xx: int = 0
    multiplier: int = 0
    ejected_until: float | None = None
    unejected_at: float | None = None


@dataclass(frozen=True)
class _Outlier:
    consecutive_5xx: int
    interval: float
    base_ejection: float
    max_ejection: float
    max_ejection_percent: float

    @classmethod
    def of(cls, section: Mapping[str, Any]) -> _Outlier:
        def seconds(key: str, default: float) -> float:
            return parse_istio_duration(section[key]) if key in section else default

        return cls(
            consecutive_5xx=int(section.get("consecutive5xxErrors", DEFAULT_CONSECUTIVE_5XX)),
            interval=seconds("interval", DEFAULT_INTERVAL_S),
            base_ejection=seconds("baseEjectionTime", DEFAULT_BASE_EJECTION_S),
            max_ejection=seconds("maxEjectionTime", DEFAULT_MAX_EJECTION_S),
            max_ejection_percent=float(section.get("maxEjectionPercent", DEFAULT_MAX_EJECTION_PERCENT)),
        )


def _priority(policy: Mapping[str, Any], names: Sequence[str]) -> list[str] | None:
    """The failover priority order, or None when the policy spreads requests over all regions."""
    locality = (policy.get("loadBalancer") or {}).get("localityLbSetting") or {}
    failover = locality.get("failover") or []
    if locality.get("enabled") is False or not failover:
        return None
    order: list[str] = []
    for entry in failover:
        for name in (entry.get("from"), entry.get("to")):
            if name in names and name not in order:
                order.append(name)
    return order + [n for n in names if n not in order]


class Entrypoint(LoopbackServed):
    """Forwards each request in-process to one region's ``handle`` and returns that region's answer."""

    def __init__(
        self,
        regions: Sequence[Responder],
        dr_source: Callable[[], Mapping[str, Any] | None],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not regions:
            raise ValueError("an entrypoint needs at least one region")
        self._regions = {r.region: r for r in regions}
        if len(self._regions) != len(regions):
            raise ValueError("region names must be unique")
        self._names = [r.region for r in regions]
        self._dr_source = dr_source
        self._clock = clock
        self._lock = threading.Lock()
        self._health = {name: _Health() for name in self._names}
        self._next = 0
        self._server = LoopbackServer(self.handle)

    def ejected(self) -> list[str]:
        """The regions ejected right now, in region order."""
        with self._lock:
            now = self._clock()
            until = {n: self._health[n].ejected_until for n in self._names}
            return [n for n, end in until.items() if end is not None and end > now]

    # -- request handling ------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        rule = self._dr_source() or {}
        policy = (rule.get("spec") or {}).get("trafficPolicy") or {}
        section = policy.get("outlierDetection")
        outlier = _Outlier.of(section) if section is not None else None
        chosen = self._choose(_priority(policy, self._names), outlier)
        started = time.perf_counter()
        try:
            response = self._regions[chosen].handle(request)
        except Exception:  # a region that cannot answer is a gateway failure, counted like a 5xx
            response = Response(503, {"content-type": "text/plain"}, UPSTREAM_FAILURE)
        self._record(chosen, response.status, outlier)
        self.observed(chosen, response, time.perf_counter() - started)
        return response

    def observed(self, region: str, response: Response, seconds: float) -> None:
        """Called once per request with the region that answered it (the sandbox's metrics: istio_metrics.py)."""

    def _choose(self, priority: list[str] | None, outlier: _Outlier | None) -> str:
        with self._lock:
            now = self._clock()
            for health in self._health.values():
                if outlier is None:  # detection switched off: Envoy rebuilds the cluster, nobody ejected
                    health.consecutive_5xx, health.ejected_until = 0, None
                elif health.ejected_until is not None and now >= health.ejected_until:
                    health.consecutive_5xx, health.ejected_until = 0, None
                    health.unejected_at = now
            order = priority or self._names
            available = [n for n in order if self._health[n].ejected_until is None]
            if not available:
                return order[0]  # panic
            if priority is not None:
                return available[0]
            chosen = available[self._next % len(available)]
            self._next += 1
            return chosen

    def _record(self, region: str, status: int, outlier: _Outlier | None) -> None:
        with self._lock:
            health = self._health[region]
            if status < 500:
                health.consecutive_5xx = 0
                return
            health.consecutive_5xx += 1
            if (
                outlier is None
                or outlier.consecutive_5xx <= 0
                or health.consecutive_5xx != outlier.consecutive_5xx  # Envoy fires once, at the threshold
                or health.ejected_until is not None
            ):
                return
            ejected = sum(1 for h in self._health.values() if h.ejected_until is not None)
            if ejected and 100.0 * (ejected + 1) / len(self._health) > outlier.max_ejection_percent:
                return
            now = self._clock()
            if health.unejected_at is not None and outlier.interval > 0:
                healthy_intervals = int((now - health.unejected_at) // outlier.interval)
                health.multiplier = max(0, health.multiplier - healthy_intervals)
            health.multiplier += 1
            duration = min(
                outlier.base_ejection * health.multiplier,
                max(outlier.base_ejection, outlier.max_ejection),
            )
            health.ejected_until = now + duration
