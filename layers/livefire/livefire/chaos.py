"""Inject and roll back a drill's faults, with write-ahead records so no ending can leave one behind.

Inject: snapshot the object to S3 → fault record PENDING (DynamoDB) → patch with a resourceVersion
precondition → record INJECTED with the time, but only if the record is still PENDING. Rollback (also the
emergency path, the guardian and the sweeper): restore every fault of the drill not yet RESTORED, from its
snapshot, and verify; a planned fault with no record yet is *fenced* (a SKIPPED record), so an Inject still in
flight can no longer start it. An Inject whose record was taken by a rollback while it patched undoes its own
write at once. Between the two, every patch is either visible to every later rollback or undone.

Faults outside the mesh follow the same discipline (livefire/external/): an FIS experiment (``fis``) or a
webhook (``webhook``); their document takes the snapshot's place. An ``external`` drill plans no fault at all.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from botocore.exceptions import ClientError

from livefire.artifacts import snapshot_key
from livefire.contracts import (
    FaultState,
    InjectRequest,
    InjectResult,
    Plan,
    PlannedFault,
    RollbackRequest,
    RollbackResult,
)
from livefire.errors import FaultInjectionFailed, RollbackFailed
from livefire.external import fis, webhook
from livefire.runtime import Runtime
from livefire.spec import DrillSpec
from livefire.store import FaultRecord

# A fault left behind by a drill that lost all its guards is swept this long after its window ends.
EXPIRY_MARGIN_S = 10 * 60
DRY_RUN_DETAIL = "dry run: nothing was patched"
_DONE = ("RESTORED", "SKIPPED", "CONFLICT")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _state(record: FaultRecord) -> FaultState:
    return FaultState(
        fault_id=record.fault_id, status=record.status, injected_at_ms=record.injected_at_ms,
        restored_at_ms=record.restored_at_ms, snapshot_key=record.snapshot_key or None, detail=record.detail,
    )


def _mesh_faults() -> ModuleType:
    """The mesh modules load the kubernetes client (~190 ms at import): only mesh faults need it, so FIS,
    webhook and observe-only drills, and a guardian sweep with nothing to restore, never pay for it."""
    from livefire.mesh import faults

    return faults


def _api(planned: PlannedFault) -> Any:
    if planned.cluster is None:
        raise FaultInjectionFailed(f"{planned.fault_id}: a {planned.kind} fault has no cluster")
    from livefire.mesh.kube import api_client_for

    return api_client_for(planned.cluster, region=planned.region)


# What starts and ends each fault outside the mesh: (its document before anything starts, inject, restore).
_OUTSIDE_MESH = {
    "fis": (fis.new_document, fis.inject, fis.restore),
    "webhook": (webhook.new_document, webhook.inject, webhook.restore),
}


# ---------------------------------------------------------------- inject


def inject_faults(request: InjectRequest, runtime: Runtime) -> InjectResult:
    plan = request.plan
    spec = runtime.spec(plan)
    existing = {record.fault_id: record for record in runtime.store.faults_of(plan.drill_id)}
    states: list[FaultState] = []
    for planned in plan.faults:
        record = existing.get(planned.fault_id)
        if record is not None and record.status != "PENDING":
            states.append(_state(record))  # a retried or duplicated Inject never applies twice; a fence holds
            continue
        states.append(_inject_one(plan, planned, record, runtime, spec))
    return InjectResult(faults=states)


def _inject_one(plan: Plan, planned: PlannedFault, record: FaultRecord | None, runtime: Runtime,
                spec: DrillSpec) -> FaultState:
    if planned.kind in _OUTSIDE_MESH:
        return _inject_outside_mesh(plan, planned, record, runtime, spec)
    store = runtime.store
    api = _api(planned)
    if record is None:
        before = _mesh_faults().read_target(api, planned)
        before_key = snapshot_key(plan.evidence_prefix, planned.fault_id, "before")
        runtime.put_json(before_key, before)
        expires_at = int(time.time() + spec.phases.fault + EXPIRY_MARGIN_S)
        written = store.put_fault_pending(plan.drill_id, planned, before_key, expires_at)
        record = store.fault(plan.drill_id, planned.fault_id)
        if record is None:
            raise FaultInjectionFailed(f"{planned.fault_id}: its fault record vanished; nothing was patched")
        if not written:  # a rollback fenced it, or a concurrent Inject got there first: that one patches
            return _state(record)
    else:
        before = runtime.get_json(record.snapshot_key)  # the original, not what a half-done attempt left
    if plan.mode == "dry-run":
        store.mark_fault(plan.drill_id, planned.fault_id, "SKIPPED", expect="PENDING", detail=DRY_RUN_DETAIL)
        return FaultState(fault_id=planned.fault_id, status="SKIPPED", snapshot_key=record.snapshot_key,
                          detail=DRY_RUN_DETAIL)
    after = _mesh_faults().apply_fault(api, planned, spec.fault, drill_id=plan.drill_id,
                        expires_at=datetime.fromtimestamp(record.expires_at, UTC), before=before)
    injected_at_ms = _now_ms()
    runtime.put_json(snapshot_key(plan.evidence_prefix, planned.fault_id, "after"), after)
    if not store.mark_fault(plan.drill_id, planned.fault_id, "INJECTED", expect="PENDING",
                            injectedAtMs=injected_at_ms):
        _undo_late_injection(record, before, runtime)
    return FaultState(fault_id=planned.fault_id, status="INJECTED", injected_at_ms=injected_at_ms,
                      snapshot_key=record.snapshot_key)


def _inject_outside_mesh(plan: Plan, planned: PlannedFault, record: FaultRecord | None, runtime: Runtime,
                         spec: DrillSpec) -> FaultState:
    new_document, inject, _restore = _OUTSIDE_MESH[planned.kind]
    store = runtime.store
    if record is None:
        key = snapshot_key(plan.evidence_prefix, planned.fault_id, planned.kind)
        runtime.put_json(key, new_document(plan.drill_id, planned, spec.fault))
        expires_at = int(time.time() + spec.phases.fault + EXPIRY_MARGIN_S)
        written = store.put_fault_pending(plan.drill_id, planned, key, expires_at)
        record = store.fault(plan.drill_id, planned.fault_id)
        if record is None:
            raise FaultInjectionFailed(f"{planned.fault_id}: its fault record vanished; nothing was started")
        if not written:
            return _state(record)
    if plan.mode == "dry-run":
        detail = "dry run: nothing was started"
        store.mark_fault(plan.drill_id, planned.fault_id, "SKIPPED", expect="PENDING", detail=detail)
        return FaultState(fault_id=planned.fault_id, status="SKIPPED", snapshot_key=record.snapshot_key, detail=detail)
    return inject(record, runtime)


def _undo_late_injection(record: FaultRecord, before: dict[str, Any], runtime: Runtime) -> None:
    """A rollback closed the record while our patch was in flight: put the object back ourselves."""
    store = runtime.store
    late = f"{record.fault_id}: the drill was rolled back while the fault was being applied"
    try:
        outcome = _mesh_faults().restore_fault(_api(record.planned), record.planned, before, drill_id=record.drill_id)
    except Exception as exc:  # the fault is live and nothing else will see it: back into the sweeper's index
        store.reopen_fault(record, f"{late}; undoing it failed: {type(exc).__name__}: {exc}")
        raise RollbackFailed(f"{late}; undoing it failed: {exc}") from None
    if outcome.status == "CONFLICT":
        store.reopen_fault(record, f"{late}; {outcome.detail}")
        raise RollbackFailed(f"{late}; {outcome.detail}")
    current = store.fault(record.drill_id, record.fault_id)
    if current is None or current.status != "RESTORED":
        store.mark_fault(record.drill_id, record.fault_id, "RESTORED", restoredAtMs=_now_ms(),
                         restoredBy="inject", detail=f"{late}; the write was undone")
    raise FaultInjectionFailed(f"{late}; the write was undone")


# ---------------------------------------------------------------- rollback


@dataclass(frozen=True)
class RollbackOutcome:
    states: list[FaultState]
    restored: int  # objects this call actually wrote back (not those already equal to their snapshot)
    conflicts: list[str]  # faults left for a human: the object was changed by someone else meanwhile
    failures: list[str]


def rollback_faults(request: RollbackRequest, runtime: Runtime) -> RollbackResult:
    """The Rollback / EmergencyRollback step."""
    actor = "emergency-rollback" if request.emergency else "rollback"
    return rollback_drill(request.plan.drill_id, runtime, planned=request.plan.faults, actor=actor)


def rollback_drill(drill_id: str, runtime: Runtime, *, planned: Sequence[PlannedFault] = (),
                   actor: str = "rollback") -> RollbackResult:
    """Restore every fault of the drill that is not RESTORED. Idempotent; safe from any path."""
    outcome = restore_drill(drill_id, runtime, planned=planned, actor=actor)
    if outcome.failures:
        raise RollbackFailed("; ".join(outcome.failures))
    return RollbackResult(faults=outcome.states)


def restore_drill(drill_id: str, runtime: Runtime, *, planned: Sequence[PlannedFault] = (),
                  actor: str) -> RollbackOutcome:
    """Like ``rollback_drill`` but reports failures instead of raising (the guardian's view)."""
    store = runtime.store
    known = {record.fault_id for record in store.faults_of(drill_id)}
    for fault in planned:
        if fault.fault_id not in known:
            store.fence_fault(drill_id, fault, actor)  # False: an Inject wrote its record first; restored below
    states: list[FaultState] = []
    failures: list[str] = []
    conflicts: list[str] = []
    restored = 0
    for record in store.faults_of(drill_id):
        if record.status in _DONE:
            states.append(_state(record))
            if record.status == "CONFLICT":
                conflicts.append(f"{drill_id}/{record.fault_id}: {record.detail}")
            continue
        try:
            state, wrote = _restore_one(record, runtime, actor)
        except (RollbackFailed, ClientError, OSError) as exc:
            detail = str(exc)
        except Exception as exc:  # the mesh may answer anything; keep restoring the other faults
            detail = f"{type(exc).__name__}: {exc}"
        else:
            states.append(state)
            restored += wrote
            if state.status == "CONFLICT":
                conflicts.append(f"{drill_id}/{record.fault_id}: {state.detail}")
            continue
        failures.append(f"{record.fault_id}: {detail}")
        store.mark_fault(drill_id, record.fault_id, "FAILED", detail=detail[:1000])
    return RollbackOutcome(states=states, restored=restored, conflicts=conflicts, failures=failures)


def _restore_one(record: FaultRecord, runtime: Runtime, actor: str) -> tuple[FaultState, bool]:
    if record.planned.kind in _OUTSIDE_MESH:
        _new, _inject, restore = _OUTSIDE_MESH[record.planned.kind]
        return restore(record, runtime, actor)
    store = runtime.store
    before = runtime.get_json(record.snapshot_key)
    outcome = _mesh_faults().restore_fault(_api(record.planned), record.planned, before, drill_id=record.drill_id)
    restored_key = record.snapshot_key.replace("-before.json", "-restored.json")
    runtime.put_json(restored_key, outcome.current)
    if outcome.status == "CONFLICT":
        store.mark_fault(record.drill_id, record.fault_id, "CONFLICT", detail=outcome.detail[:1000])
        state = FaultState(fault_id=record.fault_id, status="CONFLICT", injected_at_ms=record.injected_at_ms,
                           snapshot_key=record.snapshot_key, detail=outcome.detail)
        return state, False
    restored_at_ms = _now_ms()
    store.mark_fault(record.drill_id, record.fault_id, "RESTORED", restoredAtMs=restored_at_ms,
                     restoredBy=actor, detail=outcome.detail[:1000])
    state = FaultState(fault_id=record.fault_id, status="RESTORED", injected_at_ms=record.injected_at_ms,
                       restored_at_ms=restored_at_ms, snapshot_key=record.snapshot_key, detail=outcome.detail)
    return state, outcome.status == "RESTORED"
