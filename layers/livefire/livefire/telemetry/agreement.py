"""Agreement findings: the probes held against the mesh's own telemetry (docs/architecture.md §7).

Each finding is corroborating: a disagreement FAILs the drill and says which instrument saw what; telemetry that
could not be read, or too few requests to compare, leaves the finding INCONCLUSIVE and the verdict to the probes.
- ``meshErrorRatio``: per phase, the probes' error ratio (every probe sent in the span the mesh counted, burst
  probes included: the mesh counts them too) and the mesh's (5xx and local replies) differ by at most the spec's
  ``tolerance`` in percentage points.
- ``meshFailover``: the probes' failover bracket (the RTO bracket: last failure, first sustained success) overlaps
  the mesh's (traffic leaving the faulted cluster, scrape and step included).
- ``meshServedRegions``: per phase, no region served a fifth of the gateway's successful requests while the
  entrypoint's probes say it served none of theirs, and the reverse (the spans are widened or narrowed by a scrape
  interval, so an edge of the phase is never a disagreement).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from livefire.assessment.columns import SampleColumns
from livefire.assessment.model import Assessment, EvidencePointer, Finding, MeshTelemetry, Status, rule
from livefire.spec import DrillSpec

ERROR_RATIO, FAILOVER, SERVED = "meshErrorRatio", "meshFailover", "meshServedRegions"
MIN_REQUESTS = 20  # requests (and probes) a phase needs on both sides before its error ratios are compared
MIN_SERVED = 3  # answers a region needs (and SIGNIFICANT of them) before the other instrument must have seen it
SIGNIFICANT = 0.2


def _finding(finding_id: str, title: str, status: Status, detail: str, *, measured: float | None = None,
             unit: str = "", threshold: float | None = None, mesh: MeshTelemetry | None = None) -> Finding:
    return Finding(id=finding_id, title=title, measured=measured, unit=unit, threshold=threshold, status=status,
                   detail=detail, evidence=EvidencePointer(sample_keys=mesh.query_keys if mesh else []),
                   corroborating=True)


def unavailable_findings(reason: str) -> list[Finding]:
    """Telemetry configured but not read: every agreement finding is INCONCLUSIVE with the reason."""
    detail = f"the mesh's telemetry could not be read: {reason}; the drill is judged on its probes"
    return [_finding(ERROR_RATIO, "Probe and mesh error ratios agree", "INCONCLUSIVE", detail),
            _finding(FAILOVER, "The mesh saw the failover when the probes did", "INCONCLUSIVE", detail),
            _finding(SERVED, "The mesh and the probes agree on who served", "INCONCLUSIVE", detail)]


def _in_span(samples: SampleColumns, from_ms: float, to_ms: float) -> tuple[int, int]:
    """(probes, failed probes) sent in the span, every target and vantage, read from the columns."""
    probes = errors = 0
    for series in samples.groups.values():
        inside = [i for i, sent in enumerate(series.sent_ms) if from_ms < sent <= to_ms]
        probes += len(inside)
        errors += sum(1 for i in inside if not series.ok[i])
    return probes, errors


@rule("Per phase, the probes' error ratio (every probe sent in the span the mesh counted, shifted back by half a "
      "scrape interval) and the mesh's (5xx and local replies of the service's proxies) differ by at most the "
      "spec's tolerance in percentage points.")
def error_ratio_finding(mesh: MeshTelemetry, samples: SampleColumns, tolerance: float) -> Finding:
    lines, worst, judged = [], 0.0, 0
    failed = False
    for phase in (p for p in mesh.phases if p.cluster is None):
        if phase.from_ms is None or phase.to_ms is None:
            lines.append(f"{phase.phase}: no whole query step inside it")
            continue
        # a step's scrape lies in its last scrape interval: on average half an interval before the step's end
        shift = mesh.scrape_interval_s * 500
        probes, probe_errors = _in_span(samples, phase.from_ms - shift, phase.to_ms - shift)
        if probes < MIN_REQUESTS or phase.requests < MIN_REQUESTS or phase.error_ratio_pct is None:
            lines.append(f"{phase.phase}: too few to compare ({probes} probes, {phase.requests:.0f} requests; "
                         f"{MIN_REQUESTS} each needed)")
            continue
        probe_pct = 100.0 * probe_errors / probes
        gap = abs(probe_pct - phase.error_ratio_pct)
        worst, judged = max(worst, gap), judged + 1
        verb = "agree" if gap <= tolerance else "DISAGREE"
        failed |= gap > tolerance
        lines.append(f"{phase.phase}: {verb}: the probes saw {probe_pct:.1f} % errors ({probe_errors} of "
                     f"{probes}), the mesh {phase.error_ratio_pct:.1f} % ({phase.errors:.0f} of "
                     f"{phase.requests:.0f} requests)")
    status: Status = "FAIL" if failed else "PASS" if judged else "INCONCLUSIVE"
    return _finding(ERROR_RATIO, "Probe and mesh error ratios agree", status, "; ".join(lines),
                    measured=worst if judged else None, unit="pp", threshold=tolerance, mesh=mesh)


@rule("The probes' failover bracket (last failure, first sustained success at the entrypoint) overlaps the "
      "mesh's (the step in which the faulted cluster's share of the gateway's requests fell below half, widened by "
      "the step before it and one scrape interval).")
def failover_finding(mesh: MeshTelemetry, assessment: Assessment) -> Finding:
    title = "The mesh saw the failover when the probes did"
    move, bracket = mesh.failover, assessment.rto_bracket
    if move is None or assessment.injected_at_ms is None:
        return _finding(FAILOVER, title, "INCONCLUSIVE", "nothing was injected: no failover to compare", mesh=mesh)
    if bracket is None or assessment.rto_seconds is None:
        return _finding(FAILOVER, title, "INCONCLUSIVE", f"the probes measured no failover "
                        f"({assessment.rto_note}); the mesh: {move.note}", mesh=mesh)
    probe_low = bracket.last_failure_ms if bracket.last_failure_ms is not None else assessment.injected_at_ms
    if move.low_ms is None or move.high_ms is None or move.seconds is None:
        return _finding(FAILOVER, title, "FAIL", f"DISAGREE: the probes saw the entrypoint recover "
                        f"{assessment.rto_seconds:.2f} s after the injection; the mesh: {move.note}",
                        measured=None, unit="s", mesh=mesh)
    agree = probe_low <= move.high_ms and bracket.first_success_ms >= move.low_ms
    injected = assessment.injected_at_ms
    detail = (f"{'agree' if agree else 'DISAGREE'}: the probes saw the entrypoint recover {assessment.rto_seconds:.2f}"
              f" s after the injection (bracket {(probe_low - injected) / 1000:.2f}-"
              f"{(bracket.first_success_ms - injected) / 1000:.2f} s); the mesh saw traffic leave {move.from_cluster}"
              f" for {move.to_cluster} between {(move.low_ms - injected) / 1000:.2f} and "
              f"{(move.high_ms - injected) / 1000:.2f} s (step {mesh.step_s:g} s, scrape {mesh.scrape_interval_s:g} s)")
    return _finding(FAILOVER, title, "PASS" if agree else "FAIL", detail, measured=move.seconds, unit="s",
                    threshold=assessment.rto_seconds, mesh=mesh)


def _served(samples: SampleColumns, entrypoint: str | None, from_ms: float, to_ms: float) -> Counter[str]:
    return Counter(s.served_by for (_, target), series in samples.groups.items() if target == entrypoint
                   for s in series if s.ok and s.served_by and from_ms < s.sent_ms <= to_ms)


def _unseen(seen: Mapping[str, float], other: Mapping[str, float]) -> list[str]:
    """Regions that served a significant share of one instrument's successes and none of the other's."""
    total = sum(seen.values())
    return sorted(r for r, n in seen.items() if n >= MIN_SERVED and n >= SIGNIFICANT * total and not other.get(r))


@rule("Per phase, no region served at least 20 % of the gateway's successful requests (the mesh) while serving "
      "none of the entrypoint's successful probes (their serving-region header, the span widened by a scrape "
      "interval), and the reverse (the probes' span narrowed by a scrape interval).")
def served_regions_finding(mesh: MeshTelemetry, samples: SampleColumns, spec: DrillSpec,
                           entrypoint: str | None) -> Finding:
    title = "The mesh and the probes agree on who served"
    telemetry = spec.telemetry
    assert telemetry is not None
    region_of = {telemetry.cluster_of(r.name): r.name for r in spec.regions}
    scrape_ms = mesh.scrape_interval_s * 1000
    lines, judged, failed = [], 0, False
    for span in (p for p in mesh.phases if p.cluster is None):
        if span.from_ms is None or span.to_ms is None:
            continue
        wide = _served(samples, entrypoint, span.from_ms - scrape_ms, span.to_ms)
        narrow = _served(samples, entrypoint, span.from_ms, span.to_ms - scrape_ms)
        if sum(wide.values()) < MIN_SERVED:
            lines.append(f"{span.phase}: the entrypoint's probes named no serving region")
            continue
        by_mesh = {region_of.get(p.cluster or "", p.cluster or ""): p.gateway_ok
                   for p in mesh.phases if p.phase == span.phase and p.cluster is not None}
        judged += 1
        parts = [f"the mesh saw {r} serve {by_mesh[r]:.0f} of the gateway's {sum(by_mesh.values()):.0f} successful "
                 "requests, no probe was served by it" for r in _unseen(by_mesh, wide)]
        parts += [f"the probes were served by {r} {narrow[r]} times, the mesh saw it serve none of the gateway's "
                  "requests" for r in _unseen(dict(narrow), by_mesh)]
        failed |= bool(parts)
        seen = ", ".join(f"{r} {n} probes / {by_mesh.get(r, 0):.0f} requests" for r, n in sorted(wide.items()))
        lines.append(f"{span.phase}: DISAGREE: " + "; ".join(parts) if parts else f"{span.phase}: agree ({seen})")
    status: Status = "FAIL" if failed else "PASS" if judged else "INCONCLUSIVE"
    return _finding(SERVED, title, status, "; ".join(lines) or "no phase to compare", mesh=mesh)


def agreement_findings(mesh: MeshTelemetry, assessment: Assessment, samples: SampleColumns,
                       spec: DrillSpec) -> list[Finding]:
    assert spec.telemetry is not None
    return [error_ratio_finding(mesh, samples, spec.telemetry.tolerance),
            failover_finding(mesh, assessment),
            served_regions_finding(mesh, samples, spec, assessment.entrypoint)]
