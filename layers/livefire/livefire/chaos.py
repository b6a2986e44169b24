"""Inject and roll back a drill's faults, with write-ahead records so no ending can leave one behind.

Inject: snapshot the object to S3 → fault record PENDING (DynamoDB) → patch with a resourceVersion
precondition → record INJECTED with the time. Rollback (also the emergency path and the guardian): restore
every fault of the drill not yet RESTORED, from its snapshot, and verify.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from livefire.artifacts import snapshot_key
from livefire.contracts import FaultState, InjectRequest, InjectResult, Plan, PlannedFault, RollbackResult
from livefire.errors import RollbackFailed
from livefire.mesh.faults import apply_fault, read_target, restore_fault
from livefire.mesh.kube import api_client_for
from livefire.runtime import Runtime
from livefire.store import FaultRecord

# A fault left behind by a drill that lost all its guards is swept this long after its window ends.
EXPIRY_MARGIN_S = 10 * 60


def _now_ms() -> int:
    return int(time.time() * 1000)


def _state(record: FaultRecord) -> FaultState:
    return FaultState(
        fault_id=record.fault_id, status=record.status, injected_at_ms=record.injected_at_ms,
        restored_at_ms=record.restored_at_ms, snapshot_key=record.snapshot_key, detail=record.detail,
    )


def _api(planned: PlannedFault) -> Any:
    return api_client_for(planned.cluster, region=planned.region)


def inject_faults(request: InjectRequest, runtime: Runtime) -> InjectResult:
    plan = request.plan
    spec = runtime.spec(plan.spec_key)
    store = runtime.store
    existing = {record.fault_id: record for record in store.faults_of(plan.drill_id)}
    states: list[FaultState] = []
    for planned in plan.faults:
        record = existing.get(planned.fault_id)
        if record is not None and record.status != "PENDING":
            states.append(_state(record))  # a retried or duplicated Inject never applies twice
            continue
        states.append(_inject_one(plan, planned, record, runtime, spec.phases.fault))
    return InjectResult(faults=states)


def _inject_one(plan: Plan, planned: PlannedFault, record: FaultRecord | None, runtime: Runtime,
                fault_seconds: float) -> FaultState:
    store = runtime.store
    spec = runtime.spec(plan.spec_key)
    api = _api(planned)
    before_key = snapshot_key(plan.evidence_prefix, planned.fault_id, "before")
    expires_at = int(time.time() + fault_seconds + EXPIRY_MARGIN_S)
    if record is None:
        before = read_target(api, planned)
        runtime.put_json(before_key, before)
        store.put_fault_pending(plan.drill_id, planned, before_key, expires_at)
    else:
        before = runtime.get_json(record.snapshot_key)  # the original, not what a half-done attempt left
    if plan.mode == "dry-run":
        store.mark_fault(plan.drill_id, planned.fault_id, "SKIPPED", detail="dry-run: nothing was patched")
        return FaultState(fault_id=planned.fault_id, status="SKIPPED", snapshot_key=before_key,
                          detail="dry-run: nothing was patched")
    after = apply_fault(api, planned, spec.fault, drill_id=plan.drill_id,
                        expires_at=datetime.fromtimestamp(expires_at, UTC), before=before)
    injected_at_ms = _now_ms()
    runtime.put_json(snapshot_key(plan.evidence_prefix, planned.fault_id, "after"), after)
    store.mark_fault(plan.drill_id, planned.fault_id, "INJECTED", injectedAtMs=injected_at_ms)
    return FaultState(fault_id=planned.fault_id, status="INJECTED", injected_at_ms=injected_at_ms,
                      snapshot_key=before_key)


def rollback_drill(drill_id: str, runtime: Runtime) -> RollbackResult:
    """Restore every fault of the drill that is not RESTORED. Idempotent; safe from any path."""
    store = runtime.store
    states: list[FaultState] = []
    failures: list[str] = []
    for record in store.faults_of(drill_id):
        if record.status in ("RESTORED", "SKIPPED", "CONFLICT"):
            states.append(_state(record))
            continue
        try:
            states.append(_restore_one(record, runtime))
        except (RollbackFailed, ClientError, OSError) as exc:
            failures.append(f"{record.fault_id}: {exc}")
            store.mark_fault(drill_id, record.fault_id, "FAILED", detail=str(exc)[:1000])
        except Exception as exc:  # the mesh may answer anything; keep restoring the other faults
            failures.append(f"{record.fault_id}: {type(exc).__name__}: {exc}")
            store.mark_fault(drill_id, record.fault_id, "FAILED", detail=f"{type(exc).__name__}: {exc}"[:1000])
    if failures:
        raise RollbackFailed("; ".join(failures))
    return RollbackResult(faults=states)


def _restore_one(record: FaultRecord, runtime: Runtime) -> FaultState:
    store = runtime.store
    before = runtime.get_json(record.snapshot_key)
    outcome = restore_fault(_api(record.planned), record.planned, before, drill_id=record.drill_id)
    restored_key = record.snapshot_key.replace("-before.json", "-restored.json")
    runtime.put_json(restored_key, outcome.current)
    if outcome.status == "CONFLICT":
        store.mark_fault(record.drill_id, record.fault_id, "CONFLICT", detail=outcome.detail[:1000])
        return FaultState(fault_id=record.fault_id, status="CONFLICT", injected_at_ms=record.injected_at_ms,
                          snapshot_key=record.snapshot_key, detail=outcome.detail)
    restored_at_ms = _now_ms()
    store.mark_fault(record.drill_id, record.fault_id, "RESTORED", restoredAtMs=restored_at_ms,
                     detail=outcome.detail[:1000])
    return FaultState(fault_id=record.fault_id, status="RESTORED", injected_at_ms=record.injected_at_ms,
                      restored_at_ms=restored_at_ms, snapshot_key=record.snapshot_key, detail=outcome.detail)
