"""The guardian is loud (docs/architecture.md §9): a restore it cannot complete raises once everything else is done,
a drill it ends gets its ``Drill Completed`` event, and a refused restore is announced and never reads PASS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from livefire.errors import GuardianRestoreFailed
from livefire.faults.lifecycle import restore_drill
from livefire.guardian import guard
from tests.completed_events import CompletedEvents
from tests.component.test_guardian import PRIMARY, VS, Sandbox, ended, sandbox, sweep

__all__ = ["sandbox"]  # the fixture, imported for pytest
LATER = 4_000_000_000  # the sweeper's clock (epoch s), once every fault has expired
VS_PATH = "virtualservices/payments"


@pytest.fixture
def completed(sandbox: Sandbox) -> Callable[[str], list[dict[str, Any]]]:
    """The ``Drill Completed`` events of a drill sent since the fixture was set up."""
    return CompletedEvents().of


def test_a_restore_the_guardian_cannot_complete_raises_after_releasing_and_marking(
    sandbox: Sandbox, unique_id: str,
) -> None:
    plan = sandbox.plan(unique_id)
    sandbox.inject(plan)
    sandbox.mesh.apis[PRIMARY].fail_next("PATCH", VS_PATH, 500)

    with pytest.raises(GuardianRestoreFailed, match="1 fault\\(s\\) could not be restored"):
        guard(ended(plan), sandbox.runtime)

    record = sandbox.store.get_drill(unique_id)
    assert record is not None and record.guardian_failures and "500" in record.guardian_failures
    assert sandbox.store.active_leases() == []  # released before it raised
    assert [f.status for f in sandbox.store.active_faults()] == ["FAILED"]
    retried = guard(ended(plan), sandbox.runtime)  # Lambda's retry, once the API answers again
    assert retried.faults_restored == 1 and sandbox.mesh.snapshot() == sandbox.before


def test_a_sweep_that_cannot_restore_raises_too(sandbox: Sandbox, unique_id: str) -> None:
    sandbox.inject(sandbox.plan(unique_id))
    sandbox.mesh.apis[PRIMARY].fail_next("PATCH", VS_PATH, 500)

    with pytest.raises(GuardianRestoreFailed, match="sweep"):
        sweep(sandbox, now=LATER)

    assert sweep(sandbox, now=LATER).faults_restored == 1


def test_a_drill_the_guardian_ends_gets_its_completion_event(
    sandbox: Sandbox, unique_id: str, completed: Callable[[str], list[dict[str, Any]]],
) -> None:
    plan = sandbox.plan(unique_id)
    sandbox.inject(plan)

    guard(ended(plan, "ABORTED"), sandbox.runtime)
    again = guard(ended(plan, "ABORTED"), sandbox.runtime)  # a second delivery ends nothing more

    record = sandbox.store.get_drill(unique_id)
    assert record is not None and (record.status, record.verdict) == ("EXECUTION_ABORTED", "ABORTED")
    assert again.faults_restored == 0
    events = completed(unique_id)
    assert [event["detail"]["verdict"] for event in events] == ["ABORTED"]
    assert events[0]["detail"]["endedBy"] == "guardian" and events[0]["detail"]["faultsRestored"] == 1


def test_a_refused_restore_makes_the_ended_drills_verdict_restore_refused_and_says_how_to_restore_it(
    sandbox: Sandbox, unique_id: str, completed: Callable[[str], list[dict[str, Any]]],
) -> None:
    plan = sandbox.plan(unique_id)
    sandbox.inject(plan)
    store = sandbox.mesh.stores[PRIMARY]
    edited = store.get(VS)
    assert edited is not None
    edited["spec"]["http"][0]["retries"] = {"attempts": 5}  # an operator's change while the fault is live
    store.replace(VS, edited)

    report = guard(ended(plan, "ABORTED"), sandbox.runtime)

    [fault] = sandbox.store.faults_of(unique_id)
    record = sandbox.store.get_drill(unique_id)
    assert report.conflicts and fault.status == "CONFLICT" and fault.refusal is not None
    assert record is not None and record.verdict == "RESTORE_REFUSED"
    assert fault.refusal.differs == ["spec.http"]
    assert fault.refusal.command.startswith("kubectl --server http://127.0.0.1:")
    assert "-n payments patch virtualservices.networking.istio.io payments --type=json -p '[" in fault.refusal.command
    assert restore_drill(unique_id, sandbox.runtime, actor="sweeper").restored == 0  # never forced
    [event] = completed(unique_id)
    assert event["detail"]["verdict"] == "RESTORE_REFUSED"
    assert event["detail"]["restoreRefused"][0].startswith("RESTORE REFUSED: VirtualService payments/payments")
