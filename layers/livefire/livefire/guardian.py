"""The guardian: the last line of defence that no drill, however it ended, leaves a fault or a lease behind.

Two triggers: the state machine's FAILED / TIMED_OUT / ABORTED status-change event (EventBridge), and a sweep
schedule that restores every fault past its expiry (for when everything else failed, the guardian included).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from livefire.chaos import rollback_drill
from livefire.contracts import Contract
from livefire.errors import RollbackFailed
from livefire.runtime import Runtime

STATUS_CHANGE = "Step Functions Execution Status Change"


class GuardianEvent(Contract):
    trigger: Literal["execution-ended", "sweep"]
    drill_id: str | None = None
    execution_status: str | None = None

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> GuardianEvent:
        if event.get("sweep") is True:
            return cls(trigger="sweep")
        if event.get("detail-type") == STATUS_CHANGE:
            detail = event.get("detail") or {}
            return cls(trigger="execution-ended", drill_id=detail["name"], execution_status=detail["status"])
        raise ValueError("not a guardian event: expected a Step Functions status change or {'sweep': true}")


class GuardianReport(Contract):
    trigger: str
    drills: list[str]
    faults_restored: int
    leases_released: int
    failures: list[str]


def guard(event: GuardianEvent, runtime: Runtime) -> GuardianReport:
    store = runtime.store
    if event.trigger == "execution-ended":
        assert event.drill_id is not None
        drill_ids = [event.drill_id]
    else:
        drill_ids = sorted({record.drill_id for record in store.faults_expired_before(int(time.time()))})
    restored = released = 0
    failures: list[str] = []
    for drill_id in drill_ids:
        try:
            result = rollback_drill(drill_id, runtime)
            restored += sum(1 for fault in result.faults if fault.status == "RESTORED")
        except RollbackFailed as exc:
            failures.append(f"{drill_id}: {exc}")
        record = store.get_drill(drill_id) or {}
        for lease_key in record.get("leaseKeys", []):
            store.release_lease(lease_key, drill_id)
            released += 1
        if event.trigger == "execution-ended" and record:
            ended = {"executionStatus": event.execution_status, "guardedAtMs": int(time.time() * 1000)}
            if record.get("status") == "RUNNING":
                ended["status"] = f"EXECUTION_{event.execution_status}"
            store.finish_drill(drill_id, **ended)
    return GuardianReport(trigger=event.trigger, drills=drill_ids, faults_restored=restored,
                          leases_released=released, failures=failures)
