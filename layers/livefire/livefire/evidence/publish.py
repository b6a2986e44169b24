"""The Evidence step: reports, manifest, hash-chain link, drill record, lease release, completion event, metrics.

The manifest lists every artifact under the drill's prefix with its SHA-256, and the digest (and drill id) of
the previous manifest of the same service; the chain head in DynamoDB moves with a condition, so two drills
finishing together still form one chain (the loser re-links onto the winner and tries again).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from livefire.assessment import Assessment
from livefire.contracts import EvidenceRequest, EvidenceResult, Plan, Sample, Verdict
from livefire.cost import drill_cost, execution_history
from livefire.errors import EvidenceError
from livefire.evidence.chain import MANIFEST_DIGEST_METADATA
from livefire.evidence.html import ReportContext, render_html
from livefire.evidence.manifest import MANIFEST_NAME, build_manifest, manifest_bytes, manifest_digest
from livefire.evidence.report import render_markdown
from livefire.probing.chunks import decode_chunk
from livefire.runtime import Runtime
from livefire.spec import DrillSpec

REPORT_MD, REPORT_HTML, POSTURE, COST = "report.md", "report.html", "posture.json", "cost.json"
CHAIN_ATTEMPTS = 8
# Memory of the functions that differ from the template's Globals (512 MB); tests/unit/test_template.py keeps
# this in step with template.yaml.
FUNCTION_MEMORY_MB = {"AssessFunction": 1024}
DEFAULT_METRICS_NAMESPACE = "Livefire"


def _artifacts(runtime: Runtime, prefix: str) -> dict[str, bytes]:
    s3 = runtime.s3
    found: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=runtime.settings.bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            name = obj["Key"][len(prefix):]
            if name != MANIFEST_NAME:
                found[name] = s3.get_object(Bucket=runtime.settings.bucket, Key=obj["Key"])["Body"].read()
    return found


def _verdict(request: EvidenceRequest) -> Verdict:
    if request.outcome == "COMPLETED":
        if request.assessment is None:
            raise EvidenceError("outcome COMPLETED needs an assessment")
        return request.assessment.verdict
    return request.outcome  # NOT_STEADY, ERROR, ABORTED: the drill ended without a judgement


def _json_artifacts(artifacts: Mapping[str, bytes], folder: str) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for name, data in artifacts.items():
        if name.startswith(folder) and name.endswith(".json"):
            try:
                parsed[name] = json.loads(data)
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue  # the raw file is still in the evidence; the report just cannot diff it
    return parsed


def _samples(artifacts: Mapping[str, bytes]) -> list[Sample]:
    samples: list[Sample] = []
    for name, data in sorted(artifacts.items()):
        if name.startswith("samples/") and name.endswith(".jsonl.gz"):
            try:
                samples.extend(decode_chunk(data))
            except (OSError, ValueError):
                continue  # an unreadable chunk is left out of the chart, not out of the evidence
    return samples


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


def audit_mesh(spec: DrillSpec, snapshots: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """Read-only posture audit of every region's cluster; None when no region names a cluster. A fault outside
    the mesh names no namespace and host to audit: every region is listed as skipped, with the reason."""
    target = spec.fault.target
    if target is None:
        reason = (f"fault kind {spec.fault.kind} touches no mesh object, so there is no namespace and host to "
                  "audit; the posture audit was skipped")
        return [{"region": region.name, "cluster": region.cluster.key if region.cluster else "no cluster",
                 "namespace": "-", "host": "-", "findings": [], "skipped": reason} for region in spec.regions]
    regions = [(region, region.cluster) for region in spec.regions if region.cluster is not None]
    if not regions:
        return None
    from livefire.mesh.kube import api_client_for  # the kubernetes client is only loaded when there is a mesh
    from livefire.mesh.posture import audit_posture

    namespace, host = target.namespace, _service_host(spec, snapshots)
    audits = []
    for region, cluster in regions:
        audit: dict[str, Any] = {"region": region.name, "cluster": cluster.key, "namespace": namespace,
                                 "host": host, "findings": [], "skipped": None}
        try:
            findings = audit_posture(api_client_for(cluster, region=region.name), namespace, host)
            audit["findings"] = [finding.model_dump() for finding in findings]
        except Exception as exc:  # the audit only adds to the evidence: it must never stop it being saved
            audit["skipped"] = f"{type(exc).__name__}: {exc}"[:500]
        audits.append(audit)
    return audits


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
    """Idempotent: a retried step whose manifest is already linked into the chain writes no evidence again."""
    plan = request.plan
    prefix = plan.evidence_prefix
    store = runtime.store
    verdict = _verdict(request)
    assessment = (
        Assessment.model_validate(runtime.get_json(request.assessment.assessment_key))
        if request.assessment is not None else None
    )
    digest = store.linked_manifest(plan.drill_id) or _write_evidence(request, runtime, verdict, assessment)
    rto = request.assessment.rto_seconds if request.assessment is not None else None
    store.finish_drill(plan.drill_id, status=request.outcome, verdict=verdict, rtoSeconds=rto,
                       manifestDigest=digest, manifestKey=f"{prefix}{MANIFEST_NAME}",
                       reportKey=f"{prefix}{REPORT_HTML}", markdownReportKey=f"{prefix}{REPORT_MD}")
    for fault in plan.faults:
        store.release_lease(fault.lease_key, plan.drill_id)
    _announce(runtime, plan, verdict, rto, digest)
    _emit_metrics(plan, verdict, rto, entrypoint_availability(assessment))
    return EvidenceResult(drill_id=plan.drill_id, verdict=verdict, rto_seconds=rto,
                          manifest_key=f"{prefix}{MANIFEST_NAME}", manifest_digest=digest,
                          report_key=f"{prefix}{REPORT_HTML}")


def _write_evidence(request: EvidenceRequest, runtime: Runtime, verdict: str, assessment: Assessment | None) -> str:
    """Fault records, posture, both reports and the manifest, linked into the chain; the manifest's digest."""
    plan = request.plan
    prefix = plan.evidence_prefix
    spec = runtime.spec(plan)
    faults = [record.model_dump(mode="json") for record in runtime.store.faults_of(plan.drill_id)]
    runtime.put_json(f"{prefix}faults/records.json", faults)
    artifacts = _artifacts(runtime, prefix)
    snapshots = _json_artifacts(artifacts, "faults/")
    posture = audit_mesh(spec, snapshots)
    if posture is not None:
        artifacts[POSTURE] = runtime.put_json(f"{prefix}{POSTURE}", posture)
    cost = _price(runtime, plan)
    if cost is not None:
        artifacts[COST] = runtime.put_json(f"{prefix}{COST}", cost)
    error = f"{request.error.error}: {request.error.cause}" if request.error is not None else None
    markdown = render_markdown(
        spec, assessment, outcome=request.outcome, faults=faults, error=error, drill_id=plan.drill_id,
        execution_arn=plan.execution_arn, extra_artifacts=[REPORT_HTML], posture=posture, cost=cost,
    ).encode()
    listed: dict[str, int | None] = {name: len(data) for name, data in artifacts.items()}
    listed |= {REPORT_MD: len(markdown), REPORT_HTML: None, MANIFEST_NAME: None}
    html = render_html(ReportContext(
        spec=spec, assessment=assessment, outcome=request.outcome, drill_id=plan.drill_id,
        execution_arn=plan.execution_arn, faults=faults, snapshots=snapshots, samples=_samples(artifacts),
        posture=posture, cost=cost, error=error, artifacts=listed,
    )).encode()
    for name, body, content_type in ((REPORT_MD, markdown, "text/markdown; charset=utf-8"),
                                     (REPORT_HTML, html, "text/html; charset=utf-8")):
        runtime.s3.put_object(Bucket=runtime.settings.bucket, Key=f"{prefix}{name}", Body=body,
                              ContentType=content_type)
        artifacts[name] = body
    return _link_into_chain(runtime, plan, verdict, artifacts)


