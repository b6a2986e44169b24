"""Sealing a drill's evidence: its manifest joins the service's chain, is written once, and is signed.

Order matters, because the manifest and its signature are written create-only (``If-None-Match: *``; the
Evidence role may not write them otherwise, template.yaml) and must never be rewritten:
1. read the chain head and build the manifest linked to it (sequence, previous digest), the reports with it;
2. move the head and write the seal on the drill's record in one DynamoDB transaction; another drill moving the
   head first sends us back to 1 (the reports, not yet sealed, are rewritten with the new link);
3. write manifest.json, then sign its digest with the KMS key and write signature.json.
A step retried after 2 finds the seal on its record and only does what is missing of 3: the manifest is rebuilt
from the artifacts in the bucket and the seal's link and time, and must come out with the sealed digest.
(docs/architecture.md §8.)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from livefire.contracts import Plan
from livefire.errors import EvidenceError
from livefire.evidence.manifest import (
    ASSESSMENT_NAME,
    MANIFEST_NAME,
    NOT_ARTIFACTS,
    ChainLink,
    build_manifest,
    manifest_bytes,
    manifest_digest,
)
from livefire.evidence.signature import SIGNATURE_NAME, sign_manifest
from livefire.records import ManifestSeal
from livefire.runtime import Runtime

MANIFEST_DIGEST_METADATA = "manifest-sha256"
CHAIN_ATTEMPTS = 8
REPORT_MD, REPORT_HTML, FAULT_RECORDS = "report.md", "report.html", "faults/records.json"
# What every drill's evidence holds, whatever its outcome.
ALWAYS_REQUIRED = ("spec.json", "plan.json", FAULT_RECORDS, REPORT_MD, REPORT_HTML)

RenderReports = Callable[[ChainLink], dict[str, bytes]]  # writes both reports for this link; name → bytes


def stored_artifacts(runtime: Runtime, prefix: str) -> dict[str, bytes]:
    """Every object under the drill's prefix but the manifest and its signature, by relative name."""
    s3, bucket = runtime.s3, runtime.settings.bucket
    found: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            name = obj["Key"][len(prefix):]
            if name not in NOT_ARTIFACTS:
                found[name] = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return found


def required_artifacts(artifacts: Mapping[str, bytes], prefix: str) -> list[str]:
    """What must exist for the drill's outcome: the fixed files, each fault's first document, and for a judged
    drill assessment.json, every sample chunk it counted and the raw telemetry answers it judged. Derived from the
    artifacts alone, so a retried step derives the same list."""
    names = list(ALWAYS_REQUIRED)
    records = json.loads(artifacts[FAULT_RECORDS])
    names += [str(r["snapshot_key"]).removeprefix(prefix) for r in records if r.get("snapshot_key")]
    if ASSESSMENT_NAME in artifacts:
        assessment = json.loads(artifacts[ASSESSMENT_NAME])
        names += [ASSESSMENT_NAME, *(str(key).removeprefix(prefix) for key in assessment.get("sample_keys", []))]
        names += [str(key).removeprefix(prefix) for key in (assessment.get("telemetry") or {}).get("query_keys", [])]
    return names


def _manifest(runtime: Runtime, plan: Plan, verdict: str, artifacts: Mapping[str, bytes], link: ChainLink,
              created_at: str) -> bytes:
    manifest = build_manifest(
        artifacts, drill_id=plan.drill_id, service=plan.service, pattern=plan.pattern, verdict=verdict,
        spec_digest=plan.spec_digest, execution_arn=plan.execution_arn, link=link,
        signing_key=runtime.signer.key, required=required_artifacts(artifacts, plan.evidence_prefix),
        created_at=created_at,
    )
    return manifest_bytes(manifest)


def seal_into_chain(runtime: Runtime, plan: Plan, verdict: str, artifacts: Mapping[str, bytes],
                    render: RenderReports) -> tuple[ManifestSeal, bytes | None]:
    """Link the drill into its service's chain (steps 1 and 2); the seal, and the manifest when this call built
    the sealed one (None: a concurrent run of the step sealed the drill first)."""
    store = runtime.store
    for _attempt in range(CHAIN_ATTEMPTS):
        head = store.chain_head(plan.service)
        link = ChainLink(sequence=head.sequence + 1, previous_manifest_digest=head.digest,
                         previous_drill_id=head.drill_id) if head else ChainLink(sequence=1)
        created_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        body = _manifest(runtime, plan, verdict, {**artifacts, **render(link)}, link, created_at)
        seal = ManifestSeal(manifest_digest=manifest_digest(body), manifest_created_at=created_at,
                            manifest_key=f"{plan.evidence_prefix}{MANIFEST_NAME}", **link.model_dump())
        if store.advance_chain(plan.service, head, plan.drill_id, seal):
            return seal, body
        record = store.get_drill(plan.drill_id)
        if record is not None and record.seal is not None:
            return record.seal, None
    raise EvidenceError(f"could not link the manifest into the {plan.service} chain")


def _exists(runtime: Runtime, key: str) -> bool:
    try:
        runtime.s3.head_object(Bucket=runtime.settings.bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def _put_once(runtime: Runtime, key: str, body: bytes, **extra: Any) -> None:
    """Create the object; one already there (a concurrent retry wrote it) is left as it is."""
    try:
        runtime.s3.put_object(Bucket=runtime.settings.bucket, Key=key, Body=body, IfNoneMatch="*",
                              ContentType="application/json", **extra)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412"):
            raise


def write_seal(runtime: Runtime, plan: Plan, verdict: str, seal: ManifestSeal, body: bytes | None) -> None:
    """Step 3: write manifest.json (rebuilt when this call has not got it) and signature.json, each only once."""
    prefix = plan.evidence_prefix
    if not _exists(runtime, seal.manifest_key):
        if body is None:
            link = ChainLink(sequence=seal.sequence, previous_manifest_digest=seal.previous_manifest_digest,
                             previous_drill_id=seal.previous_drill_id)
            body = _manifest(runtime, plan, verdict, stored_artifacts(runtime, prefix), link,
                             seal.manifest_created_at)
        if manifest_digest(body) != seal.manifest_digest:
            raise EvidenceError(f"the evidence of {plan.drill_id} changed after it was sealed: its manifest no longer "
                                f"has the sealed digest {seal.manifest_digest}")
        _put_once(runtime, seal.manifest_key, body, Metadata={MANIFEST_DIGEST_METADATA: seal.manifest_digest})
    signature_key = f"{prefix}{SIGNATURE_NAME}"
    if not _exists(runtime, signature_key):
        _put_once(runtime, signature_key, sign_manifest(runtime.signer, seal.manifest_digest).to_bytes())
