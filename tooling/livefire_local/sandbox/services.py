"""One HTTP service per sandbox region that obeys its cluster's Istio objects, like an Envoy sidecar would.

Every request re-reads the ClusterStore, so a VirtualService patched through the fake Kubernetes API is in
force for the very next request. The store is the only control surface, apart from ``script_outage`` (a
known outage window for tests and benchmarks that need the true recovery instant).

A request goes through, in order: a scripted outage; the first matching http route's fault (delay, then
abort); the route's weighted destinations; the destination's circuit breaker; the pods of its subset.
- Circuit breaker (the DestinationRule's ``trafficPolicy.connectionPool``): the capacity is the smallest limit
  set among ``tcp.maxConnections``, ``http.http2MaxRequests`` and ``http.http1MaxPendingRequests``. The
  service's own users are modeled as ``BACKGROUND_REQUESTS`` upstream requests always in flight; a request
  that finds the upstream requests in flight (itself and the background included) above the capacity is shed
  with Envoy's overflow answer: 503 with ``x-envoy-overloaded: true``. So the default circuit-break squeeze
  (every limit 1) sheds everything, while a pool of 100 sheds nothing.
- The app behind a subset: a Deployment whose pod template carries the annotation ``APP_ERROR_PERCENT``
  (e.g. ``"50"``) models a broken build: that share of its requests answers 500 with the region and version
  headers (a canary whose errors the drill can attribute to it).
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from livefire_local.sandbox.loopback import LoopbackServed, LoopbackServer, Request, Response, text_response
from livefire_local.sandbox.store import ClusterStore

NO_HEALTHY_UPSTREAM = b"no healthy upstream"
FAULT_ABORT = b"fault filter abort"
SCRIPTED_OUTAGE = b"scripted outage"
OVERFLOW = b"upstream connect error or disconnect/reset before headers. reset reason: overflow"
APP_ERROR = b"app error"
APP_ERROR_PERCENT = "sandbox.livefire.dev/error-percent"
BACKGROUND_REQUESTS = 4
_POOL_LIMITS = (("tcp", "maxConnections"), ("http", "http2MaxRequests"), ("http", "http1MaxPendingRequests"))

_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_GO_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_istio_duration(value: Any) -> float:
    """Seconds of an Istio duration: ``1.5s``, ``250ms``, ``1m30s`` (Go syntax), or a plain number."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    parts = _GO_DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"not a duration: {value!r}")
    return sum(float(number) * _GO_UNIT_SECONDS[unit] for number, unit in parts)


class Responder(Protocol):
    """What the entrypoint forwards to: a region's request handling, without an HTTP hop."""

    @property
    def region(self) -> str: ...

    def handle(self, request: Request) -> Response: ...


@dataclass(frozen=True)
class Outage:
    """A scripted outage window in ``time.monotonic()`` seconds: [start, end)."""

    start: float
    end: float
    status: int


def _percentage(section: Mapping[str, Any]) -> float:
    """Istio's ``percentage.value``; unset means no request is affected."""
    percentage = section.get("percentage") or {}
    return float(percentage.get("value", 0.0))


def _host_matches(host: str, service_host: str) -> bool:
    return host == service_host or host.startswith(service_host + ".")


def _string_matches(rule: Mapping[str, Any], value: str | None, ignore_case: bool = False) -> bool:
    if value is None:
        return False
    if ignore_case:
        value = value.lower()
    if "exact" in rule:
        expected = str(rule["exact"])
        return value == (expected.lower() if ignore_case else expected)
    if "prefix" in rule:
        expected = str(rule["prefix"])
        return value.startswith(expected.lower() if ignore_case else expected)
    if "regex" in rule:
        return re.fullmatch(str(rule["regex"]), value) is not None
    return True


def _request_matches(match: Mapping[str, Any], request: Request) -> bool:
    path = request.path.split("?", 1)[0]
    if "uri" in match and not _string_matches(match["uri"], path, bool(match.get("ignoreUriCase"))):
        return False
    if "method" in match and not _string_matches(match["method"], request.method):
        return False
    for name, rule in (match.get("headers") or {}).items():
        if not _string_matches(rule or {}, request.headers.get(str(name).lower())):
            return False
    return True


