"""The PromQL of a drill: three range queries of raw counters over the drill's window (docs/architecture.md §7).

The counters are read as they are (no ``rate()``), summed by the labels that matter, every ``step`` seconds:
the increase between two steps is what the mesh counted in between, so a phase's error ratio, traffic split and
latency histogram are exact sums over whole steps, and no rate window blurs an instant. Every label name and
value comes from the spec, which allows only characters that cannot leave a PromQL string literal.
"""

from __future__ import annotations

import math

from livefire.spec.telemetry import Telemetry
from livefire.telemetry.client import RangeQuery

REQUESTS = "requests"
GATEWAY = "gateway"
LATENCY = "latency"
# Prometheus refuses a range query of more than 11,000 points per series.
MAX_POINTS = 10_000


def step_for(observe_s: float, scrape_interval_s: float) -> float:
    """The query step: the scrape interval (finer steps repeat the same scrape), or, when the observation (lead +
    fault + recovery) would need more than ``MAX_POINTS`` of those, the whole seconds that keep it under."""
    if observe_s / scrape_interval_s <= MAX_POINTS:
        return scrape_interval_s
    return float(math.ceil(observe_s / MAX_POINTS))


def _matchers(pairs: dict[str, str]) -> str:
    return "{" + ",".join(f'{name}="{value}"' for name, value in pairs.items()) + "}"


def service_selector(telemetry: Telemetry) -> dict[str, str]:
    """The series of the drilled service, as reported by the spec's reporter."""
    labels = telemetry.labels
    return {labels.reporter: telemetry.reporter, labels.service: telemetry.service, **telemetry.selector}


def gateway_selector(telemetry: Telemetry) -> dict[str, str]:
    """What the entrypoint's gateway sent to the service (its own, source-side reports)."""
    labels = telemetry.labels
    return {labels.reporter: "source", labels.source_workload: telemetry.gateway, labels.service: telemetry.service,
            **{k: v for k, v in telemetry.selector.items() if k != labels.source_workload}}


def drill_queries(telemetry: Telemetry, start_s: float, end_s: float, step_s: float) -> list[RangeQuery]:
    """The service's requests by cluster, status and flags; the gateway's requests by cluster; the service's
    duration histogram buckets by cluster."""
    labels = telemetry.labels
    service = _matchers(service_selector(telemetry))
    return [
        RangeQuery(REQUESTS, f"sum by ({labels.cluster}, {labels.code}, {labels.flags}) "
                             f"({telemetry.requests_metric}{service})", start_s, end_s, step_s),
        RangeQuery(GATEWAY, f"sum by ({labels.cluster}) "
                            f"({telemetry.requests_metric}{_matchers(gateway_selector(telemetry))})",
                   start_s, end_s, step_s),
        RangeQuery(LATENCY, f"sum by ({labels.cluster}, le) ({telemetry.duration_metric}_bucket{service})",
                   start_s, end_s, step_s),
    ]
