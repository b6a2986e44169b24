"""The fault lifecycle: the one code that writes fault records, so no ending can leave a fault behind
(docs/architecture.md §5).

Inject: the driver describes the target → its document goes to S3 → fault record PENDING (write-ahead) → the
driver applies the fault → the record is marked INJECTED with the bracket of the write, but only if it is still
PENDING. Rollback (also the emergency path, the guardian and the sweeper): every fault of the drill not yet closed
is restored by its driver and marked RESTORED (or CONFLICT when someone else changed the target: it is left for a
person); a planned fault with no record yet is *fenced* (a SKIPPED record), so an Inject still in flight can no
longer start it. An Inject whose record a rollback closed while it applied undoes its own write at once (the late
undo). Between the two, every write is either visible to every later rollback or undone. A retried Inject never
applies twice: a record that is no longer PENDING is returned as it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

from botocore.exceptions import ClientError

from livefire.clock import now_ms
from livefire.contracts import (
    FaultState,
    FaultStatus,
    InjectRequest,
    InjectResult,
    Plan,
    PlannedFault,
    RollbackRequest,
    RollbackResult,
)
from livefire.datachecks.cleanup import is_cleanup
from livefire.errors import FaultInjectionFailed, InjectInProgress, RollbackFailed
from livefire.faults.driver import Applied, Bracket, FaultDocument, FaultDriver, FaultTarget, Fenced
from livefire.faults.drivers import driver_for
from livefire.faults.refusal import announce
from livefire.faults.write_ahead import write_ahead
from livefire.records import FaultRecord, RestoreRefusal
from livefire.runtime import Runtime
from livefire.spec import DrillSpec, Fault

# A fault left behind by a drill that lost all its guards is swept this long after its window ends.
EXPIRY_MARGIN_S = 10 * 60
CLOSED: frozenset[FaultStatus] = frozenset({"RESTORED", "SKIPPED", "CONFLICT"})
# The Chaos branch's Rollback: the observation goes on after it (the other actors run at or after the end).
DURING_THE_DRILL = "rollback"


class FaultRecords(Protocol):
    """The fault part of the drill table (``livefire.store.DrillStore``; an in-memory fake in unit tests)."""

    def put_fault_pending(self, drill_id: str, planned: PlannedFault, *, snapshot_key: str, expires_at: int,
                          pending_at_ms: int) -> bool: ...

    def fence_fault(self, drill_id: str, planned: PlannedFault, *, actor: str) -> bool: ...

    def mark_fault(self, drill_id: str, fault_id: str, status: FaultStatus, *, expect: FaultStatus | None = None,
                   injected_at_ms: int | None = None, injection_answered_at_ms: int | None = None,
                   restore_requested_at_ms: int | None = None, restored_at_ms: int | None = None,
                   restored_by: str | None = None, external_id: str | None = None, detail: str | None = None,
                   dry_run_problems: list[str] | None = None, refusal: RestoreRefusal | None = None) -> bool: ...

    def reopen_fault(self, record: FaultRecord, detail: str, *, external_id: str | None = None) -> None: ...

    def fault(self, drill_id: str, fault_id: str) -> FaultRecord | None: ...

    def faults_of(self, drill_id: str) -> list[FaultRecord]: ...


class Documents(Protocol):
    """Where fault documents live (the evidence bucket: ``Runtime``)."""

    def put_json(self, key: str, document: Any) -> object: ...

    def get_json(self, key: str) -> Any: ...


@dataclass
class RollbackOutcome:
    states: list[FaultState]
    restored: int  # targets this call actually changed back (not those already back)
    conflicts: list[str]  # faults left for a person: the target was changed by someone else meanwhile
    failures: list[str]


def state_of(record: FaultRecord) -> FaultState:
    return FaultState(
        fault_id=record.fault_id, status=record.status, injected_at_ms=record.injected_at_ms,
        injection_answered_at_ms=record.injection_answered_at_ms,
        restore_requested_at_ms=record.restore_requested_at_ms, restored_at_ms=record.restored_at_ms,
        snapshot_key=record.snapshot_key or None, detail=record.detail, dry_run_problems=record.dry_run_problems,
    )


def _sibling(key: str, name: str) -> str:
    """Another document of the same fault: ``faults/<fault-id>-before.json`` -> ``faults/<fault-id>-<name>.json``."""
    return f"{key.rpartition('-')[0]}-{name}.json"


@dataclass
class Lifecycle:
    store: FaultRecords
    documents: Documents
    drivers: Callable[[str], FaultDriver] = driver_for
    clock: Callable[[], int] = now_ms

    # ------------------------------------------------------------ inject

    def inject(self, plan: Plan, spec: DrillSpec) -> list[FaultState]:
        existing = {record.fault_id: record for record in self.store.faults_of(plan.drill_id)}
        states: list[FaultState] = []
        for planned in plan.faults:
            record = existing.get(planned.fault_id)
            if record is not None and record.status != "PENDING":
                states.append(state_of(record))  # a retried or duplicated Inject never applies twice; a fence holds
            elif plan.mode == "dry-run":
                states.append(self._dry_run(plan, planned, record, spec))
            else:
                states.append(self._inject_one(plan, planned, record, spec))
        return states

    def _expiry(self, spec: DrillSpec) -> int:
        return int(time.time() + spec.phases.fault + EXPIRY_MARGIN_S)

    def _write_ahead(self, plan: Plan, planned: PlannedFault, document: dict[str, Any] | None, name: str,
                     expires_at: int) -> tuple[FaultRecord, bool]:
        """The fault's document, then its PENDING record; (the record, whether this call wrote it)."""
        return write_ahead(self.store, self.documents, self.clock, plan, planned, document, name, expires_at)

    def _target(self, record: FaultRecord, data: dict[str, Any]) -> FaultTarget:
        return FaultTarget(drill_id=record.drill_id, planned=record.planned,
                           document=FaultDocument(record.snapshot_key, data, self.documents.put_json),
                           expires_at=record.expires_at, external_id=record.external_id,
                           injected_at_ms=record.injected_at_ms)

    def _inject_one(self, plan: Plan, planned: PlannedFault, record: FaultRecord | None,
                    spec: DrillSpec) -> FaultState:
        driver = self.drivers(planned.kind)
        if record is None:
            document = driver.describe(plan.drill_id, planned, spec.fault)
            record, written = self._write_ahead(plan, planned, document, driver.document_name, self._expiry(spec))
            if not written and record.status == "PENDING":
                raise InjectInProgress(f"{planned.fault_id}: another invocation of this Inject is applying it")
            if not written:
                return state_of(record)  # a rollback fenced it first: nothing is applied
            target = self._target(record, document)
        else:  # a retry: the original document, not what a half-done attempt left
            target = self._target(record, self.documents.get_json(record.snapshot_key))
        applied = self._apply(driver, target, spec.fault)
        if applied.after is not None:
            self.documents.put_json(_sibling(record.snapshot_key, "after"), applied.after)
        # No bracket: an earlier attempt wrote the fault, after this record was written and before now.
        bracket = applied.bracket or Bracket(record.pending_at_ms or self.clock(), self.clock())
        external_id = applied.external_id or target.external_id
        if not self.store.mark_fault(plan.drill_id, planned.fault_id, "INJECTED", expect="PENDING",
                                     injected_at_ms=bracket.sent_at_ms,
                                     injection_answered_at_ms=bracket.answered_at_ms,
                                     external_id=external_id, detail=applied.detail):
            self._undo_late(driver, target)
        return FaultState(fault_id=planned.fault_id, status="INJECTED", injected_at_ms=bracket.sent_at_ms,
                          injection_answered_at_ms=bracket.answered_at_ms, snapshot_key=record.snapshot_key,
                          detail=applied.detail)

    def _apply(self, driver: FaultDriver, target: FaultTarget, fault: Fault) -> Applied:
        def checkpoint(external_id: str) -> None:
            target.external_id = external_id
            if not self.store.mark_fault(target.drill_id, target.planned.fault_id, "PENDING", expect="PENDING",
                                         external_id=external_id):
                raise Fenced(external_id)

        try:
            return driver.apply(target, fault, checkpoint)
        except Fenced:
            self._undo_late(driver, target)
        except FaultInjectionFailed as exc:  # a definite failure: say so on the record, unless a rollback closed it
            if not self.store.mark_fault(target.drill_id, target.planned.fault_id, "FAILED", expect="PENDING",
                                         external_id=target.external_id, detail=str(exc)):
                self._undo_late(driver, target)
            raise

    def _undo_late(self, driver: FaultDriver, target: FaultTarget) -> NoReturn:
        """A rollback closed the record while the fault was being applied: undo it ourselves. Always raises."""
        planned = target.planned
        late = f"{planned.fault_id}: the drill was rolled back while {driver.in_flight(target)}"
        record = self.store.fault(target.drill_id, planned.fault_id)
        assert record is not None  # it was closed, not deleted
        try:
            restored = driver.restore(target, "inject")
        except Exception as exc:  # the fault is live and nothing else will see it: back into the sweeper's index
            why = str(exc) if isinstance(exc, RollbackFailed | FaultInjectionFailed) else f"{type(exc).__name__}: {exc}"
            self.store.reopen_fault(record, f"{late}; undoing it failed: {why}", external_id=target.external_id)
            raise RollbackFailed(f"{late}; undoing it failed: {why}") from None
        if restored.status == "CONFLICT":
            self.store.reopen_fault(record, f"{late}; {restored.detail}", external_id=target.external_id)
            raise RollbackFailed(f"{late}; {restored.detail}")
        current = self.store.fault(target.drill_id, planned.fault_id)
        if restored.wrote or current is None or current.status != "RESTORED":
            bracket = restored.bracket or Bracket(self.clock(), self.clock())
            self.store.mark_fault(target.drill_id, planned.fault_id, "RESTORED",
                                  restore_requested_at_ms=bracket.sent_at_ms, restored_at_ms=bracket.answered_at_ms,
                                  restored_by="inject", external_id=restored.external_id or target.external_id,
                                  detail=f"{late}; {restored.detail}")
        raise FaultInjectionFailed(f"{late}; undone: {restored.detail}")

    def _dry_run(self, plan: Plan, planned: PlannedFault, record: FaultRecord | None, spec: DrillSpec) -> FaultState:
        """Check that the fault would work, change nothing, and close the record SKIPPED with what was found."""
        driver = self.drivers(planned.kind)
        expires_at = self._expiry(spec)
        check = driver.verify(plan.drill_id, planned, spec.fault, expires_at)
        if record is None:
            record, written = self._write_ahead(plan, planned, check.document, driver.document_name, expires_at)
            if not written:
                return state_of(record)
        self.store.mark_fault(plan.drill_id, planned.fault_id, "SKIPPED", expect="PENDING", detail=check.detail,
                              dry_run_problems=check.problems)
        closed = self.store.fault(plan.drill_id, planned.fault_id)
        return state_of(closed if closed is not None else record)

    # ------------------------------------------------------------ restore

    def restore(self, drill_id: str, *, planned: Sequence[PlannedFault] = (), actor: str) -> RollbackOutcome:
        """Restore every fault of the drill that is not closed, fencing the planned ones with no record yet.
        Idempotent; safe from any path; reports failures instead of raising."""
        known = {record.fault_id for record in self.store.faults_of(drill_id)}
        for fault in planned:
            if fault.fault_id not in known:
                self.store.fence_fault(drill_id, fault, actor=actor)  # False: an Inject wrote first; restored below
        outcome = RollbackOutcome(states=[], restored=0, conflicts=[], failures=[])
        for record in self.store.faults_of(drill_id):
            if is_cleanup(record.planned) and actor == DURING_THE_DRILL:
                continue  # the drill window still writes markers: only the rollbacks at (or after) the end clean up
            # the markers' cleanup is done again by every later rollback: a window may have written since
            if record.status in CLOSED and not (record.status == "RESTORED" and is_cleanup(record.planned)):
                outcome.states.append(state_of(record))
                if record.status == "CONFLICT":
                    outcome.conflicts.append(f"{drill_id}/{record.fault_id}: {record.detail}")
                continue
            try:
                state, wrote = self._restore_one(record, actor)
            except (RollbackFailed, ClientError, OSError) as exc:
                detail = str(exc)
            except Exception as exc:  # a target may answer anything; keep restoring the other faults
                detail = f"{type(exc).__name__}: {exc}"
            else:
                outcome.states.append(state)
                outcome.restored += wrote
                if state.status == "CONFLICT":
                    outcome.conflicts.append(f"{drill_id}/{record.fault_id}: {state.detail}")
                continue
            outcome.failures.append(f"{record.fault_id}: {detail}")
            self.store.mark_fault(drill_id, record.fault_id, "FAILED", detail=detail)
        return outcome

    def _restore_one(self, record: FaultRecord, actor: str) -> tuple[FaultState, bool]:
        driver = self.drivers(record.planned.kind)
        target = self._target(record, self.documents.get_json(record.snapshot_key))
        restored = driver.restore(target, actor)
        if restored.current is not None:
            self.documents.put_json(_sibling(record.snapshot_key, "restored"), restored.current)
        if restored.status == "CONFLICT":
            if self.store.mark_fault(record.drill_id, record.fault_id, "CONFLICT", detail=restored.detail,
                                     refusal=restored.refusal) and restored.refusal is not None:
                announce(record.drill_id, record.fault_id, restored.refusal)
            return state_of(record).model_copy(update={"status": "CONFLICT", "detail": restored.detail}), False
        bracket = restored.bracket or Bracket(self.clock(), self.clock())
        external_id = restored.external_id or record.external_id
        self.store.mark_fault(record.drill_id, record.fault_id, "RESTORED", restore_requested_at_ms=bracket.sent_at_ms,
                              restored_at_ms=bracket.answered_at_ms, restored_by=actor, external_id=external_id,
                              detail=restored.detail)
        state = state_of(record).model_copy(update={
            "status": "RESTORED", "restore_requested_at_ms": bracket.sent_at_ms,
            "restored_at_ms": bracket.answered_at_ms, "detail": restored.detail})
        return state, restored.wrote