def _price(runtime: Runtime, plan: Plan) -> dict[str, Any] | None:
    """What the drill cost so far (state transitions and Lambda GB-s at list prices), from its execution history.

    The Evidence step runs inside the execution, so its own task and the final states are not priced yet; the
    note in the document says so. Pricing is informative: an unreadable history leaves the cost out, never the
    evidence."""
    try:
        history = execution_history(runtime.sfn, plan.execution_arn)
    except (ClientError, BotoCoreError):
        return None
    report = drill_cost(history, memory_mb=FUNCTION_MEMORY_MB).to_report()
    report["note"] = f"{report['note']} Priced at the Evidence step: the last states are not included."
    return report


def _link_into_chain(runtime: Runtime, plan: Plan, verdict: str, artifacts: Mapping[str, bytes]) -> str:
    """Write the manifest linked to the service's chain head and move the head to it; its digest."""
    store = runtime.store
    for _attempt in range(CHAIN_ATTEMPTS):
        head = store.chain_head(plan.service)
        manifest = build_manifest(
            artifacts, drill_id=plan.drill_id, service=plan.service, pattern=plan.pattern, verdict=verdict,
            spec_digest=plan.spec_digest, execution_arn=plan.execution_arn,
            previous_manifest_digest=head.digest if head else None,
            previous_drill_id=head.drill_id if head else None,
            created_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        )
        body = manifest_bytes(manifest)
        digest = manifest_digest(body)
        key = f"{plan.evidence_prefix}{MANIFEST_NAME}"
        runtime.s3.put_object(Bucket=runtime.settings.bucket, Key=key, Body=body, ContentType="application/json",
                              Metadata={MANIFEST_DIGEST_METADATA: digest})
        if store.advance_chain(plan.service, head.digest if head else None, digest, plan.drill_id, key):
            return digest
    raise EvidenceError(f"could not link the manifest into the {plan.service} chain")


def _announce(runtime: Runtime, plan: Plan, verdict: str, rto: float | None, digest: str) -> None:
    evidence = f"s3://{runtime.settings.bucket}/{plan.evidence_prefix}"
    detail: dict[str, Any] = {
        "drillId": plan.drill_id, "executionArn": plan.execution_arn, "service": plan.service,
        "pattern": plan.pattern, "verdict": verdict, "rtoSeconds": rto,
        "report": f"{evidence}{REPORT_HTML}", "reportMarkdown": f"{evidence}{REPORT_MD}", "evidence": evidence,
        "manifestDigest": digest,
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
