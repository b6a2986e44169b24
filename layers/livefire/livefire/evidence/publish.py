"""The Evidence step: reports, sealed manifest, drill record, lease release, completion event, metrics.

The fault records, the mesh posture and the cost join the artifacts the other steps wrote; one evidence bundle
is rendered as report.md and report.html; ``livefire.evidence.seal`` links the manifest into the service's
chain, writes it once and signs it (docs/architecture.md §8).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import boto3
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from livefire.approval import APPROVAL_ARTIFACT, ApprovalEvidence, approval_evidence
from livefire.assessment import Assessment, with_posture
from livefire.assessment.chart import CHART_NAME, TimelineChart, chart_gap_ms, timeline_chart
from livefire.assessment.columns import SampleColumns
from livefire.contracts import EvidenceRequest, EvidenceResult, Plan, Verdict
from livefire.cost import CostReport, drill_cost, execution_history
from livefire.errors import EvidenceError
from livefire.evidence.bundle import EvidenceBundle, PostureAudit, PostureCheck, ReachedTarget
from livefire.evidence.controls import controls_evidenced, load_mapping
from livefire.evidence.html import render_html
from livefire.evidence.manifest import MANIFEST_NAME, ChainLink
from livefire.evidence.report import render_markdown
from livefire.evidence.seal import (
    FAULT_RECORDS,
    REPORT_HTML,
    REPORT_MD,
    seal_into_chain,
    stored_artifacts,
    write_seal,
)
from livefire.evidence.signature import SIGNATURE_NAME
from livefire.evidence.summary import publish_summary, summary_topic
from livefire.faults.refusal import refusal_lines, verdict_with_refusals
from livefire.probing.chunks import decode_rows
from livefire.records import ManifestSeal
from livefire.redaction import redact_url
from livefire.runtime import Runtime
from livefire.spec import DrillSpec, Posture

POSTURE, COST = "posture.json", "cost.json"
# Memory of the functions that differ from the template's Globals (512 MB); tests/unit/test_template.py keeps
# this in step with template.yaml.
FUNCTION_MEMORY_MB = {"AssessFunction": 1769}
DEFAULT_METRICS_NAMESPACE = "Livefire"


def _verdict(request: EvidenceRequest) -> Verdict:
    if request.outcome == "COMPLETED":
        if request.assessment is None:
            raise EvidenceError("outcome COMPLETED needs an assessment")
        return request.assessment.verdict
    return request.outcome  # NOT_STEADY, CANCELLED, ERROR, ABORTED: the drill ended without a judgement


def _error_text(request: EvidenceRequest, gate: ApprovalEvidence | None) -> str | None:
    """'<error>: <cause>' of a drill that ended unjudged; a CANCELLED drill's names who decided at its go/no-go gate,
    or that nobody did in time."""
    if request.error is None:
        return None
    told = gate.line() if gate is not None and request.outcome == "CANCELLED" else request.error.cause
    return f"{request.error.error}: {told}"


def _json_artifacts(artifacts: Mapping[str, bytes], folder: str) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for name, data in artifacts.items():
        if name.startswith(folder) and name.endswith(".json"):
            try:
                parsed[name] = json.loads(data)
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue  # the raw file is still in the evidence; the report just cannot diff it
    return parsed


def _chart(artifacts: Mapping[str, bytes], spec: DrillSpec) -> TimelineChart | None:
    """The probes' timeline chart: timeline.json as Assess binned it; for a drill that ended before Assess ran,
    binned here from the sample chunks (their bytes are read for the manifest anyway)."""
    if CHART_NAME in artifacts:
        return TimelineChart.model_validate_json(artifacts[CHART_NAME])
    samples = SampleColumns()
    for name, data in sorted(artifacts.items()):
        if name.startswith("samples/") and name.endswith(".jsonl.gz"):
            try:
                samples.add_rows(decode_rows(data))
            except (OSError, ValueError):
                continue  # an unreadable chunk is left out of the chart, not out of the evidence
    return timeline_chart([samples], chart_gap_ms(spec.probes.interval))


def _service_host(spec: DrillSpec, snapshots: Mapping[str, Any]) -> str:
    """The host the DestinationRule must match: the first route destination of a faulted VirtualService."""
    for snapshot in snapshots.values():
        if isinstance(snapshot, dict) and snapshot.get("kind") == "VirtualService":
            for route in (snapshot.get("spec") or {}).get("http") or []:
                for destination in route.get("route") or []:
                    host = (destination.get("destination") or {}).get("host")
                    if host:
                        return str(host)
    target = spec.fault.target
    return (target.virtual_service or target.deployment if target else None) or spec.metadata.service


def audit_mesh(spec: DrillSpec, snapshots: Mapping[str, Any]) -> list[PostureAudit] | None:
    """Read-only posture audit of every region's cluster; None when no region names a cluster. A fault outside
    the mesh names no namespace and host to audit: every region is listed as skipped, with the reason."""
    target = spec.fault.target
    if target is None:
        reason = (f"fault kind {spec.fault.kind} touches no mesh object, so there is no namespace and host to "
                  "audit; the posture audit was skipped")
        return [PostureAudit(region=region.name, cluster=region.cluster.key if region.cluster else "no cluster",
                             namespace="-", host="-", skipped=reason) for region in spec.regions]
    regions = [(region, region.cluster) for region in spec.regions if region.cluster is not None]
    if not regions:
        return None
    from livefire.mesh.kube import api_client_for  # the kubernetes client is only loaded when there is a mesh
    from livefire.mesh.posture import audit_posture

    namespace, host = target.namespace, _service_host(spec, snapshots)
    audits = []
    for region, cluster in regions:
        audit = PostureAudit(region=region.name, cluster=cluster.key, namespace=namespace, host=host)
        try:
            findings = audit_posture(api_client_for(cluster), namespace, host,
                                     root_namespace=(spec.posture or Posture()).root_namespace)
            audit.findings = [PostureCheck.model_validate(finding.model_dump()) for finding in findings]
        except Exception as exc:  # the audit only adds to the evidence: it must never stop it being saved
            audit.skipped = f"{type(exc).__name__}: {exc}"[:500]
        audits.append(audit)
    return audits


def reached_targets(plan: Plan, spec: DrillSpec) -> list[ReachedTarget]:
    """Every probed target and webhook URL, real or sandbox as Plan marked them."""
    targets = [ReachedTarget(target=t.name, url=redact_url(t.url), reach=t.reach) for t in plan.targets]
    webhook = spec.fault.webhook
    hooks = [fault for fault in plan.faults if fault.object_kind == "Webhook"]
    if webhook is not None and hooks:
        targets += [ReachedTarget(target=f"webhook {action}", url=redact_url(call.url), reach=hooks[0].reach)
                    for action, call in (("inject", webhook.inject), ("rollback", webhook.rollback))]
    return targets


def entrypoint_availability(assessment: Assessment | None) -> float | None:
    """Availability at the entrypoint from the injection to the end, for the worst vantage (percent)."""
    if assessment is None or assessment.entrypoint is None:
        return None
    totals: dict[str, list[int]] = {}
    for stats in assessment.stats:
        if stats.target == assessment.entrypoint and stats.phase in ("fault", "recovery"):
            sent_ok = totals.setdefault(stats.vantage, [0, 0])
            sent_ok[0] += stats.sent
            sent_ok[1] += stats.ok
    measured = [100.0 * ok / sent for sent, ok in totals.values() if sent]
    return min(measured) if measured else None


def publish_evidence(request: EvidenceRequest, runtime: Runtime) -> EvidenceResult:
    """Idempotent: a retried step whose drill is already sealed into the chain writes no evidence again, only
    what is missing of its manifest and signature."""
    plan = request.plan
    prefix = plan.evidence_prefix
    store = runtime.store
    assessment = (
        Assessment.model_validate(runtime.get_json(request.assessment.assessment_key))
        if request.assessment is not None else None
    )
    # assessment.json holds the final verdict once the required posture is folded in (a retried step reads it)
    verdict = assessment.verdict if assessment is not None and request.outcome == "COMPLETED" else _verdict(request)
    faults = store.faults_of(plan.drill_id)
    verdict = verdict_with_refusals(verdict, faults)  # RESTORE_REFUSED: a fault may still be live
    record = store.get_drill(plan.drill_id)
    if record is not None and record.seal is not None:
        seal, body = record.seal, None
    else:
        seal, body, verdict = _write_evidence(request, runtime, verdict, assessment)
    write_seal(runtime, plan, verdict, seal, body)
    rto = request.assessment.rto_seconds if request.assessment is not None else None
    store.finish_drill(plan.drill_id, status=request.outcome, verdict=verdict, rto_seconds=rto,
                       outage_observed=request.assessment.outage_observed if request.assessment else None,
                       report_key=f"{prefix}{REPORT_HTML}", markdown_report_key=f"{prefix}{REPORT_MD}")
    # every lease Plan took: the service's (recorded on the drill) and each fault's object's
    held = set(record.lease_keys if record is not None else []) | {fault.lease_key for fault in plan.faults}
    for lease_key in sorted(held):
        store.release_lease(lease_key, plan.drill_id)
    _announce(runtime, plan, verdict, rto, seal.manifest_digest, refusal_lines(faults))
    topic = summary_topic()
    if topic:  # the stakeholders' short summary (evidence/summary.py), in the topic's own region
        final = (Assessment.model_validate(runtime.get_json(request.assessment.assessment_key))
                 if request.assessment is not None else None)  # as judged with the posture, recommendations too
        publish_summary(boto3.client("sns", region_name=topic.split(":")[3]), topic, plan, verdict, final,
                        f"s3://{runtime.settings.bucket}/{prefix}{REPORT_HTML}")
    _emit_metrics(plan, verdict, rto, entrypoint_availability(assessment))
    return EvidenceResult(drill_id=plan.drill_id, verdict=verdict, rto_seconds=rto,
                          manifest_key=seal.manifest_key, manifest_digest=seal.manifest_digest,
                          report_key=f"{prefix}{REPORT_HTML}")


def _write_evidence(request: EvidenceRequest, runtime: Runtime, verdict: Verdict,
                    assessment: Assessment | None) -> tuple[ManifestSeal, bytes | None, Verdict]:
    """Fault records, posture, cost and both reports, sealed into the chain; the seal, the sealed manifest and the
    verdict (the posture the spec requires is judged on the audit: assessment.json is rewritten with it)."""
    plan = request.plan
    prefix = plan.evidence_prefix
    spec = runtime.spec(plan)
    faults = runtime.store.faults_of(plan.drill_id)
    runtime.put_json(f"{prefix}{FAULT_RECORDS}", [record.model_dump(mode="json") for record in faults])
    gate = approval_evidence(runtime.store.get_drill(plan.drill_id), request.error.error if request.error else None)
    if gate is not None:  # who decided at the go/no-go gate, and when (livefire/approval.py)
        runtime.put_json(f"{prefix}{APPROVAL_ARTIFACT}", gate.to_state())
    artifacts = stored_artifacts(runtime, prefix)
    documents = _json_artifacts(artifacts, "faults/")
    posture = audit_mesh(spec, documents)
    if posture is not None:
        artifacts[POSTURE] = runtime.put_json(f"{prefix}{POSTURE}", [audit.model_dump() for audit in posture])
    if assessment is not None and request.assessment is not None:
        judged = with_posture(assessment, spec, None if posture is None else [a.model_dump() for a in posture])
        if judged is not assessment:
            assessment, verdict = judged, verdict_with_refusals(judged.verdict, faults)
            key = request.assessment.assessment_key
            artifacts[key.removeprefix(prefix)] = runtime.put_json(key, judged.model_dump(mode="json"))
    cost = _price(runtime, plan)
    if cost is not None:
        artifacts[COST] = runtime.put_json(f"{prefix}{COST}", cost.model_dump(mode="json"))
    listed: dict[str, int | None] = {name: len(data) for name, data in artifacts.items()}
    bundle = EvidenceBundle(
        spec=spec, assessment=assessment, outcome=request.outcome, drill_id=plan.drill_id,
        execution_arn=plan.execution_arn, faults=faults, documents=documents, timeline=_chart(artifacts, spec),
        targets=reached_targets(plan, spec), posture=posture, cost=cost,
        error=_error_text(request, gate),
        artifacts=listed | {REPORT_MD: None, REPORT_HTML: None, MANIFEST_NAME: None, SIGNATURE_NAME: None},
        signing_key=runtime.signer.key, controls=controls_evidenced(load_mapping(runtime.s3), assessment),
    )

    def render(link: ChainLink) -> dict[str, bytes]:
        linked = bundle.model_copy(update={"chain": link})
        markdown = render_markdown(linked).encode()
        html = render_html(linked.model_copy(update={"artifacts": linked.artifacts | {REPORT_MD: len(markdown)}}))
        reports = {REPORT_MD: markdown, REPORT_HTML: html.encode()}
        for name, content_type in ((REPORT_MD, "text/markdown; charset=utf-8"),
                                   (REPORT_HTML, "text/html; charset=utf-8")):
            runtime.s3.put_object(Bucket=runtime.settings.bucket, Key=f"{prefix}{name}", Body=reports[name],
                                  ContentType=content_type)
        return reports

    return (*seal_into_chain(runtime, plan, verdict, artifacts, render), verdict)


def _price(runtime: Runtime, plan: Plan) -> CostReport | None:
    """What the drill cost so far (state transitions and Lambda GB-s at list prices), from its execution history.

    The Evidence step runs inside the execution, so its own task and the final states are not priced yet; the
    note in the document says so. Pricing is informative: an unreadable history leaves the cost out, never the
    evidence."""
    try:
        history = execution_history(runtime.sfn, plan.execution_arn)
    except (ClientError, BotoCoreError):
        return None
    report = drill_cost(history, memory_mb=FUNCTION_MEMORY_MB).to_report()
    return report.model_copy(
        update={"note": f"{report.note} Priced at the Evidence step: the last states are not included."})


def _announce(runtime: Runtime, plan: Plan, verdict: str, rto: float | None, digest: str,
              refusals: list[str]) -> None:
    evidence = f"s3://{runtime.settings.bucket}/{plan.evidence_prefix}"
    detail: dict[str, Any] = {
        "drillId": plan.drill_id, "executionArn": plan.execution_arn, "service": plan.service,
        "pattern": plan.pattern, "verdict": verdict, "rtoSeconds": rto,
        "report": f"{evidence}{REPORT_HTML}", "reportMarkdown": f"{evidence}{REPORT_MD}", "evidence": evidence,
        "manifestDigest": digest, "restoreRefused": refusals,
    }
    runtime.events.put_events(Entries=[{
        "Source": "livefire", "DetailType": "Drill Completed", "Detail": json.dumps(detail),
        "EventBusName": runtime.settings.event_bus,
    }])


def _emit_metrics(plan: Plan, verdict: str, rto: float | None, availability: float | None) -> None:
    """CloudWatch EMF on stdout: RTO and availability per service and pattern, and a count per verdict."""
    metrics = EphemeralMetrics(
        namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_METRICS_NAMESPACE, service=plan.service,
    )
    if rto is not None or availability is not None:
        metrics.add_dimension(name="pattern", value=plan.pattern)
        if rto is not None:
            metrics.add_metric(name="RTO", unit=MetricUnit.Seconds, value=rto)
        if availability is not None:
            metrics.add_metric(name="Availability", unit=MetricUnit.Percent, value=availability)
        metrics.flush_metrics()
    metrics.add_dimension(name="pattern", value=plan.pattern)
    metrics.add_dimension(name="verdict", value=verdict)
    metrics.add_metric(name="Drills", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
