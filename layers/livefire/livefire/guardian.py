"""The guardian: the last line of defence that no drill, however it ended, leaves a fault or a lease behind.

Two triggers. The state machine's FAILED / TIMED_OUT / ABORTED status-change event (EventBridge): restore every
fault of that drill (fencing planned faults that have no record yet), release its leases, mark its record. And a
sweep schedule, for when everything else failed (the guardian included): every fault not yet restored whose
expiry passed, or whose execution is known to have ended, is restored; every lease past its expiry, or whose
execution ended, is released. A drill whose execution is still running and not expired is never touched.

Failures are loud: a restore the guardian could not complete raises GuardianRestoreFailed once the rest is done
(leases released, records marked), so Lambda's async retries run it again and a last failure lands in the
dead-letter queue behind GuardianFailedAlarm. A drill the guardian ends (its Evidence step never ran) gets a
``Drill Completed`` event, like one the workflow ends; a refused restore makes its verdict RESTORE_REFUSED
(docs/architecture.md §9).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import ValidationError

from livefire.artifacts import evidence_prefix
from livefire.contracts import Contract, Plan, PlannedFault
from livefire.errors import GuardianRestoreFailed
from livefire.faults.lifecycle import RollbackOutcome, restore_drill
from livefire.faults.refusal import refusal_lines, verdict_with_refusals
from livefire.runtime import Runtime
from livefire.store import DrillRecord, FaultRecord

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


def execution_status(sfn: Any, execution_arn: str) -> str | None:
    """The execution's status, or None when it cannot be read (then only expiry counts)."""
    try:
        status: str = sfn.describe_execution(executionArn=execution_arn)["status"]
    except ClientError:
        return None
    return status


def guard(event: GuardianEvent, runtime: Runtime, *, now: float | None = None,
          status_of: ExecutionStatusOf | None = None) -> GuardianReport:
    """``now`` (epoch seconds) and ``status_of`` are the sweeper's clock and its view of executions (by default
    the runtime's Step Functions client). Raises GuardianRestoreFailed, after doing everything else it can, when a
    fault could not be restored."""
    if event.trigger == "sweep":
        status = status_of or (lambda arn: execution_status(runtime.sfn, arn))
        report, failed = _sweep(runtime, int(time.time() if now is None else now), status)
    else:
        report, failed = _after_execution(event, runtime)
    if failed:
        raise GuardianRestoreFailed(f"{report.trigger}: {len(failed)} fault(s) could not be restored and may still "
                                    f"be live: {'; '.join(failed)}"[:4000])
    return report


def _planned_faults(record: DrillRecord | None, drill_id: str, runtime: Runtime) -> list[PlannedFault]:
    """The drill's planned faults from its plan.json, so faults not yet recorded get fenced."""
    if record is None or not record.service:
        return []  # no drill record: the Plan never finished, so nothing was injected
    key = f"{evidence_prefix(record.service, drill_id)}plan.json"
    try:
        return Plan.model_validate(runtime.get_json(key)).faults
    except (ClientError, ValidationError, ValueError):
        return []


def _after_execution(event: GuardianEvent, runtime: Runtime) -> tuple[GuardianReport, list[str]]:
    store = runtime.store
    drill_id = event.drill_id
    assert drill_id is not None and event.execution_status is not None
    record = store.get_drill(drill_id)
    owner = record.execution_arn if record is not None else None
    if owner and event.execution_arn and owner != event.execution_arn:
        report = GuardianReport(trigger=event.trigger, drills=[drill_id], faults_restored=0, leases_released=0,
                                conflicts=[], failures=[f"{drill_id}: the drill record belongs to {owner}; untouched"])
        return report, []
    # Fence the planned faults only when a task may still be in flight: the workflow's own cleanup did not finish
    # (stopped, timed out, or it died before its Evidence step). Otherwise its EmergencyRollback fenced already.
    running = record is not None and record.status == "RUNNING"
    unfinished = event.execution_status in ("ABORTED", "TIMED_OUT") or running
    planned = _planned_faults(record, drill_id, runtime) if unfinished else []
    outcome = restore_drill(drill_id, runtime, planned=planned, actor="guardian")
    lease_keys = set(record.lease_keys if record is not None else [])
    lease_keys |= {lease.lease_key for lease in store.leases_held_by(drill_id)}  # a Plan that died before its record
    released = sum(store.release_lease(key, drill_id) for key in sorted(lease_keys))
    if record is not None:
        # A drill whose Evidence step never ran is still RUNNING: say how it ended, and announce it.
        verdict = _verdict(record, event.execution_status, runtime) if running else None
        store.mark_guarded(
            drill_id, execution_status=event.execution_status, execution_error=event.error,
            guarded_at_ms=int(time.time() * 1000), restored=outcome.restored, released=released,
            failures="; ".join(outcome.failures)[:2000] or None,
            status=f"EXECUTION_{event.execution_status}" if running else None,
            verdict=verdict,
        )
        if verdict is not None:
            _announce_end(runtime, record, event.execution_status, verdict, outcome)
    report = GuardianReport(trigger=event.trigger, drills=[drill_id], faults_restored=outcome.restored,
                            leases_released=released, conflicts=outcome.conflicts, failures=outcome.failures)
    return report, outcome.failures


