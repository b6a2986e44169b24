"""What to change: rules that read a judged drill and the mesh posture audit and recommend a change, each with the
numbers that justify it and, for mesh configuration, the Istio YAML to apply (docs/architecture.md §7).

Recommendations are advice: they never change a finding or the verdict. The Evidence step makes them with the
posture audit (``verdict.with_posture``); a rule whose inputs were not measured recommends nothing.

An objective is met *with margin* when the measure is at most ``MARGIN`` of it. The suggested outlier detection
follows Envoy: the consecutive-5xx detector ejects an endpoint at the ``consecutive5xxErrors``-th 5xx in a row,
the sweep that un-ejects it and decays its ejection multiplier runs every ``interval``, and an ejected endpoint
comes back after ``baseEjectionTime`` x its multiplier, so failback waits at least ``baseEjectionTime``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml

from livefire.assessment.model import Assessment, Recommendation
from livefire.spec import DrillSpec
from livefire.spec.durations import parse_duration

MARGIN = 0.5
# Istio's defaults for a DestinationRule's outlierDetection fields left out.
DEFAULT_CONSECUTIVE_5XX = 5
DEFAULT_INTERVAL_S = 10.0
DEFAULT_BASE_EJECTION_S = 30.0
FAILOVER_PATTERNS = ("active-passive", "active-active")
Audits = Sequence[Mapping[str, Any]]


def _checks(audit: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(check.get("check")): check for check in audit.get("findings") or []}


def _seconds(value: Any, default: float) -> float:
    try:
        return default if value is None else parse_duration(value)
    except ValueError:
        return default


def _duration(seconds: float) -> str:
    return f"{seconds:g}s"


def _yaml(document: Mapping[str, Any], command: str) -> str:
    return f"# {command}\n" + yaml.safe_dump(dict(document), sort_keys=False, default_flow_style=False)


def _outlier_change(audit: Mapping[str, Any], outlier: Mapping[str, Any]) -> str:
    """A merge patch of the region's DestinationRule, or a new DestinationRule when the audit found none."""
    checks = _checks(audit)
    namespace, host = str(audit.get("namespace")), str(audit.get("host"))
    rule = checks.get("destination-rule") or {}
    name = (rule.get("settings") or {}).get("name") if rule.get("ok") else None
    body = {"trafficPolicy": {"outlierDetection": dict(outlier)}}
    context = f"--context <{audit.get('cluster')}> "
    if name:
        command = f"kubectl {context}-n {namespace} patch destinationrule {name} --type merge --patch-file this.yaml"
        return _yaml({"spec": body}, command)
    document = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                "metadata": {"name": host, "namespace": namespace}, "spec": {"host": host, **body}}
    return _yaml(document, f"kubectl {context}apply -f this.yaml")


def _failure_rate(assessment: Assessment) -> float | None:
    """Failed requests per second the entrypoint saw during its longest outage (probes only: a lower bound on the
    rate real traffic hits a failing endpoint)."""
    outage = assessment.max_outage
    if outage is None or outage.duration_ms <= 0 or outage.failures <= 0:
        return None
    return outage.failures / (outage.duration_ms / 1000.0)


