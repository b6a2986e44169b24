"""The Evidence step: report, manifest, hash-chain link, drill record, lease release, completion event.

The manifest lists every artifact under the drill's prefix with its SHA-256, and the digest of the previous
manifest of the same service; the chain head in DynamoDB moves with a condition, so two drills finishing
together still form one chain (the loser re-links onto the winner and tries again).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from livefire.assessment import Assessment
from livefire.contracts import EvidenceRequest, EvidenceResult, Verdict
from livefire.errors import EvidenceError
from livefire.evidence.manifest import build_manifest, manifest_bytes, manifest_digest
from livefire.evidence.report import render_markdown
from livefire.runtime import Runtime

MANIFEST = "manifest.json"
CHAIN_ATTEMPTS = 8


def _artifacts(runtime: Runtime, prefix: str) -> dict[str, bytes]:
    s3 = runtime.s3
    found: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=runtime.settings.bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            name = obj["Key"][len(prefix):]
            if name != MANIFEST:
                found[name] = s3.get_object(Bucket=runtime.settings.bucket, Key=obj["Key"])["Body"].read()
    return found


def _verdict(request: EvidenceRequest) -> Verdict:
    if request.outcome == "COMPLETED":
        if request.assessment is None:
            raise EvidenceError("outcome COMPLETED needs an assessment")
        return request.assessment.verdict
    return request.outcome  # NOT_STEADY, ERROR, ABORTED: the drill ended without a judgement


def publish_evidence(request: EvidenceRequest, runtime: Runtime) -> EvidenceResult:
    plan = request.plan
    prefix = plan.evidence_prefix
    store = runtime.store
    spec = runtime.spec(plan.spec_key)
    verdict = _verdict(request)
    faults = [record.model_dump(mode="json") for record in store.faults_of(plan.drill_id)]
    runtime.put_json(f"{prefix}faults/records.json", faults)
    assessment = (
        Assessment.model_validate(runtime.get_json(request.assessment.assessment_key))
        if request.assessment is not None else None
    )
    error = f"{request.error.error}: {request.error.cause}" if request.error is not None else None
    report = render_markdown(spec, assessment, outcome=request.outcome, faults=faults, error=error,
                             drill_id=plan.drill_id, execution_arn=plan.execution_arn)
    runtime.s3.put_object(Bucket=runtime.settings.bucket, Key=f"{prefix}report.md", Body=report.encode(),
                          ContentType="text/markdown; charset=utf-8")
    artifacts = _artifacts(runtime, prefix)
    rto = request.assessment.rto_seconds if request.assessment is not None else None

    digest = ""
    for _attempt in range(CHAIN_ATTEMPTS):
        previous = store.chain_head(plan.service)
        manifest = build_manifest(
            artifacts, drill_id=plan.drill_id, service=plan.service, pattern=plan.pattern, verdict=verdict,
            spec_digest=plan.spec_digest, execution_arn=plan.execution_arn, previous_manifest_digest=previous,
            created_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        )
        body = manifest_bytes(manifest)
        digest = manifest_digest(body)
        runtime.s3.put_object(Bucket=runtime.settings.bucket, Key=f"{prefix}{MANIFEST}", Body=body,
                              ContentType="application/json", Metadata={"manifest-sha256": digest})
        if store.advance_chain(plan.service, previous, digest, plan.drill_id):
            break
    else:
        raise EvidenceError(f"could not link the manifest into the {plan.service} chain")

    store.finish_drill(plan.drill_id, status=request.outcome, verdict=verdict, rtoSeconds=rto,
                       manifestDigest=digest, manifestKey=f"{prefix}{MANIFEST}", reportKey=f"{prefix}report.md")
    for fault in plan.faults:
        store.release_lease(fault.lease_key, plan.drill_id)
    _announce(runtime, plan.drill_id, plan.service, plan.pattern, verdict, rto, f"{prefix}report.md")
    return EvidenceResult(drill_id=plan.drill_id, verdict=verdict, rto_seconds=rto,
                          manifest_key=f"{prefix}{MANIFEST}", manifest_digest=digest,
                          report_key=f"{prefix}report.md")


def _announce(runtime: Runtime, drill_id: str, service: str, pattern: str, verdict: str, rto: float | None,
              report_key: str) -> None:
    detail: dict[str, Any] = {
        "drillId": drill_id, "service": service, "pattern": pattern, "verdict": verdict, "rtoSeconds": rto,
        "report": f"s3://{runtime.settings.bucket}/{report_key}",
    }
    runtime.events.put_events(Entries=[{
        "Source": "livefire", "DetailType": "Drill Completed", "Detail": json.dumps(detail),
        "EventBusName": runtime.settings.event_bus,
    }])
