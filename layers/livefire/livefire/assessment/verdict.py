"""The judgement: every finding of a drill, and the verdict they add up to (docs/architecture.md §7)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any

from livefire.assessment.columns import SampleColumns
from livefire.assessment.load import probe_load
from livefire.assessment.model import Assessment, FaultInstants, Finding, Status
from livefire.assessment.objectives import (
    availability_finding,
    coverage_finding,
    failback_finding,
    fault_effect_finding,
    latency_finding,
    rto_finding,
)
from livefire.assessment.patterns import pattern_findings
from livefire.assessment.posture import posture_findings
from livefire.assessment.recommendations import recommend
from livefire.assessment.recovery import (
    detections_of,
    earliest,
    failback_of,
    observed_incident,
    outage_observed,
    outages_of,
    rto_of,
    served_timeline,
    slowest,
)
from livefire.assessment.rpo import (
    measure,
    replication_lag_finding,
    rpo_finding,
    serving_starts,
    write_loss_finding,
)
from livefire.assessment.steady import steady_after_rollback_finding
from livefire.assessment.timeline import DrillTimeline, all_stats, entrypoint_target, phase_windows
from livefire.contracts import Plan
from livefire.datachecks.markers import MarkerSample
from livefire.spec import DrillSpec


def judge(findings: Sequence[Finding]) -> tuple[Status, str]:
    """The verdict: INCONCLUSIVE when a gate (the fault took effect, enough samples) did not pass, else FAIL
    when any finding failed, else INCONCLUSIVE when any was not judged, else PASS. A corroborating finding (the
    mesh's telemetry) that was not judged leaves the verdict to the probes."""
    by_id = {f.id: f for f in findings}
    for gate in ("faultTookEffect", "sampleCoverage"):
        if by_id[gate].status != "PASS":
            return "INCONCLUSIVE", by_id[gate].detail
    failed = [f.id for f in findings if f.status == "FAIL"]
    if failed:
        return "FAIL", "failed: " + ", ".join(failed)
    open_ = [f.id for f in findings if f.status == "INCONCLUSIVE" and not f.corroborating]
    if open_:
        return "INCONCLUSIVE", "not judged: " + ", ".join(open_)
    judged = [f for f in findings if f.status == "PASS"]
    return "PASS", f"all {len(judged)} findings passed" + (
        f" ({len(findings) - len(judged)} corroborating not judged)" if len(judged) < len(findings) else "")


def assess(
    spec: DrillSpec,
    plan: Plan,
    samples: SampleColumns,
    *,
    injected_at_ms: float | None,
    restored_at_ms: float | None,
    sample_keys: Sequence[str],
    injection_answered_at_ms: float | None = None,
    restore_answered_at_ms: float | None = None,
    markers: Sequence[MarkerSample] = (),
    marker_keys: Sequence[str] = (),
) -> Assessment:
    """Judge a drill. The fault instants are brackets: ``injected_at_ms`` is when the first injection request
    was sent and ``injection_answered_at_ms`` when the last answer came back (likewise ``restored_at_ms`` and
    ``restore_answered_at_ms`` for the restore); an answer instant left out closes the bracket at its send.
    The mesh posture the spec requires is judged later, on the Evidence step's audit (``with_posture``).
    ``markers`` are the data checks' samples (``marker_keys`` their chunks): replication lag and RPO.
    ``samples``: the drill window's samples as columns (``livefire.assessment.columns``)."""
    if injected_at_ms is None and restored_at_ms is not None:
        raise ValueError("restored_at_ms given without injected_at_ms")
    if injected_at_ms is not None and restored_at_ms is not None and restored_at_ms < injected_at_ms:
        raise ValueError("restored_at_ms is before injected_at_ms")
    groups = samples.groups
    if spec.fault.kind == "external" and injected_at_ms is None:  # nothing injected: anchor on what was observed
        injected_at_ms, restored_at_ms = observed_incident(spec, plan, groups)
    entrypoint = entrypoint_target(spec, plan)
    seen_vantages = sorted({vantage for vantage, _ in groups})
    drill = DrillTimeline(
        spec=spec,
        injected=injected_at_ms,
        restored=restored_at_ms,
        groups=groups,
        vantages=[v.name for v in plan.vantages] or seen_vantages,
        entrypoint=entrypoint.name if entrypoint else None,
        faulted_endpoints=[
            t.name for t in plan.targets if t.region == spec.fault.region and t is not entrypoint
        ],
        sample_keys=sorted(sample_keys),
        fault_wait_s=float(plan.fault_wait_seconds),
        injection_answered=injection_answered_at_ms,
        restore_answered=restore_answered_at_ms,
    )
    detections = detections_of(drill)
    rtos = [rto_of(drill, v) for v in drill.vantages] if drill.entrypoint and drill.failover else []
    failbacks = [failback_of(drill, v) for v in drill.vantages] if drill.entrypoint else []
    worst_rto, worst_failback = slowest(rtos), slowest(failbacks)
    outages = [o for v in drill.vantages for o in outages_of(drill, v)]
    longest = max(outages, key=lambda o: o.duration_ms, default=None)

    fault_effect = fault_effect_finding(drill, detections)
    findings = [fault_effect, coverage_finding(drill)]
    objectives = spec.objectives
    if objectives.rto is not None:
        findings.append(rto_finding(drill, objectives.rto, worst_rto))
    if objectives.failback_rto is not None:
        findings.append(failback_finding(drill, objectives.failback_rto, slowest(failbacks, objectives.failback_rto)))
    if objectives.availability is not None:
        findings.append(availability_finding(drill, objectives.availability))
    if objectives.p99_latency is not None:
        findings.append(latency_finding(drill, objectives.p99_latency))
    data_checks = measure(spec, markers, injected_ms=injected_at_ms, restored_ms=restored_at_ms,
                          serving=serving_starts(chain.from_iterable(
                              series for (_, target), series in groups.items() if target == drill.entrypoint),
                              drill.entrypoint, injected_at_ms),
                          marker_keys=marker_keys) if spec.data_checks else []
    if objectives.rpo is not None:
        findings.append(rpo_finding(data_checks, objectives.rpo))
    if objectives.replication_lag_p99 is not None:
        findings.append(replication_lag_finding(data_checks, objectives.replication_lag_p99))
    if any(check.standby_writes for check in spec.data_checks):
        findings.append(write_loss_finding(data_checks))
    findings += pattern_findings(drill, worst_failback)
    findings.append(steady_after_rollback_finding(drill))
    verdict, reason = judge(findings)

    entry_detection = earliest(d for d in detections if d.target == drill.entrypoint)
    faulted_detection = earliest(d for d in detections if d.target in drill.faulted_endpoints)
    return Assessment(
        drill_id=plan.drill_id,
        service=plan.service,
        pattern=spec.pattern,
        fault_region=spec.fault.region,
        entrypoint=drill.entrypoint,
        faulted_endpoints=drill.faulted_endpoints,
        injected_at_ms=injected_at_ms,
        restored_at_ms=restored_at_ms,
        injection=_instants(injected_at_ms, injection_answered_at_ms),
        restore=_instants(restored_at_ms, restore_answered_at_ms),
        phases=phase_windows(drill, samples),
        stats=all_stats(drill),
        fault_took_effect=fault_effect.status == "PASS",
        detection=detections,
        detection_seconds=faulted_detection.seconds if faulted_detection else None,
        entrypoint_detection_seconds=entry_detection.seconds if entry_detection else None,
        rto_seconds=worst_rto.seconds if worst_rto else None,
        outage_observed=outage_observed(drill),
        rto_bracket=worst_rto.bracket if worst_rto else None,
        rto_note=worst_rto.note if worst_rto else (
            "no entrypoint target" if drill.failover else f"RTO does not apply to pattern {spec.pattern}"
        ),
        rto_by_vantage=rtos,
        failback_seconds=worst_failback.seconds if worst_failback else None,
        failback_bracket=worst_failback.bracket if worst_failback else None,
        failback_note=worst_failback.note if worst_failback else "no entrypoint target",
        failback_by_vantage=failbacks,
        max_outage_ms=longest.duration_ms if longest else 0.0,
        max_outage=longest,
        served_by_timeline=served_timeline(drill) if drill.entrypoint else [],
        findings=findings,
        verdict=verdict,
        verdict_reason=reason,
        sample_keys=drill.sample_keys,
        data_checks=data_checks,
        load=probe_load(groups),
    )


def _instants(sent_ms: float | None, answered_ms: float | None) -> FaultInstants | None:
    if sent_ms is None:
        return None
    return FaultInstants(sent_ms=sent_ms, answered_ms=sent_ms if answered_ms is None else max(sent_ms, answered_ms))


def with_posture(assessment: Assessment, spec: DrillSpec, posture: Sequence[Mapping[str, Any]] | None) -> Assessment:
    """The assessment with the findings of ``posture.require`` judged on the mesh audit (posture.json), and the
    verdict they add up to. The Evidence step audits the mesh and calls this before the reports are written; a
    required item that could not be audited (``posture`` None) is INCONCLUSIVE. The recommendations
    (``recommendations.py``) are made here too, as some read the audit; the same object comes back when nothing
    changed."""
    judged = assessment
    required = posture_findings(spec, posture)
    if required:
        findings = [f for f in assessment.findings if f.id not in {r.id for r in required}] + required
        verdict, reason = judge(findings)
        judged = assessment.model_copy(update={"findings": findings, "verdict": verdict, "verdict_reason": reason})
    recommendations = recommend(spec, judged, posture)
    if recommendations == judged.recommendations:
        return judged
    return judged.model_copy(update={"recommendations": recommendations})
