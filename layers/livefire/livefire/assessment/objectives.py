"""Findings every drill gets (the fault took effect, enough samples) and one per objective of the spec:
rto, failbackRto, availability, p99Latency (docs/architecture.md §7)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from livefire.assessment.model import Detection, EvidencePointer, Finding, PhaseName, Recovery, Status, rule
from livefire.assessment.recovery import earliest, failback_target
from livefire.assessment.sufficiency import (
    Measure,
    combine,
    fewest,
    latency_measure,
    percentile_samples_needed,
    share_measure,
    share_samples_needed,
)
from livefire.assessment.timeline import MIN_SAMPLES, DrillTimeline, scheduled


@rule("External drills: PASS when a failure was seen at the entrypoint or at the endpoint of fault.region from "
      "the anchor on; otherwise INCONCLUSIVE, as there is no failover to audit.")
def _incident_finding(drill: DrillTimeline, detections: Sequence[Detection]) -> Finding:
    """An external drill injects nothing: what it audits is a failure someone else caused, if one was seen."""
    title = "A failure was observed to audit"
    first = earliest(detections)
    where = f"the entrypoint or the endpoint of {drill.fault_region}"
    status: Status = "INCONCLUSIVE"
    if drill.injected is None:
        detail = f"nothing failed at {where} during the observed window: there was no failover to audit"
    elif first is None:
        detail = f"nothing failed at {where} after the anchor: there was no failover to audit"
    else:
        detail = (f"{first.target} first failed {first.seconds:.3f} s after the anchor "
                  f"(vantage {first.vantage}, seq {first.first_failure_seq})")
        status = "PASS"
    return Finding(
        id="faultTookEffect", title=title, measured=first.seconds if first else None, unit="s", threshold=None,
        status=status, detail=detail,
        evidence=drill.pointer(
            first.target if first else drill.entrypoint, first.vantage if first else None, drill.injected,
            first.first_failure_ms if first else None, [first.first_failure_seq] if first else [],
        ),
    )


@rule("PASS when the faulted region's own endpoint shows the fault after the injection request was sent (a "
      "failure; for http-delay an answer slowed by half the delay; for traffic-shift a version that did not serve "
      "before); otherwise INCONCLUSIVE: a fault that never showed proves nothing.")
def fault_effect_finding(drill: DrillTimeline, detections: Sequence[Detection]) -> Finding:
    if drill.spec.fault.kind == "external":
        return _incident_finding(drill, detections)
    title = "The fault took effect"
    faulted = [d for d in detections if d.target in drill.faulted_endpoints]
    first = earliest(faulted)
    status: Status = "INCONCLUSIVE"
    if drill.injected is None:
        detail = "the fault was never injected"
    elif not drill.faulted_endpoints:
        detail = f"no probe target is the endpoint of the faulted region {drill.fault_region}"
    elif first is None:
        detail = (
            f"the fault never showed in the probes: the endpoint of {drill.fault_region} did not fail "
            "during the fault"
        )
    else:
        detail = (
            f"{first.target} first showed the fault {first.seconds:.3f} s after injection "
            f"(vantage {first.vantage}, seq {first.first_failure_seq})"
        )
        status = "PASS"
    return Finding(
        id="faultTookEffect", title=title, measured=first.seconds if first else None, unit="s", threshold=None,
        status=status, detail=detail,
        evidence=drill.pointer(
            first.target if first else (drill.faulted_endpoints[0] if drill.faulted_endpoints else None),
            first.vantage if first else None,
            drill.injected, first.first_failure_ms if first else drill.restored,
            [first.first_failure_seq] if first else [],
        ),
    )


@rule("PASS when every vantage has at least 3 probes of the entrypoint in the fault and recovery phases and of "
      "the faulted endpoint in the fault phase (canary, blue-green: also of the entrypoint before the injection); "
      "otherwise INCONCLUSIVE, and the verdict with it.")
def coverage_finding(drill: DrillTimeline) -> Finding:
    """Enough samples to judge: per vantage, the entrypoint in the fault and recovery phases and the faulted
    endpoint in the fault phase; for canary and blue-green also the entrypoint before the injection (the
    versions that served then are what the shift is judged against)."""
    needs: list[tuple[str, str | None, PhaseName]] = []
    for vantage in drill.vantages:
        needs += [(vantage, drill.entrypoint, "fault"), (vantage, drill.entrypoint, "recovery")]
        needs += [(vantage, target, "fault") for target in drill.faulted_endpoints]
        if not drill.failover:
            needs.append((vantage, drill.entrypoint, "baseline"))
    if drill.spec.fault.kind == "external" and drill.restored is None:  # an incident not over: no recovery yet
        needs = [need for need in needs if need[2] != "recovery"]
    counts = [(v, t, p, len(drill.in_phase(v, t, p))) for v, t, p in needs]
    short = [c for c in counts if c[3] < MIN_SAMPLES]
    fewest = min((c[3] for c in counts), default=0)
    status: Status = "INCONCLUSIVE"
    if drill.entrypoint is None:
        detail = "the plan has no entrypoint target"
    elif not drill.vantages:
        detail = "no samples at all"
    elif short:
        detail = "too few samples: " + "; ".join(
            f"{t} from {v} in the {p} phase: {n} (need {MIN_SAMPLES})" for v, t, p, n in short
        )
    else:
        detail, status = f"at least {fewest} samples per target, vantage and phase judged", "PASS"
    first_short = short[0] if short else None
    return Finding(
        id="sampleCoverage", title="Enough samples to judge", measured=float(fewest), unit="samples",
        threshold=float(MIN_SAMPLES), status=status, detail=detail,
        evidence=drill.pointer(
            first_short[1] if first_short else drill.entrypoint, first_short[0] if first_short else None
        ),
    )


@rule("From the injection request's send to the first sustained (probes.sustain) run of successes served by a "
      "healthy region, worst vantage, at most the objective; recovering only after the rollback FAILs; no outage "
      "observed is no RTO (null) and PASSes only for active-active.")
def rto_finding(drill: DrillTimeline, objective: float, worst: Recovery | None) -> Finding:
    """RTO at the entrypoint, worst vantage. With no outage observed there is nothing to time: that PASSes only
    for active-active (the survivors are expected to absorb the traffic), else it is INCONCLUSIVE."""
    title = f"Recovery time at the entrypoint within {objective:g} s"
    if not drill.failover:
        return Finding(
            id="rto", title=title, measured=None, unit="s", threshold=objective, status="INCONCLUSIVE",
            detail=f"RTO does not apply to pattern {drill.spec.pattern} (nothing fails over); "
            "judge the revert with failbackRto",
            evidence=drill.pointer(drill.entrypoint, None),
        )
    if worst is None:
        return Finding(
            id="rto", title=title, measured=None, unit="s", threshold=objective, status="INCONCLUSIVE",
            detail="no entrypoint samples", evidence=drill.pointer(drill.entrypoint, None),
        )
    bracket = worst.bracket
    if worst.no_outage:
        faulted_served = any(
            s.ok and s.served_by == drill.fault_region and drill.surely_faulted(s)
            for v in drill.vantages for s in drill.series(v, drill.entrypoint)
        )
        seamless = drill.spec.pattern == "active-active" and not faulted_served
        status: Status = "PASS" if seamless else "INCONCLUSIVE"
        detail = f"{worst.note} (from every vantage); " + (
            "the surviving regions absorbed the traffic, as active-active should" if seamless
            else "nothing to time: this pattern is expected to show an outage before it fails over"
        )
    elif worst.seconds is None:
        status = "FAIL"
        detail = f"no sustained recovery seen from {worst.vantage}: {worst.note}"
    elif drill.restored is not None and bracket is not None and bracket.first_success_ms >= drill.restored:
        status = "FAIL"
        detail = (
            f"no working failover: the entrypoint recovered only after the rollback, {worst.seconds:.3f} s "
            f"after the injection (from {worst.vantage})"
        )
    else:
        status = "PASS" if worst.seconds <= objective else "FAIL"
        detail = f"RTO {worst.seconds:.3f} s from {worst.vantage} ({worst.note})"
        if bracket is not None and bracket.width_ms is not None:
            detail += f"; bracket {bracket.width_ms:.1f} ms"
    return Finding(
        id="rto", title=title, measured=worst.seconds, unit="s", threshold=objective, status=status, detail=detail,
        evidence=_recovery_pointer(drill, worst, drill.injected),
        required_samples=MIN_SAMPLES, samples=_fewest_at_entrypoint(drill, "fault"),
    )


@rule("From the restore request's send to the first sustained run served by the primary again (active-passive), "
      "with the faulted region back (active-active), or by the versions that served before only (canary, "
      "blue-green), worst vantage, at most the objective.")
def failback_finding(drill: DrillTimeline, objective: float, worst: Recovery | None) -> Finding:
    what = "Failback to" if drill.failover else "Traffic back on"
    title = f"{what} {failback_target(drill)} within {objective:g} s of the rollback"
    if worst is None or drill.restored is None:
        status: Status = "INCONCLUSIVE"
        detail = "the fault was not restored, so there is no failback to time"
    elif worst.cut_short:
        status, detail = "INCONCLUSIVE", f"from {worst.vantage}: {worst.note}"
    elif worst.seconds is None:
        status, detail = "FAIL", f"from {worst.vantage}: {worst.note}"
    else:
        status = "PASS" if worst.seconds <= objective else "FAIL"
        detail = f"failback {worst.seconds:.3f} s after the rollback from {worst.vantage}"
    return Finding(
        id="failbackRto", title=title, measured=worst.seconds if worst else None, unit="s", threshold=objective,
        status=status, detail=detail,
        evidence=_recovery_pointer(drill, worst, drill.restored),
        required_samples=MIN_SAMPLES, samples=_fewest_at_entrypoint(drill, "recovery"),
    )


@rule("Share of the fixed-schedule entrypoint probes that succeeded over the fault and recovery phases, worst "
      "vantage, at least the objective A; it needs ceil(100 / (100 - A)) probes per vantage (at least 3, at most "
      "1000), else INCONCLUSIVE.")
def availability_finding(drill: DrillTimeline, objective: float) -> Finding:
    """Availability at the entrypoint over the fault and recovery phases (fixed-schedule probes), worst vantage."""
    measures = [
        share_measure(v, scheduled(drill.in_phase(v, drill.entrypoint, "fault", "recovery")), objective)
        for v in drill.vantages
    ]
    title = f"Entrypoint availability during fault and recovery at least {objective:g}%"
    return _measured_finding(
        drill, "availability", title, measures, unit="%", threshold=objective, worst=min,
        empty="no entrypoint samples after the injection", required=share_samples_needed(objective),
    )


@rule("Nearest-rank p99 of the fixed-schedule entrypoint probes during the fault that succeeded or timed out (a "
      "timeout counts as at least the probe timeout), worst vantage, at most the objective; it needs 100 probes "
      "per vantage, else INCONCLUSIVE.")
def latency_finding(drill: DrillTimeline, objective_s: float) -> Finding:
    """p99 latency at the entrypoint during the fault (fixed-schedule probes, timeouts counted), worst vantage."""
    threshold = objective_s * 1000.0
    timeout_ms = drill.spec.probes.timeout * 1000.0
    measures = [
        latency_measure(v, scheduled(drill.in_phase(v, drill.entrypoint, "fault")), 99, threshold, timeout_ms)
        for v in drill.vantages
    ]
    title = f"Entrypoint p99 latency during the fault at most {threshold:g} ms"
    return _measured_finding(
        drill, "p99Latency", title, measures, unit="ms", threshold=threshold, worst=max,
        empty="no entrypoint probe during the fault", required=percentile_samples_needed(99), until=drill.restored,
        rule=f"timeouts count as at least the probe timeout ({timeout_ms:g} ms)",
    )


def _measured_finding(
    drill: DrillTimeline, finding_id: str, title: str, measures: Sequence[Measure], *, unit: str,
    threshold: float, worst: Callable[..., Measure], empty: str, required: int, until: float | None = None,
    rule: str = "",
) -> Finding:
    """A finding from per-vantage measures: the worst judged (else measured) vantage is the headline."""
    valued = [m for m in measures if m.value is not None]
    judged = [m for m in valued if m.passed is not None] or valued
    headline = worst(judged, key=lambda m: m.value) if judged else None
    detail = "; ".join(m.text for m in measures) if valued else empty
    if rule:
        detail += f" ({rule})"
    measured = headline.value if headline is not None else None
    return Finding(
        id=finding_id, title=title, measured=None if measured is None else round(measured, 6), unit=unit,
        threshold=threshold, status=combine(measures) if drill.injected is not None else "INCONCLUSIVE",
        detail=detail, evidence=drill.pointer(drill.entrypoint, headline.vantage if headline else None,
                                              drill.injected, until),
        required_samples=required, samples=fewest(measures),
    )


def _recovery_pointer(drill: DrillTimeline, worst: Recovery | None, since: float | None) -> EvidencePointer:
    """The recovery's bracket at the entrypoint, from the worst vantage (from ``since`` when there is none)."""
    bracket = worst.bracket if worst else None
    return drill.pointer(
        drill.entrypoint, worst.vantage if worst else None,
        bracket.last_failure_ms if bracket else since,
        bracket.first_success_ms if bracket else None,
        [bracket.last_failure_seq, bracket.first_success_seq] if bracket else [],
    )


def _fewest_at_entrypoint(drill: DrillTimeline, phase: PhaseName) -> int:
    return min((len(drill.in_phase(v, drill.entrypoint, phase)) for v in drill.vantages), default=0)
