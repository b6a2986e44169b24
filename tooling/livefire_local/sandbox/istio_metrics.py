"""Istio's standard request metrics, exported by every sandbox service and entrypoint like an Envoy sidecar's
(docs/architecture.md §10).

Each proxy counts every request it really serves (probes and any other traffic) in ``istio_requests_total`` and
``istio_request_duration_milliseconds`` with Istio's labels (``reporter``, ``source_workload``,
``destination_service``, ``destination_cluster``, ``response_code``, ``response_flags``) and serves them in the
Prometheus exposition format at ``/stats/prometheus`` (Envoy's merged-metrics path; a scrape is not counted).
A regional service reports as the ``destination`` in its own region's cluster; the entrypoint reports as the
``source`` (the ingress gateway), with the cluster of the region that answered. ``response_flags`` names the
sandbox's local replies as Envoy would: ``FI`` a fault abort, ``UH`` no healthy upstream, ``UO`` an overflow,
``UF`` a region that could not answer the gateway.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from livefire_local.sandbox.entrypoint import UPSTREAM_FAILURE, Entrypoint
from livefire_local.sandbox.loopback import Request, Response
from livefire_local.sandbox.services import FAULT_ABORT, NO_HEALTHY_UPSTREAM, OVERFLOW, RegionalService

SCRAPE_PATH = "/stats/prometheus"
GATEWAY_WORKLOAD = "istio-ingressgateway"
# Istio's default buckets for istio_request_duration_milliseconds.
ISTIO_BUCKETS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000,
                 1800000, 3600000)
LABELS = ("reporter", "source_workload", "destination_service", "destination_cluster", "response_code",
          "response_flags")
_FLAGS = {FAULT_ABORT: "FI", NO_HEALTHY_UPSTREAM: "UH", OVERFLOW: "UO", UPSTREAM_FAILURE: "UF"}


def service_fqdn(service: str) -> str:
    """The sandbox service's ``destination_service``: its namespace is its name (drills/sandbox/mesh/*.yaml)."""
    return f"{service}.{service}.svc.cluster.local"


class IstioMetrics:
    """One proxy's request metrics, in a registry of its own."""

    def __init__(self, *, reporter: str, source_workload: str, destination_service: str) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._fixed = (reporter, source_workload, destination_service)
        self._requests = Counter("istio_requests", "Requests served, as Istio's standard metric.", LABELS,
                                 registry=self.registry)
        self._duration = Histogram("istio_request_duration_milliseconds", "Request duration in milliseconds.",
                                   LABELS, buckets=ISTIO_BUCKETS, registry=self.registry)
        self._lock = threading.Lock()

    def observe(self, cluster: str, response: Response, seconds: float) -> None:
        labels = (*self._fixed, cluster, str(response.status), _FLAGS.get(response.body, "-"))
        with self._lock:
            self._requests.labels(*labels).inc()
            self._duration.labels(*labels).observe(seconds * 1000.0)

    def scrape(self, request: Request) -> Response | None:
        """The exposition, when ``request`` is a scrape; None for any other request."""
        if request.method != "GET" or request.path.split("?", 1)[0] != SCRAPE_PATH:
            return None
        return Response(200, {"content-type": CONTENT_TYPE_LATEST}, generate_latest(self.registry))


@dataclass
class MeteredService(RegionalService):
    """A regional service whose sidecar reports every request it answers (``reporter="destination"``)."""

    metrics: IstioMetrics = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.metrics = IstioMetrics(reporter="destination", source_workload="unknown",
                                    destination_service=service_fqdn(self.service_host))
        super().__post_init__()

    def handle(self, request: Request) -> Response:
        scraped = self.metrics.scrape(request)
        if scraped is not None:
            return scraped
        started = time.perf_counter()
        response = super().handle(request)
        self.metrics.observe(self.region, response, time.perf_counter() - started)
        return response


class MeteredEntrypoint(Entrypoint):
    """The entrypoint as the ingress gateway reports it (``reporter="source"``), per region that answered."""

    def __init__(self, regions: Sequence[RegionalService], dr_source: Callable[[], Mapping[str, Any] | None], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(regions, dr_source, clock=clock)
        self.metrics = IstioMetrics(reporter="source", source_workload=GATEWAY_WORKLOAD,
                                    destination_service=service_fqdn(regions[0].service_host))

    def handle(self, request: Request) -> Response:
        return self.metrics.scrape(request) or super().handle(request)

    def observed(self, region: str, response: Response, seconds: float) -> None:
        self.metrics.observe(region, response, seconds)
