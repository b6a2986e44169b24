"""What the mesh counted, per phase and cluster, from the three range queries (docs/architecture.md §7): request
rate, error ratio (5xx and local replies), p99 latency, the gateway's traffic split per step, and the failover the
gateway's reports show (traffic leaving the faulted region's cluster)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from livefire.assessment.model import MeshFailover, MeshPhase, MeshSplit, PhaseWindow
from livefire.spec.telemetry import Telemetry
from livefire.telemetry.queries import GATEWAY, LATENCY, REQUESTS
from livefire.telemetry.series import Grid, increases, is_error, matrix, quantile, summed

ALL = None  # the cluster key of the whole service
P99 = 0.99


class Counts:
    """The increases of one query's series per step, keyed by (cluster, ...) as the query sums them."""

    def __init__(self, document: Mapping[str, Any], name: str, grid: Grid, key: Any) -> None:
        self.steps: dict[Any, list[float]] = {}
        for labels, values in matrix(document, name):
            grown = increases(values, grid)
            k = key(labels)
            previous = self.steps.get(k)
            self.steps[k] = grown if previous is None else [a + b for a, b in zip(previous, grown, strict=True)]

    def clusters(self) -> set[str]:
        return {str(key[0]) for key in self.steps}


def _requests_key(telemetry: Telemetry) -> Any:
    labels = telemetry.labels
    return lambda m: (m.get(labels.cluster, "unknown"), is_error(m.get(labels.code, ""), m.get(labels.flags, "-")))


def _bucket_key(telemetry: Telemetry) -> Any:
    return lambda m: (m.get(telemetry.labels.cluster, "unknown"), float(m.get("le", "+Inf")))


def _phase(name: Any, cluster: str | None, ks: list[int], grid: Grid, requests: Counts, gateway: Counts,
           latency: Counts) -> MeshPhase:
    def of(counts: Counts, error: bool | None = None) -> float:
        totals = summed(counts.steps, ks)
        return sum(v for (c, err), v in totals.items() if cluster in (ALL, c) and error in (None, err))

    buckets: dict[float, float] = defaultdict(float)
    for (c, le), value in summed(latency.steps, ks).items():
        if cluster in (ALL, c):
            buckets[le] += value
    times = grid.instants
    total, errors = of(requests), of(requests, True)
    seconds = (times[ks[-1]] - times[ks[0] - 1]) if ks else 0.0
    return MeshPhase(
        phase=name, cluster=cluster, from_ms=times[ks[0] - 1] * 1000 if ks else None,
        to_ms=times[ks[-1]] * 1000 if ks else None, requests=total, errors=errors,
        error_ratio_pct=100.0 * errors / total if total else None,
        rate_per_s=total / seconds if seconds else None, p99_ms=quantile(P99, buckets),
        gateway_requests=of(gateway), gateway_ok=of(gateway, False),
    )


def _failover(telemetry: Telemetry, fault_cluster: str, gateway: Counts, grid: Grid, lead: list[int],
              injected_ms: float) -> MeshFailover:
    """The first step after the injection in which the faulted cluster's share of the gateway's requests fell
    below half its lead-phase share; the move began after the scrape that opened the step before it."""
    per_step: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(grid.instants))
    for (cluster, _error), values in gateway.steps.items():
        per_step[cluster] = [a + b for a, b in zip(per_step[cluster], values, strict=True)]
    totals = [sum(values[k] for values in per_step.values()) for k in range(len(grid.instants))]
    ours = per_step.get(fault_cluster, [0.0] * len(totals))
    lead_total = sum(totals[k] for k in lead)
    if not lead:
        return MeshFailover(from_cluster=fault_cluster, to_cluster=None, low_ms=None, high_ms=None, seconds=None,
                            note="no whole query step before the injection: no share to compare with")
    if not lead_total or not sum(ours[k] for k in lead):
        return MeshFailover(from_cluster=fault_cluster, to_cluster=None, low_ms=None, high_ms=None, seconds=None,
                            note=f"the gateway ({telemetry.gateway}) sent {fault_cluster} no traffic before the "
                                 "fault: there was nothing to move")
    share = sum(ours[k] for k in lead) / lead_total
    times = grid.instants
    for k in range(1, len(times)):
        if times[k] * 1000 <= injected_ms or not totals[k] or ours[k] / totals[k] >= share / 2:
            continue
        to = max((c for c in per_step if c != fault_cluster), key=lambda c: per_step[c][k], default=None)
        low = max(injected_ms, (times[max(k - 2, 0)] - telemetry.scrape_interval) * 1000)
        return MeshFailover(from_cluster=fault_cluster, to_cluster=to, low_ms=low, high_ms=times[k] * 1000,
                            seconds=(times[k] * 1000 - injected_ms) / 1000.0,
                            note=f"{fault_cluster}'s share of the gateway's requests fell from {100 * share:.0f} % "
                                 f"to {100 * ours[k] / totals[k]:.0f} % in the step ending "
                                 f"{(times[k] * 1000 - injected_ms) / 1000:.1f} s after the injection; {to} took "
                                 "the most")
    return MeshFailover(from_cluster=fault_cluster, to_cluster=None, low_ms=None, high_ms=None, seconds=None,
                        note=f"{fault_cluster} kept at least half its share of the gateway's requests after the "
                             "injection: the mesh saw no failover")


def mesh_view(telemetry: Telemetry, answers: Mapping[str, Mapping[str, Any]], grid: Grid,
              phases: Sequence[PhaseWindow], fault_cluster: str, injected_ms: float | None
              ) -> tuple[list[MeshPhase], list[MeshSplit], MeshFailover | None]:
    """Per phase (each cluster, then the whole service), the gateway's split step by step, and the failover."""
    requests = Counts(answers[REQUESTS], REQUESTS, grid, _requests_key(telemetry))
    gateway = Counts(answers[GATEWAY], GATEWAY, grid, _requests_key(telemetry))
    latency = Counts(answers[LATENCY], LATENCY, grid, _bucket_key(telemetry))
    clusters = sorted(requests.clusters() | gateway.clusters())
    view: list[MeshPhase] = []
    spans: dict[str, list[int]] = {}
    for window in phases:
        if window.from_ms is None or window.to_ms is None:
            continue
        ks = spans[window.name] = grid.span(window.from_ms / 1000, window.to_ms / 1000, telemetry.scrape_interval)
        view += [_phase(window.name, c, ks, grid, requests, gateway, latency) for c in [*clusters, ALL]]
    times = grid.instants
    split = [MeshSplit(at_ms=times[k] * 1000,
                       requests={c: sum(v[k] for (cc, _e), v in gateway.steps.items() if cc == c) for c in clusters})
             for k in range(1, len(times))]
    failover = (_failover(telemetry, fault_cluster, gateway, grid, spans.get("baseline", []), injected_ms)
                if injected_ms is not None else None)
    return view, split, failover
