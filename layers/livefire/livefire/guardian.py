"""The guardian: the last line of defence that no drill, however it ended, leaves a fault or a lease behind.

Two triggers. The state machine's FAILED / TIMED_OUT / ABORTED status-change event (EventBridge): restore every
fault of that drill (fencing planned faults that have no record yet), release its leases, mark its record. And a
sweep schedule, for when everything else failed (the guardian included): every fault not yet restored whose
expiry passed, or whose execution is known to have ended, is restored; every lease past its expiry, or whose
execution ended, is released. A drill whose execution is still running and not expired is never touched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache
from typing import Any, Literal

import boto3
from botocore.exceptions import ClientError
from pydantic import ValidationError

from livefire.artifacts import evidence_prefix
from livefire.chaos import restore_drill
from livefire.contracts import Contract, Plan, PlannedFault
from livefire.runtime import Runtime
from livefire.store import FaultRecord

STATUS_CHANGE = "Step Functions Execution Status Change"
ENDED = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
# What the guardian writes as the verdict of a drill whose Evidence step never ran.
_VERDICT_OF = {"ABORTED": "ABORTED", "TIMED_OUT": "ERROR", "FAILED": "ERROR"}

ExecutionStatusOf = Callable[[str], str | None]


class GuardianEvent(Contract):
    trigger: Literal["execution-ended", "sweep"]
    drill_id: str | None = None
    execution_arn: str | None = None
    execution_status: str | None = None
    error: str | None = None

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> GuardianEvent:
        if event.get("sweep") is True:
            return cls(trigger="sweep")
        if event.get("source") == "aws.states" and event.get("detail-type") == STATUS_CHANGE:
            detail = event.get("detail") or {}
            status = detail.get("status")
            if status not in ENDED:
                raise ValueError(f"execution {detail.get('name')} is {status}: the guardian only acts once it ended")
            return cls(trigger="execution-ended", drill_id=detail["name"], execution_arn=detail.get("executionArn"),
                       execution_status=status, error=detail.get("error"))
        raise ValueError("not a guardian event: expected a Step Functions status change or {'sweep': true}")


class GuardianReport(Contract):
    trigger: str
    drills: list[str]
    faults_restored: int
    leases_released: int
    conflicts: list[str]  # faults the guardian must not restore (someone else changed the object): for a human
    failures: list[str]


@cache
def _states_client() -> Any:
    return boto3.client("stepfunctions")


def execution_status(execution_arn: str) -> str | None:
    """The execution's status, or None when it cannot be read (then only expiry counts)."""
    try:
        status: str = _states_client().describe_execution(executionArn=execution_arn)["status"]
    except ClientError:
        return None
    return status


def guard(event: GuardianEvent, runtime: Runtime, *, now: float | None = None,
          status_of: ExecutionStatusOf = execution_status) -> GuardianReport:
    """``now`` (epoch seconds) and ``status_of`` are the sweeper's clock and its view of executions."""
    if event.trigger == "sweep":
        return _sweep(runtime, int(time.time() if now is None else now), status_of)
    return _after_execution(event, runtime)


def _planned_faults(record: dict[str, Any] | None, drill_id: str, runtime: Runtime) -> list[PlannedFault]:
    """The drill's planned faults from its plan.json, so faults not yet recorded get fenced."""
    if not record or not record.get("service"):
        return []  # no drill record: the Plan never finished, so nothing was injected
    key = f"{evidence_prefix(str(record['service']), drill_id)}plan.json"
    try:
        return Plan.model_validate(runtime.get_json(key)).faults
    except (ClientError, ValidationError, ValueError):
        return []


def _after_execution(event: GuardianEvent, runtime: Runtime) -> GuardianReport:
    store = runtime.store
    drill_id = event.drill_id
    assert drill_id is not None and event.execution_status is not None
    record = store.get_drill(drill_id)
    owner = (record or {}).get("executionArn")
    if owner and event.execution_arn and owner != event.execution_arn:
        return GuardianReport(trigger=event.trigger, drills=[drill_id], faults_restored=0, leases_released=0,
                              conflicts=[], failures=[f"{drill_id}: the drill record belongs to {owner}; untouched"])
    # Fence the planned faults only when a task may still be in flight: the workflow's own cleanup did not finish
    # (stopped, timed out, or it died before its Evidence step). Otherwise its EmergencyRollback fenced already.
    unfinished = event.execution_status in ("ABORTED", "TIMED_OUT") or (record or {}).get("status") == "RUNNING"
    planned = _planned_faults(record, drill_id, runtime) if unfinished else []
    outcome = restore_drill(drill_id, runtime, planned=planned, actor="guardian")
    lease_keys = set((record or {}).get("leaseKeys", []))
    lease_keys |= {lease.lease_key for lease in store.leases_held_by(drill_id)}  # a Plan that died before its record
    released = sum(store.release_lease(key, drill_id) for key in sorted(lease_keys))
    if record:
        marks: dict[str, Any] = {
            "executionStatus": event.execution_status, "executionError": event.error,
            "guardedAtMs": int(time.time() * 1000), "guardianRestored": outcome.restored,
            "guardianReleased": released,
            "guardianFailures": "; ".join(outcome.failures)[:2000] or None,
        }
        if record.get("status") == "RUNNING":  # the Evidence step never ran: say how the drill ended
            marks["status"] = f"EXECUTION_{event.execution_status}"
            marks["verdict"] = record.get("verdict") or _VERDICT_OF.get(event.execution_status, "ERROR")
        store.mark_guarded(drill_id, **marks)
    return GuardianReport(trigger=event.trigger, drills=[drill_id], faults_restored=outcome.restored,
                          leases_released=released, conflicts=outcome.conflicts, failures=outcome.failures)


def _ended(execution_arn: str | None, status_of: ExecutionStatusOf) -> bool:
    return execution_arn is not None and status_of(execution_arn) in ENDED


def _sweep(runtime: Runtime, now: int, status_of: ExecutionStatusOf) -> GuardianReport:
    store = runtime.store
    by_drill: dict[str, list[FaultRecord]] = {}
    for fault in store.active_faults():
        by_drill.setdefault(fault.drill_id, []).append(fault)
    swept: list[str] = []
    restored = 0
    conflicts: list[str] = []
    failures: list[str] = []
    for drill_id, faults in sorted(by_drill.items()):
        record = store.get_drill(drill_id) or {}
        if not any(f.expires_at < now for f in faults) and not _ended(record.get("executionArn"), status_of):
            continue  # a live drill inside its window: not ours to touch
        swept.append(drill_id)
        outcome = restore_drill(drill_id, runtime, actor="sweeper")
        restored += outcome.restored
        conflicts += outcome.conflicts
        failures += [f"{drill_id}: {failure}" for failure in outcome.failures]
        if record:
            store.mark_guarded(drill_id, sweptAtMs=int(time.time() * 1000), sweeperRestored=outcome.restored)
    released = 0
    for lease in store.active_leases():
        if lease.expires_at < now:
            released += store.release_expired_lease(lease, now)
            continue
        execution_arn = lease.execution_arn or (store.get_drill(lease.holder) or {}).get("executionArn")
        if _ended(execution_arn, status_of):
            released += store.release_lease(lease.lease_key, lease.holder)
            if lease.holder not in swept:
                swept.append(lease.holder)
    return GuardianReport(trigger="sweep", drills=swept, faults_restored=restored, leases_released=released,
                          conflicts=conflicts, failures=failures)