def _verdict(record: DrillRecord, execution_status: str, runtime: Runtime) -> str:
    """The verdict of a drill the guardian ends: how its execution ended, or RESTORE_REFUSED."""
    ended = record.verdict or _VERDICT_OF.get(execution_status, "ERROR")
    return verdict_with_refusals(ended, runtime.store.faults_of(record.drill_id))


def _announce_end(runtime: Runtime, record: DrillRecord, execution_status: str, verdict: str,
                  outcome: RollbackOutcome) -> None:
    """The ``Drill Completed`` event of a drill the guardian ended (its Evidence step never ran)."""
    faults = runtime.store.faults_of(record.drill_id)
    prefix = evidence_prefix(record.service, record.drill_id) if record.service else None
    detail: dict[str, Any] = {
        "drillId": record.drill_id, "executionArn": record.execution_arn, "service": record.service,
        "pattern": record.pattern, "verdict": verdict,
        "outcome": f"EXECUTION_{execution_status}", "endedBy": "guardian", "faultsRestored": outcome.restored,
        "restoreRefused": refusal_lines(faults),
        "evidence": f"s3://{runtime.settings.bucket}/{prefix}" if prefix else None,
    }
    runtime.events.put_events(Entries=[{
        "Source": "livefire", "DetailType": "Drill Completed", "Detail": json.dumps(detail),
        "EventBusName": runtime.settings.event_bus,
    }])


def _ended(execution_arn: str | None, status_of: ExecutionStatusOf) -> bool:
    return execution_arn is not None and status_of(execution_arn) in ENDED


def _sweep(runtime: Runtime, now: int, status_of: ExecutionStatusOf) -> tuple[GuardianReport, list[str]]:
    store = runtime.store
    by_drill: dict[str, list[FaultRecord]] = {}
    for fault in store.active_faults():
        by_drill.setdefault(fault.drill_id, []).append(fault)
    swept: list[str] = []
    restored = 0
    conflicts: list[str] = []
    failures: list[str] = []
    for drill_id, faults in sorted(by_drill.items()):
        record = store.get_drill(drill_id)
        execution_arn = record.execution_arn if record is not None else None
        if not any(f.expires_at < now for f in faults) and not _ended(execution_arn, status_of):
            continue  # a live drill inside its window: not ours to touch
        swept.append(drill_id)
        outcome = restore_drill(drill_id, runtime, actor="sweeper")
        restored += outcome.restored
        conflicts += outcome.conflicts
        failures += [f"{drill_id}: {failure}" for failure in outcome.failures]
        if record is not None:
            store.mark_swept(drill_id, swept_at_ms=int(time.time() * 1000), restored=outcome.restored)
    released = 0
    for lease in store.active_leases():
        if lease.expires_at < now:
            released += store.release_expired_lease(lease, now)
            continue
        holder = store.get_drill(lease.holder) if lease.execution_arn is None else None
        execution_arn = lease.execution_arn or (holder.execution_arn if holder is not None else None)
        if _ended(execution_arn, status_of):
            released += store.release_lease(lease.lease_key, lease.holder)
            if lease.holder not in swept:
                swept.append(lease.holder)
    report = GuardianReport(trigger="sweep", drills=swept, faults_restored=restored, leases_released=released,
                            conflicts=conflicts, failures=failures)
    return report, failures
