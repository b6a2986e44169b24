"""A synthetic drill with known ground truth, for the evidence tests: spec, plan, samples, assessment, fault
record and snapshots. The primary ``east`` fails from +0 s to +4 s after the injection; the entrypoint fails
over to ``west`` at +0.8 s and back to ``east`` at +5 s (one second after the rollback)."""

from __future__ import annotations

import copy
from typing import Any

from livefire.artifacts import evidence_prefix
from livefire.assessment import Assessment, assess
from livefire.assessment.chart import TimelineChart, chart_gap_ms, timeline_chart
from livefire.assessment.columns import SampleColumns
from livefire.contracts import Plan, PlannedFault, ProbeTarget, Sample
from livefire.evidence.bundle import EvidenceBundle
from livefire.spec import ClusterRef, DrillSpec, Vantage, parse_spec
from livefire.store import FaultRecord

T0 = 1_700_000_000_000.0
SERVICE = "payments"
FAULT_ID = "f-1"
SPEC_DOCUMENT: dict[str, Any] = {
    "apiVersion": "livefire/v1",
    "kind": "Drill",
    "metadata": {"name": "payments-ap", "service": SERVICE},
    "pattern": "active-passive",
    "regions": [
        {"name": "east", "role": "primary", "cluster": {"sandbox": "e"}, "endpoint": "http://east/healthz"},
        {"name": "west", "role": "standby", "cluster": {"sandbox": "w"}, "endpoint": "http://west/healthz"},
    ],
    "entrypoint": "http://entry/healthz",
    "fault": {
        "kind": "http-abort",
        "region": "east",
        "target": {"namespace": "payments", "virtualService": "payments"},
        "abort": {"httpStatus": 503},
    },
    "phases": {"fault": "4s", "recovery": "4s"},
    "probes": {"interval": "100ms", "sustain": "500ms"},
    "objectives": {"rto": "2s", "availability": 50},
    "guardrails": {"allowedNamespaces": ["payments"]},
}
BEFORE: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "payments", "namespace": "payments", "resourceVersion": "7", "generation": 1},
    "spec": {"hosts": ["payments"], "http": [{"name": "primary", "route": [{"destination": {"host": "payments"}}]}]},
}


def drill_spec() -> DrillSpec:
    return parse_spec(SPEC_DOCUMENT)


def prefix(drill_id: str) -> str:
    return evidence_prefix(SERVICE, drill_id)


def planned_fault() -> PlannedFault:
    return PlannedFault(
        fault_id=FAULT_ID, kind="http-abort", region="east", cluster=ClusterRef(sandbox="e"), namespace="payments",
        object_kind="VirtualService", object_name="payments", lease_key="sandbox:e/payments/VirtualService/payments",
    )


def drill_plan(drill_id: str, *, t0: float = T0) -> Plan:
    spec = drill_spec()
    return Plan(
        drill_id=drill_id, execution_arn=f"arn:aws:states:us-east-1:123456789012:execution:drill:{drill_id}",
        service=SERVICE, pattern="active-passive", mode="live", spec_key=f"{prefix(drill_id)}spec.json",
        spec_digest=spec.digest(), evidence_prefix=prefix(drill_id), started_at_ms=int(t0),
        vantages=[Vantage(name="local", region="east")],
        targets=[
            ProbeTarget(name="entry", url=spec.entrypoint, role="entrypoint"),
            ProbeTarget(name="east", url="http://east/healthz", region="east", role="primary"),
            ProbeTarget(name="west", url="http://west/healthz", region="west", role="standby"),
        ],
        faults=[planned_fault()], baseline_seconds=1.0, observe_seconds=8.0, lead_wait_seconds=0,
        fault_wait_seconds=4,
    )


def drill_samples(t0: float = T0) -> list[Sample]:
    def probe(target: str, at: int, served: str | None) -> Sample:
        return Sample(
            target=target, vantage="local", seq=at // 100, scheduled_ms=t0 + at, sent_ms=t0 + at,
            ended_ms=t0 + at + 5, ok=served is not None, status=200 if served else 503,
            latency_ms=5.0 + (at % 700) / 100, served_by=served, version="v1",
        )

    out = []
    for at in range(0, 9000, 100):
        faulted = 1000 <= at < 5000
        out.append(probe("east", at, None if faulted else "east"))
        out.append(probe("west", at, "west"))
        entry = "east" if at < 1100 or at >= 6000 else ("west" if at >= 1800 else None)
        out.append(probe("entry", at, entry))
    return out


def drill_assessment(drill_id: str, *, t0: float = T0) -> Assessment:
    keys = [f"{prefix(drill_id)}samples/local/drill-0000.jsonl.gz"]
    return assess(drill_spec(), drill_plan(drill_id, t0=t0), SampleColumns.of(drill_samples(t0)),
                  injected_at_ms=t0 + 1000, restored_at_ms=t0 + 5000, sample_keys=keys)


def chart_of(samples: list[Sample]) -> TimelineChart | None:
    """The timeline chart Assess bins from these samples (timeline.json)."""
    return timeline_chart([SampleColumns.of(samples)], chart_gap_ms(drill_spec().probes.interval))


def snapshots() -> dict[str, dict[str, Any]]:
    """faults/<id>-{before,after,restored}.json: the injection added an abort; the rollback removed it."""
    after = copy.deepcopy(BEFORE)
    after["metadata"]["resourceVersion"] = "8"
    after["metadata"]["annotations"] = {"livefire.dev/drill-id": "d-x"}
    after["spec"]["http"][0]["fault"] = {"abort": {"httpStatus": 503, "percentage": {"value": 100}}}
    restored = copy.deepcopy(BEFORE)
    restored["metadata"]["resourceVersion"] = "9"
    return {f"faults/{FAULT_ID}-before.json": BEFORE, f"faults/{FAULT_ID}-after.json": after,
            f"faults/{FAULT_ID}-restored.json": restored}


def fault_record(drill_id: str, *, t0: float = T0) -> FaultRecord:
    return FaultRecord(
        drill_id=drill_id, fault_id=FAULT_ID, status="RESTORED", planned=planned_fault(),
        snapshot_key=f"{prefix(drill_id)}faults/{FAULT_ID}-before.json", expires_at=int(t0 / 1000) + 600,
        injected_at_ms=int(t0 + 1000), restored_at_ms=int(t0 + 5000), detail="restored to the snapshot",
    )


def evidence_bundle(drill_id: str, **overrides: Any) -> EvidenceBundle:
    """The bundle the Evidence step builds for this drill (sizes made up), with ``overrides`` applied."""
    bundle = EvidenceBundle(
        spec=drill_spec(), assessment=drill_assessment(drill_id), outcome="COMPLETED", drill_id=drill_id,
        execution_arn=f"arn:aws:states:us-east-1:123456789012:execution:drill:{drill_id}",
        faults=[fault_record(drill_id)], documents=snapshots(), timeline=chart_of(drill_samples()),
        artifacts={"spec.json": 10, "plan.json": 12, "assessment.json": 20, f"faults/{FAULT_ID}-before.json": 30,
                   "samples/local/drill-0000.jsonl.gz": 40, "report.md": None, "report.html": None,
                   "manifest.json": None},
    )
    return bundle.model_copy(update=overrides)