def _route_matches(route: Mapping[str, Any], request: Request) -> bool:
    matches = route.get("match")
    return not matches or any(_request_matches(m or {}, request) for m in matches)


def _pod_labels(deployment: Mapping[str, Any]) -> dict[str, str]:
    template = ((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}
    return dict(template.get("labels") or deployment.get("metadata", {}).get("labels") or {})


def _replicas(deployment: Mapping[str, Any]) -> int:
    replicas = (deployment.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)  # Kubernetes defaults replicas to 1


def _app_error_percent(deployment: Mapping[str, Any]) -> float:
    template = ((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}
    value = (template.get("annotations") or {}).get(APP_ERROR_PERCENT)
    return 0.0 if value is None else float(value)


def pool_capacity(rule: Mapping[str, Any] | None) -> int | None:
    """The smallest connection pool limit a DestinationRule sets (None: unlimited)."""
    pool = (((rule or {}).get("spec") or {}).get("trafficPolicy") or {}).get("connectionPool") or {}
    limits = [(pool.get(section) or {}).get(key) for section, key in _POOL_LIMITS]
    set_limits = [int(limit) for limit in limits if limit]
    return min(set_limits) if set_limits else None


@dataclass
class RegionalService(LoopbackServed):
    """The service of one region: routes, faults, weights and replica counts come from ``store``."""

    region: str
    store: ClusterStore
    service_host: str
    seed: int | str | None = None
    clock: Callable[[], float] = time.monotonic
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)
    _outages: list[Outage] = field(init=False, repr=False, default_factory=list)
    _in_flight: int = field(init=False, repr=False, default=0)
    _stopping: threading.Event = field(init=False, repr=False, default_factory=threading.Event)
    _server: LoopbackServer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._server = LoopbackServer(self.handle)

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> str:
        self._stopping.clear()
        return super().start()

    def stop(self) -> None:
        self._stopping.set()  # wakes requests sleeping in a delay fault
        super().stop()

    def script_outage(self, start_s: float, duration_s: float, status: int = 503) -> Outage:
        """Answer ``status`` for ``duration_s`` seconds starting ``start_s`` seconds from now."""
        start = self.clock() + start_s
        outage = Outage(start, start + duration_s, status)
        with self._lock:
            self._outages.append(outage)
        return outage

    def end_outages(self) -> int:
        """End every scripted outage, current or still to come, now; how many had not ended yet."""
        now = self.clock()
        with self._lock:
            count = sum(1 for outage in self._outages if outage.end > now)
            self._outages.clear()
        return count

    # -- request handling ------------------------------------------------------------------------------
    def _chance(self, percent: float) -> bool:
        if percent <= 0:
            return False
        with self._lock:
            return self._rng.random() * 100.0 < percent

    def _in_outage(self) -> Outage | None:
        now = self.clock()
        with self._lock:
            self._outages = [o for o in self._outages if o.end > now]
            return next((o for o in self._outages if o.start <= now), None)

    def _virtual_services(self) -> list[dict[str, Any]]:
        return [
            vs for vs in self.store.list("networking.istio.io", "virtualservices")
            if any(
                _host_matches(str(host), self.service_host)
                for host in (vs.get("spec") or {}).get("hosts") or []
            )
        ]

    @staticmethod
    def _route(
        virtual_services: list[dict[str, Any]], request: Request
    ) -> tuple[str, dict[str, Any]] | None:
        """The namespace and first matching http route of the service's VirtualServices."""
        for vs in virtual_services:
            for route in (vs.get("spec") or {}).get("http") or []:
                if _route_matches(route, request):
                    return vs["metadata"]["namespace"], route
        return None

    def handle(self, request: Request) -> Response:
        outage = self._in_outage()
        if outage is not None:
            return text_response(outage.status, SCRIPTED_OUTAGE)
        virtual_services = self._virtual_services()
        if not virtual_services:
            namespace = None
            route: dict[str, Any] = {"route": [{"destination": {"host": self.service_host}}]}
        else:
            found = self._route(virtual_services, request)
            if found is None:
                return text_response(404, b"route not found")
            namespace, route = found
        fault = route.get("fault") or {}
        delay = fault.get("delay")
        if delay and "fixedDelay" in delay and self._chance(_percentage(delay)):
            self._stopping.wait(parse_istio_duration(delay["fixedDelay"]))
        abort = fault.get("abort")
        if abort and "httpStatus" in abort and self._chance(_percentage(abort)):
            return text_response(int(abort["httpStatus"]), FAULT_ABORT)
        destination = self._pick_destination(route.get("route") or [])
        if destination is None:
            return text_response(503, NO_HEALTHY_UPSTREAM)
        host = str(destination.get("host") or self.service_host).split(".")[0]
        capacity = pool_capacity(self._destination_rule(namespace, host))
        with self._lock:
            if capacity is not None and self._in_flight + 1 + BACKGROUND_REQUESTS > capacity:
                return Response(503, {"content-type": "text/plain", "x-envoy-overloaded": "true"}, OVERFLOW)
            self._in_flight += 1  # an upstream request, from here to the answer
        try:
            return self._upstream(namespace, host, destination.get("subset"))
        finally:
            with self._lock:
                self._in_flight -= 1

    def _upstream(self, namespace: str | None, host: str, subset: Any) -> Response:
        pods = self._healthy_pods(namespace, host, subset)
        if pods is None:
            return text_response(503, NO_HEALTHY_UPSTREAM)
        version, error_percent = pods
        headers = {"x-served-region": self.region, "x-version": version}
        if self._chance(error_percent):
            return Response(500, {"content-type": "text/plain", **headers}, APP_ERROR)
        body = json.dumps({"region": self.region, "version": version}).encode()
        return Response(200, {"content-type": "application/json", **headers}, body)

    def _pick_destination(self, destinations: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Weight / sum of weights; with no weight given at all, an equal split (one destination: 100)."""
        if not destinations:
            return None
        if all("weight" not in d for d in destinations):
            weights = [1.0] * len(destinations)
        else:
            weights = [float(d.get("weight", 0)) for d in destinations]
        total = sum(weights)
        if total <= 0:
            return None
        with self._lock:
            point = self._rng.random() * total
        for destination, weight in zip(destinations, weights, strict=True):
            if point < weight:
                return dict(destination.get("destination") or {})
            point -= weight
        return dict(destinations[-1].get("destination") or {})  # float rounding at the upper edge

    def _healthy_pods(self, namespace: str | None, host: str, subset_name: Any) -> tuple[str, float] | None:
        """(version, app error percent) of a ready pod serving the destination, or None (no healthy upstream).

        The pod is chosen among the matching Deployments by replica count."""
        selector = {"app": host}
        if subset_name is not None:
            subset = self._subset(namespace, host, str(subset_name))
            if subset is None:
                return None
            selector |= {str(k): str(v) for k, v in (subset.get("labels") or {}).items()}
        candidates = [
            d for d in self.store.list("apps", "deployments", namespace)
            if selector.items() <= _pod_labels(d).items() and _replicas(d) > 0
        ]
        if not candidates:
            return None
        chosen = candidates[0]
        if len(candidates) > 1:
            with self._lock:
                chosen = self._rng.choices(candidates, weights=[_replicas(d) for d in candidates])[0]
        if subset_name is not None:
            version = selector.get("version", str(subset_name))
        else:
            version = _pod_labels(chosen).get("version", "unversioned")
        return version, _app_error_percent(chosen)

    def _destination_rule(self, namespace: str | None, host: str) -> dict[str, Any] | None:
        for rule in self.store.list("networking.istio.io", "destinationrules", namespace):
            if str((rule.get("spec") or {}).get("host", "")).split(".")[0] == host:
                return rule
        return None

    def _subset(self, namespace: str | None, host: str, name: str) -> dict[str, Any] | None:
        rule = self._destination_rule(namespace, host)
        for subset in ((rule or {}).get("spec") or {}).get("subsets") or []:
            if subset.get("name") == name:
                return dict(subset)
        return None
