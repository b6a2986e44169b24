"""The guardian and the sweeper against the sandbox mesh (fake Kubernetes API over HTTP) and moto, without the
state machine: what each trigger restores, releases and marks, and what it must never touch."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from livefire.config import Settings
from livefire.contracts import FaultStatus, InjectRequest, Plan, PlanRequest
from livefire.errors import FaultInjectionFailed
from livefire.faults.lifecycle import inject_faults, restore_drill
from livefire.guardian import GuardianEvent, GuardianReport, guard
from livefire.planning import plan_drill
from livefire.runtime import Runtime
from livefire.spec import parse_spec
from livefire.store import DrillStore
from livefire_local.runner import sandbox_session
from livefire_local.sandbox.mesh import SandboxMesh
from livefire_local.sandbox.store import ObjectKey
from tests.conftest import MESH_DIR, ROOT, sandbox_spec_document

PRIMARY = "payments-use1"
VS = ObjectKey("networking.istio.io", "virtualservices", "payments", "payments")
LATER = time.time() + 24 * 3600  # the sweeper's clock, once every fault has expired


@dataclass
class Sandbox:
    mesh: SandboxMesh
    runtime: Runtime
    before: dict[str, Any]

    @property
    def store(self) -> DrillStore:
        return self.runtime.store

    def plan(self, drill_id: str) -> Plan:
        execution_arn = f"arn:aws:states:us-east-1:123456789012:execution:livefire-local-DrillStateMachine:{drill_id}"
        return plan_drill(PlanRequest(drill_id=drill_id, execution_arn=execution_arn,
                                      execution_input={"spec": sandbox_spec_document()}), self.runtime)

    def inject(self, plan: Plan) -> None:
        states = inject_faults(InjectRequest(plan=plan), self.runtime).faults
        assert [s.status for s in states] == ["INJECTED"]
        assert self.mesh.snapshot() != self.before

    def statuses(self, drill_id: str) -> list[tuple[FaultStatus, str | None]]:
        return [(f.status, f.restored_by) for f in self.store.faults_of(drill_id)]

    def patches(self) -> int:
        return sum(1 for r in self.mesh.apis[PRIMARY].requests if r.method == "PATCH")


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with sandbox_session(parse_spec(sandbox_spec_document()), MESH_DIR, ROOT) as (mesh, _stack):
        yield Sandbox(mesh, Runtime(settings=Settings.from_env()), mesh.snapshot())


def ended(plan: Plan, status: str = "FAILED") -> GuardianEvent:
    """The guardian's event, parsed from what EventBridge delivers for the execution's status change."""
    return GuardianEvent.from_event({
        "version": "0", "id": "e1", "detail-type": "Step Functions Execution Status Change", "source": "aws.states",
        "account": "123456789012", "time": "2025-01-01T00:00:00Z", "region": "us-east-1",
        "resources": [plan.execution_arn],
        "detail": {"executionArn": plan.execution_arn, "name": plan.drill_id, "status": status,
                   "error": "DrillError" if status == "FAILED" else None},
    })


def sweep(sandbox: Sandbox, *, now: float | None = None, status: str | None = "RUNNING") -> GuardianReport:
    return guard(GuardianEvent.from_event({"sweep": True}), sandbox.runtime, now=now, status_of=lambda _arn: status)


# ---------------------------------------------------------------- the status-change path


def test_the_guardian_restores_the_fault_releases_the_lease_and_marks_how_the_drill_ended(
    sandbox: Sandbox, unique_id: str
) -> None:
    plan = sandbox.plan(unique_id)
    sandbox.inject(plan)

    report = guard(ended(plan), sandbox.runtime)

    assert (report.faults_restored, report.leases_released, report.failures) == (1, 2, [])  # service's, object's
    assert sandbox.mesh.snapshot() == sandbox.before
    assert sandbox.statuses(unique_id) == [("RESTORED", "guardian")]
    assert sandbox.store.active_leases() == []
    record = sandbox.store.get_drill(unique_id)
    assert record is not None
    assert (record.status, record.verdict, record.execution_status) == ("EXECUTION_FAILED", "ERROR", "FAILED")
    assert (record.guardian_restored, record.guardian_released) == (1, 2)


def test_a_second_delivery_of_the_same_event_changes_nothing(sandbox: Sandbox, unique_id: str) -> None:
    plan = sandbox.plan(unique_id)
    sandbox.inject(plan)
    guard(ended(plan), sandbox.runtime)
    patches = sandbox.patches()

    again = guard(ended(plan), sandbox.runtime)

    assert (again.faults_restored, again.leases_released, again.failures) == (0, 0, [])
    assert sandbox.patches() == patches
    assert sandbox.mesh.snapshot() == sandbox.before


@pytest.mark.parametrize("event", [
    {"source": "aws.states", "detail-type": "Step Functions Execution Status Change",
     "detail": {"name": "d", "status": "RUNNING"}},
    {"source": "aws.states", "detail-type": "Step Functions State Machine Status Change", "detail": {}},
    {"sweep": "yes"},
])
def test_the_guardian_refuses_anything_but_an_ended_execution_or_the_sweep(event: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        GuardianEvent.from_event(event)


def test_a_stopped_drill_gets_its_planned_faults_fenced_so_a_late_inject_patches_nothing(
    sandbox: Sandbox, unique_id: str
) -> None:
    plan = sandbox.plan(unique_id)  # stopped before its Inject ran (or while the Inject was still in flight)

    guard(ended(plan, "ABORTED"), sandbox.runtime)
    late = inject_faults(InjectRequest(plan=plan), sandbox.runtime).faults

    assert [s.status for s in late] == ["SKIPPED"]
    assert sandbox.statuses(unique_id) == [("SKIPPED", "guardian")]
    assert sandbox.patches() == 0
    assert sandbox.mesh.snapshot() == sandbox.before


def test_the_guardian_never_touches_a_drill_record_of_another_execution(sandbox: Sandbox, unique_id: str) -> None:
    plan = sandbox.plan(unique_id)
    sandbox.inject(plan)
    stranger = Plan.model_validate({**plan.to_state(), "executionArn": f"{plan.execution_arn}-other"})

    report = guard(ended(stranger), sandbox.runtime)

    assert report.failures and "belongs to" in report.failures[0]
    assert sandbox.statuses(unique_id) == [("INJECTED", None)]
    assert sandbox.store.lease_holder(plan.faults[0].lease_key) == unique_id
    guard(ended(plan), sandbox.runtime)
    assert sandbox.mesh.snapshot() == sandbox.before


def test_an_object_someone_else_edited_is_left_for_a_human_and_reported(sandbox: Sandbox, unique_id: str) -> None:
    plan = sandbox.plan(unique_id)
    sandbox.inject(plan)
    store = sandbox.mesh.stores[PRIMARY]
    edited = store.get(VS)
    assert edited is not None
    edited["spec"]["http"][0]["timeout"] = "3s"  # an operator's change while the fault is live
    store.replace(VS, edited)
    edited_state = store.snapshot()[VS]

    report = guard(ended(plan), sandbox.runtime)

    assert report.faults_restored == 0 and len(report.conflicts) == 1 and report.failures == []
    assert sandbox.statuses(unique_id) == [("CONFLICT", None)]
    assert store.snapshot()[VS] == edited_state
    assert sandbox.store.active_leases() == []


# ---------------------------------------------------------------- the race between an Inject and a rollback


class RacingStore(DrillStore):
    """Runs a rollback (as the guardian of a stopped drill would) at the worst moment: after the Inject patched the
    object, before it records INJECTED."""

    def __init__(self, table: Any, runtime: Runtime) -> None:
        super().__init__(table)
        self.runtime = runtime
        self.raced = False

    def mark_fault(self, drill_id: str, fault_id: str, status: FaultStatus, **fields: Any) -> bool:
        if status == "INJECTED" and not self.raced:
            self.raced = True
            restore_drill(drill_id, self.runtime, actor="guardian")
        return super().mark_fault(drill_id, fault_id, status, **fields)


def test_an_inject_that_loses_the_race_with_a_rollback_undoes_its_own_write(sandbox: Sandbox, unique_id: str) -> None:
    plan = sandbox.plan(unique_id)
    racing = RacingStore(sandbox.store._table, sandbox.runtime)
    sandbox.runtime.__dict__["store"] = racing

    with pytest.raises(FaultInjectionFailed, match="rolled back while the fault was being applied"):
        inject_faults(InjectRequest(plan=plan), sandbox.runtime)

    assert racing.raced
    assert sandbox.mesh.snapshot() == sandbox.before
    assert [status for status, _by in sandbox.statuses(unique_id)] == ["RESTORED"]
    assert sweep(sandbox, now=LATER).faults_restored == 0  # nothing left for the sweeper


# ---------------------------------------------------------------- the sweep path


def test_the_sweeper_restores_a_fault_past_its_expiry_even_if_its_execution_looks_alive(
    sandbox: Sandbox, unique_id: str
) -> None:
    plan = sandbox.plan(unique_id)
    sandbox.inject(plan)

    report = sweep(sandbox, now=LATER, status="RUNNING")

    assert (report.drills, report.faults_restored, report.leases_released) == ([unique_id], 1, 2)  # service, object
    assert sandbox.statuses(unique_id) == [("RESTORED", "sweeper")]
    assert sandbox.mesh.snapshot() == sandbox.before
    assert sandbox.store.active_leases() == []
    record = sandbox.store.get_drill(unique_id)
    assert record is not None and record.sweeper_restored == 1


def test_the_sweeper_leaves_a_running_drill_inside_its_window_alone(sandbox: Sandbox, unique_id: str) -> None:
    plan = sandbox.plan(unique_id)
    sandbox.inject(plan)
    patches = sandbox.patches()

    report = sweep(sandbox, status="RUNNING")

    assert (report.drills, report.faults_restored, report.leases_released) == ([], 0, 0)
    assert sandbox.statuses(unique_id) == [("INJECTED", None)]
    assert sandbox.store.lease_holder(plan.faults[0].lease_key) == unique_id
    assert sandbox.patches() == patches


def test_an_execution_the_sweeper_cannot_read_counts_as_running_until_the_fault_expires(
    sandbox: Sandbox, unique_id: str
) -> None:
    plan = sandbox.plan(unique_id)
    sandbox.inject(plan)

    untouched = sweep(sandbox, status=None)
    swept = sweep(sandbox, now=LATER, status=None)

    assert (untouched.faults_restored, swept.faults_restored) == (0, 1)
    assert sandbox.mesh.snapshot() == sandbox.before


def test_the_sweeper_asks_step_functions_and_skips_executions_it_cannot_find(sandbox: Sandbox, unique_id: str) -> None:
    plan = sandbox.plan(unique_id)  # no such execution in this account: DescribeExecution fails
    sandbox.inject(plan)

    report = guard(GuardianEvent(trigger="sweep"), sandbox.runtime)

    assert report.faults_restored == 0
    assert sandbox.statuses(unique_id) == [("INJECTED", None)]
    guard(ended(plan), sandbox.runtime)


def test_the_sweeper_restores_and_releases_for_an_execution_that_ended_before_expiry(
    sandbox: Sandbox, unique_id: str
) -> None:
    plan = sandbox.plan(unique_id)
    sandbox.inject(plan)

    report = sweep(sandbox, status="FAILED")

    assert (report.faults_restored, report.leases_released) == (1, 2)  # the service's lease and the object's
    assert sandbox.statuses(unique_id) == [("RESTORED", "sweeper")]
    assert sandbox.mesh.snapshot() == sandbox.before


def test_the_sweeper_releases_expired_leases_and_those_of_ended_executions_only(sandbox: Sandbox) -> None:
    store = sandbox.store
    now = int(time.time())
    store.acquire_lease("t/expired", "crashed-plan", now - 1)  # a Plan that died before it wrote its record
    store.acquire_lease("t/ended", "ended-drill", now + 3600, "arn:ended")
    store.acquire_lease("t/running", "running-drill", now + 3600, "arn:running")

    report = guard(GuardianEvent(trigger="sweep"), sandbox.runtime,
                   status_of=lambda arn: "ABORTED" if arn == "arn:ended" else "RUNNING")

    assert report.leases_released == 2
    assert [lease.holder for lease in store.active_leases()] == ["running-drill"]