# ---------------------------------------------------------------- the steps


def lifecycle_of(runtime: Runtime) -> Lifecycle:
    return Lifecycle(runtime.store, runtime)


def inject_faults(request: InjectRequest, runtime: Runtime) -> InjectResult:
    """The Inject step."""
    plan = request.plan
    return InjectResult(faults=lifecycle_of(runtime).inject(plan, runtime.spec(plan)))


def rollback_faults(request: RollbackRequest, runtime: Runtime) -> RollbackResult:
    """The Rollback, CleanUp and EmergencyRollback steps."""
    actor = "emergency-rollback" if request.emergency else "cleanup" if request.final else "rollback"
    return rollback_drill(request.plan.drill_id, runtime, planned=request.plan.faults, actor=actor)


def rollback_drill(drill_id: str, runtime: Runtime, *, planned: Sequence[PlannedFault] = (),
                   actor: str = "rollback") -> RollbackResult:
    """Restore every fault of the drill that is not closed; RollbackFailed when one could not be."""
    outcome = restore_drill(drill_id, runtime, planned=planned, actor=actor)
    if outcome.failures:
        raise RollbackFailed("; ".join(outcome.failures))
    return RollbackResult(faults=outcome.states)


def restore_drill(drill_id: str, runtime: Runtime, *, planned: Sequence[PlannedFault] = (),
                  actor: str) -> RollbackOutcome:
    """Like ``rollback_drill`` but reports failures instead of raising (the guardian's view)."""
    return lifecycle_of(runtime).restore(drill_id, planned=planned, actor=actor)