def suggested_outlier(spec: DrillSpec, assessment: Assessment,
                      current: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Outlier detection that meets the objectives with margin, never looser than ``current``: eject within
    MARGIN x the RTO objective at the failure rate seen (consecutive5xxErrors), sweep at least that often
    (interval) and eject for at most MARGIN x the failback objective (baseEjectionTime)."""
    current = current or {}
    errors = int(current.get("consecutive5xxErrors", DEFAULT_CONSECUTIVE_5XX))
    interval = _seconds(current.get("interval"), DEFAULT_INTERVAL_S)
    ejection = _seconds(current.get("baseEjectionTime"), DEFAULT_BASE_EJECTION_S)
    rto, failback = spec.objectives.rto, spec.objectives.failback_rto
    rate = _failure_rate(assessment)
    if rto is not None:
        budget = MARGIN * rto
        if rate is not None:
            errors = max(1, min(errors, math.floor(rate * budget)))
        interval = min(interval, max(1.0, math.floor(budget)))
    if failback is not None:
        ejection = min(ejection, max(1.0, math.floor(MARGIN * failback)))
    return {**current, "consecutive5xxErrors": errors, "interval": _duration(interval),
            "baseEjectionTime": _duration(ejection)}


def _add_outlier_detection(spec: DrillSpec, assessment: Assessment, audits: Audits) -> list[Recommendation]:
    """Failover patterns: a region whose DestinationRule has no outlierDetection never ejects a failing endpoint,
    so locality failover never moves traffic away from it."""
    if spec.pattern not in FAILOVER_PATTERNS:
        return []
    failed = [f"{f.id} {f.status}" for f in assessment.findings if f.status == "FAIL"]
    found = []
    for audit in audits:
        check = _checks(audit).get("outlier-detection")
        if check is None or check.get("ok"):
            continue
        outlier = suggested_outlier(spec, assessment)
        because = f"the posture audit of {audit.get('region')} found: {check.get('detail')}"
        if failed:
            because += f"; this drill: {', '.join(failed)}"
        found.append(Recommendation(
            id="addOutlierDetection", title=f"Add outlierDetection to the DestinationRule in {audit.get('region')}",
            region=str(audit.get("region")), because=because,
            change=f"add trafficPolicy.outlierDetection (consecutive5xxErrors {outlier['consecutive5xxErrors']}, "
                   f"interval {outlier['interval']}, baseEjectionTime {outlier['baseEjectionTime']}: "
                   f"{_objectives_text(spec)})",
            yaml=_outlier_change(audit, outlier), findings=[f.split()[0] for f in failed]))
    return found


def _objectives_text(spec: DrillSpec) -> str:
    rto, failback = spec.objectives.rto, spec.objectives.failback_rto
    parts = [f"eject within {MARGIN:g} x the RTO objective {rto:g} s" if rto is not None else "",
             f"come back within {MARGIN:g} x the failback objective {failback:g} s" if failback is not None else ""]
    return "; ".join(p for p in parts if p) or "Istio's defaults, as the spec sets no RTO or failback objective"


def _faulted_outlier(assessment: Assessment, audits: Audits) -> tuple[Mapping[str, Any], dict[str, Any]] | None:
    for audit in audits:
        check = _checks(audit).get("outlier-detection")
        if audit.get("region") == assessment.fault_region and check is not None and check.get("ok"):
            return audit, dict(check.get("settings") or {})
    return None


def _faster_ejection(spec: DrillSpec, assessment: Assessment, audits: Audits) -> list[Recommendation]:
    """The RTO is over MARGIN x its objective and the faulted region's outlier detection can eject sooner."""
    rto, objective = assessment.rto_seconds, spec.objectives.rto
    found = _faulted_outlier(assessment, audits)
    if rto is None or objective is None or rto <= MARGIN * objective or found is None:
        return []
    audit, current = found
    keys = ("consecutive5xxErrors", "interval")
    suggested = suggested_outlier(spec, assessment, current)
    errors = int(current.get("consecutive5xxErrors", DEFAULT_CONSECUTIVE_5XX))
    interval = _seconds(current.get("interval"), DEFAULT_INTERVAL_S)
    if suggested["consecutive5xxErrors"] == errors and _seconds(suggested["interval"], interval) == interval:
        return []  # the outlier detection is already as quick as the objective needs: the time went elsewhere
    rate = _failure_rate(assessment)
    paced = (f"; at the {rate:.1f} failed requests/s the entrypoint saw, {errors} errors in a row take "
             f"{errors / rate:.2f} s") if rate else ""
    return [Recommendation(
        id="fasterEjection", title=f"Eject a failing {assessment.fault_region} sooner", region=assessment.fault_region,
        because=f"RTO {rto:.3f} s is over {MARGIN:g} x the objective {objective:g} s; outlierDetection in "
                f"{assessment.fault_region}: consecutive5xxErrors {errors}, interval {_duration(interval)}{paced}",
        change=f"consecutive5xxErrors {suggested['consecutive5xxErrors']} and interval {suggested['interval']}: "
               f"ejection within {MARGIN * objective:g} s",
        yaml=_outlier_change(audit, {k: suggested[k] for k in keys}), findings=["rto"])]


def _shorter_ejection(spec: DrillSpec, assessment: Assessment, audits: Audits) -> list[Recommendation]:
    """Failback is over MARGIN x its objective and the primary's baseEjectionTime accounts for most of it."""
    failback, objective = assessment.failback_seconds, spec.objectives.failback_rto
    found = _faulted_outlier(assessment, audits)
    if failback is None or objective is None or failback <= MARGIN * objective or found is None:
        return []
    audit, current = found
    ejection = _seconds(current.get("baseEjectionTime"), DEFAULT_BASE_EJECTION_S)
    suggested = suggested_outlier(spec, assessment, current)["baseEjectionTime"]
    if ejection < MARGIN * failback or _seconds(suggested, ejection) >= ejection:
        return []
    return [Recommendation(
        id="shorterEjection", title=f"Let {assessment.fault_region} back sooner after it recovers",
        region=assessment.fault_region,
        because=f"failback {failback:.3f} s is over {MARGIN:g} x the objective {objective:g} s, and "
                f"{assessment.fault_region} stays ejected at least its baseEjectionTime {_duration(ejection)}",
        change=f"baseEjectionTime {suggested}: failback within {MARGIN * objective:g} s",
        yaml=_outlier_change(audit, {"baseEjectionTime": suggested}), findings=["failbackRto"])]


def _strict_mtls(spec: DrillSpec, assessment: Assessment, audits: Audits) -> list[Recommendation]:
    """A region whose PeerAuthentication leaves the service PERMISSIVE (or DISABLE) accepts plaintext."""
    found = []
    for audit in audits:
        check = _checks(audit).get("mtls-strict")
        if check is None or check.get("ok"):
            continue
        namespace = str(audit.get("namespace"))
        document = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                    "metadata": {"name": "default", "namespace": namespace}, "spec": {"mtls": {"mode": "STRICT"}}}
        found.append(Recommendation(
            id="strictMtls", title=f"Require STRICT mTLS in {audit.get('region')}", region=str(audit.get("region")),
            because=f"the posture audit of {audit.get('region')} found: {check.get('detail')}",
            change=f"a namespace-wide PeerAuthentication with mode STRICT in {namespace} (a workload-level policy "
                   "that is not STRICT still overrides it)",
            yaml=_yaml(document, f"kubectl --context <{audit.get('cluster')}> apply -f this.yaml"),
            findings=["postureMtlsStrict"] if assessment.finding("postureMtlsStrict") else []))
    return found


