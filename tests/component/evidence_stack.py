"""The evidence bucket and drill table (built from template.yaml) under moto, and drills staged in them the way
the workflow leaves them for the Evidence step: spec, plan, samples, assessment, snapshots and fault records."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from moto import mock_aws

from livefire.artifacts import snapshot_key
from livefire.config import Settings
from livefire.contracts import AssessSummary, EvidenceRequest, Plan
from livefire.egress import EgressPolicy
from livefire.evidence.publish import publish_evidence
from livefire.mesh.kube import SANDBOX_CLUSTERS_ENV
from livefire.probing.chunks import encode_chunk
from livefire.runtime import Runtime
from livefire.store import DrillStore
from livefire_local.aws import create_bucket, create_signing_keys, create_table
from livefire_local.template import LocalTemplate
from tests.conftest import ROOT
from tests.evidence_data import (
    FAULT_ID,
    T0,
    drill_assessment,
    drill_plan,
    drill_samples,
    drill_spec,
    planned_fault,
    snapshots,
)

REGION = "us-east-1"


@dataclass
class EvidenceStack:
    runtime: Runtime
    bucket: str
    table: str

    @property
    def s3(self) -> Any:
        return self.runtime.s3

    @property
    def store(self) -> DrillStore:
        return self.runtime.store

    def stage(self, drill_id: str, *, t0: float = T0, assessed: bool = True) -> EvidenceRequest:
        """Everything the steps before Evidence write for one drill (the fault injected and restored)."""
        plan: Plan = drill_plan(drill_id, t0=t0)
        runtime, store, prefix = self.runtime, self.store, plan.evidence_prefix
        store.create_drill(drill_id=drill_id, execution_arn=plan.execution_arn, service=plan.service,
                           pattern=plan.pattern, mode=plan.mode, spec_digest=plan.spec_digest,
                           started_at_ms=int(t0), lease_keys=[f.lease_key for f in plan.faults])
        store.acquire_lease(planned_fault().lease_key, drill_id, int(time.time()) + 600)
        runtime.put_json(plan.spec_key, drill_spec().to_document())
        runtime.put_json(f"{prefix}plan.json", plan.to_state())
        for name, snapshot in snapshots().items():
            runtime.put_json(f"{prefix}{name}", snapshot)
        store.put_fault_pending(drill_id, planned_fault(), snapshot_key=snapshot_key(prefix, FAULT_ID, "before"),
                                expires_at=int(t0 / 1000) + 600, pending_at_ms=int(t0 + 900))
        store.mark_fault(drill_id, FAULT_ID, "INJECTED", injected_at_ms=int(t0 + 1000),
                         injection_answered_at_ms=int(t0 + 1010))
        store.mark_fault(drill_id, FAULT_ID, "RESTORED", restore_requested_at_ms=int(t0 + 4990),
                         restored_at_ms=int(t0 + 5000), detail="restored")
        self.s3.put_object(Bucket=self.bucket, Key=f"{prefix}samples/local/drill-0000.jsonl.gz",
                           Body=encode_chunk(drill_samples(t0)), ContentType="application/x-ndjson")
        if not assessed:
            return EvidenceRequest(plan=plan, outcome="NOT_STEADY")
        assessment = drill_assessment(drill_id, t0=t0)
        key = f"{prefix}assessment.json"
        runtime.put_json(key, assessment.model_dump(mode="json"))
        failed = sum(1 for f in assessment.findings if f.status == "FAIL")
        summary = AssessSummary(verdict=assessment.verdict, rto_seconds=assessment.rto_seconds, assessment_key=key,
                                findings=len(assessment.findings), failed_findings=failed)
        return EvidenceRequest(plan=plan, outcome="COMPLETED", assessment=summary)

    def publish(self, drill_id: str, *, t0: float = T0, assessed: bool = True) -> str:
        """Stage and publish one drill; the digest of its manifest."""
        return publish_evidence(self.stage(drill_id, t0=t0, assessed=assessed), self.runtime).manifest_digest


@pytest.fixture
def evidence_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[EvidenceStack]:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION,
                       "POWERTOOLS_METRICS_NAMESPACE": "Livefire"}.items():
        monkeypatch.setenv(key, value)
    for key in ("POWERTOOLS_METRICS_DISABLED", SANDBOX_CLUSTERS_ENV, "EVIDENCE_BUCKET", "DRILL_TABLE"):
        monkeypatch.delenv(key, raising=False)
    with mock_aws():
        template = LocalTemplate.load(ROOT, REGION)
        bucket = create_bucket(template, "EvidenceBucket")  # versioned, Object Lock GOVERNANCE, as deployed
        table = create_table(template, "DrillTable")
        create_signing_keys(template)  # backed by the local signing key (tests/keys.py)
        settings = Settings(bucket=bucket, table=table, event_bus="default", allowed_namespaces=(),
                            allowed_clusters=(), egress=EgressPolicy.from_ranges("loopback"),
                            signing_key_id=template.arn_of("EvidenceSigningKey"))
        yield EvidenceStack(Runtime(settings=settings), bucket, table)