def _canary_drift(spec: DrillSpec, assessment: Assessment, audits: Audits) -> list[Recommendation]:
    """The split the mesh served strayed from the route weights beyond the binomial tolerance."""
    split = assessment.finding("canarySplit")
    if split is None or split.status != "FAIL":
        return []
    return [Recommendation(
        id="canarySplitDrift", title="Make the served split follow the route weights",
        because=f"canary share {split.measured:g}% against weight {split.threshold:g}%: {split.detail}",
        change="the VirtualService weights were applied but not served: check that each DestinationRule subset "
               "selects only its version's pods (its version label), and that no trafficPolicy.loadBalancer."
               "consistentHash or long-lived connections pin clients to one version",
        findings=["canarySplit"])]


def _lag_near_rpo(spec: DrillSpec, assessment: Assessment, audits: Audits) -> list[Recommendation]:
    """The replication lag before the fault is over MARGIN x the RPO objective: a failover then loses about that."""
    objective = spec.objectives.rpo
    if objective is None:
        return []
    found = []
    for result in assessment.data_checks:
        for stats in result.lag:
            if stats.phase != "baseline" or stats.p99_s is None or stats.p99_s <= MARGIN * objective:
                continue
            found.append(Recommendation(
                id="replicationLagNearRpo", title=f"Reduce replication lag to {stats.region}", region=stats.region,
                because=f"{result.check}: p99 replication lag to {stats.region} {stats.p99_s:.3f} s over "
                        f"{stats.reads} reads before the fault, over {MARGIN:g} x the RPO objective {objective:g} s",
                change=f"bring the p99 lag under {MARGIN * objective:g} s (replication capacity, batching, the "
                       f"writer's distance to {stats.region}) or revisit the RPO objective",
                findings=[f for f in ("rpo", "replicationLagP99") if assessment.finding(f)]))
    return found


RULES: tuple[Callable[[DrillSpec, Assessment, Audits], list[Recommendation]], ...] = (
    _add_outlier_detection, _faster_ejection, _shorter_ejection, _strict_mtls, _canary_drift, _lag_near_rpo,
)


def recommend(spec: DrillSpec, assessment: Assessment, audits: Audits | None) -> list[Recommendation]:
    """Every rule's recommendations, in rule order; the posture rules need the audit (None: not audited)."""
    return [found for rule in RULES for found in rule(spec, assessment, audits or [])]
