"""The go/no-go gate: the spec's approval section, the token on the record, the announcement, the decision and what
the evidence says of it (livefire/spec/approval.py, livefire/approval.py), on in-memory fakes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from livefire.approval import (
    ApprovalRequest,
    approval_evidence,
    check_approval_topic,
    decide,
    is_approver,
    planned_approval,
    request_approval,
)
from livefire.config import Settings
from livefire.contracts import Plan, PlannedApproval
from livefire.errors import ApprovalNotPending, GuardrailViolation, InvalidDrillSpec, NotAnApprover
from livefire.spec import parse_spec
from livefire.store import DrillStore
from livefire_local.live_feed import DrillWatch
from tests.conftest import sandbox_spec_document
from tests.evidence_data import drill_plan
from tests.fakes import FakeTable

TOPIC = "arn:aws:sns:eu-west-1:123456789012:drill-approvals"
TOKEN = "task-token-that-must-stay-secret"
NOW = 1_800_000_000_000


class Recorder:
    """Records the calls made on it (an EventBridge, SNS or Step Functions client), answering each with {}."""

    def __init__(self, fail_with: str | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._fail_with = fail_with

    def __getattr__(self, operation: str) -> Any:
        def call(**params: Any) -> dict[str, Any]:
            self.calls.append((operation, params))
            if self._fail_with is not None:
                raise ClientError({"Error": {"Code": self._fail_with, "Message": "closed"}}, operation)
            return {}
        return call


def settings(*topics: str) -> Settings:
    return Settings(bucket="b", table="t", event_bus="default", allowed_namespaces=("payments",),
                    allowed_clusters=(), approval_topics=topics)


def gated_plan(drill_id: str = "d-1", *, approvers: list[str] | None = None, topic: str | None = None) -> Plan:
    gate = PlannedApproval(timeout_seconds=1800, approvers=approvers or [], topic=topic)
    return drill_plan(drill_id).model_copy(update={"approval": gate})


def waiting(store: DrillStore, plan: Plan, sns: Recorder | None = None) -> Recorder:
    """The drill's record, RUNNING, and its gate waiting; the events client the request went to."""
    store.create_drill(drill_id=plan.drill_id, execution_arn=plan.execution_arn, service=plan.service,
                       pattern=plan.pattern, mode=plan.mode, spec_digest=plan.spec_digest, started_at_ms=NOW,
                       lease_keys=[])
    events = Recorder()
    request_approval(ApprovalRequest(plan=plan, task_token=TOKEN), store, events, settings(TOPIC), now_ms=NOW,
                     sns_for=lambda _region: sns or Recorder())
    return events


@pytest.mark.parametrize(("approval", "expected"), [
    ({"timeout": "2h"}, "approval.timeout: must be at most 1h"),
    ({"timeout": "1500ms"}, "approval.timeout: must be a whole number of seconds"),
    ({"timeout": "0s"}, "approval.timeout: must be at least 1s"),
    ({"approvers": ["alice smith"]}, "approval.approvers.0: String should match pattern"),
    ({"approvers": ["alice", "alice"]}, "approval.approvers: each approver may be named once"),
    ({"topic": "drill-approvals"}, "approval.topic: String should match pattern"),
    ({"notify": TOPIC}, "approval.notify: unknown field"),
])
def test_each_bad_approval_value_is_one_line_naming_its_field(approval: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidDrillSpec) as refused:
        parse_spec(sandbox_spec_document(approval=approval))

    assert expected in str(refused.value)
    assert "\n" not in str(refused.value)


def test_an_approval_section_gates_the_plan_for_30_minutes_by_default() -> None:
    spec = parse_spec(sandbox_spec_document(approval={"approvers": ["alice"]}))

    assert planned_approval(spec) == PlannedApproval(timeout_seconds=1800, approvers=["alice"], topic=None)
    assert spec.approval_seconds == 1800


def test_an_approval_section_not_required_gates_nothing() -> None:
    spec = parse_spec(sandbox_spec_document(approval={"required": False, "timeout": "10m"}))

    assert planned_approval(spec) is None
    assert spec.approval_seconds == 0


def test_plan_refuses_an_approval_topic_the_deployment_does_not_list() -> None:
    spec = parse_spec(sandbox_spec_document(approval={"topic": TOPIC}))

    with pytest.raises(GuardrailViolation, match=r"approval\.topic"):
        check_approval_topic(spec, settings())
    check_approval_topic(spec, settings(TOPIC))


def test_the_gate_stores_its_token_on_the_record_and_announces_the_plan_without_it() -> None:
    store, sns = DrillStore(FakeTable()), Recorder()
    plan = gated_plan(approvers=["alice"], topic=TOPIC)

    events = waiting(store, plan, sns)

    record = store.get_drill("d-1")
    assert record is not None
    assert (record.approval_status, record.approval_token, record.approval_deadline_ms) == (
        "PENDING", TOKEN, NOW + 1_800_000)
    (operation, params), = events.calls
    detail = json.loads(params["Entries"][0]["Detail"])
    assert (operation, params["Entries"][0]["DetailType"]) == ("put_events", "Drill Approval Requested")
    assert detail["faults"] == ["http-abort on VirtualService payments/payments in east (sandbox:e) [real]"]
    assert detail["approve"] == "livefire approve d-1" and detail["approvers"] == ["alice"]
    (_, published), = sns.calls
    assert published["TopicArn"] == TOPIC and "Fault live for 4s" in published["Message"]
    assert TOKEN not in json.dumps(events.calls) + json.dumps(sns.calls) + repr(record)


def test_a_gate_without_a_running_drill_refuses_to_wait() -> None:
    with pytest.raises(ApprovalNotPending):
        request_approval(ApprovalRequest(plan=gated_plan(), task_token=TOKEN), DrillStore(FakeTable()), Recorder(),
                         settings(), now_ms=NOW, sns_for=lambda _region: Recorder())


def test_approving_records_who_and_sends_the_token_once() -> None:
    store, sfn = DrillStore(FakeTable()), Recorder()
    waiting(store, gated_plan(approvers=["alice"]))

    record = decide(store, sfn, "d-1", approved=True, by="arn:aws:sts::123456789012:assumed-role/ops/alice",
                    reason=None, now_ms=NOW + 5)

    assert (record.approval_status, record.approval_token, record.approval_decided_at_ms) == (
        "APPROVED", None, NOW + 5)
    (operation, params), = sfn.calls
    assert operation == "send_task_success" and params["taskToken"] == TOKEN
    with pytest.raises(ApprovalNotPending):
        decide(store, sfn, "d-1", approved=False, by="alice", reason="late", now_ms=NOW + 6)
    assert len(sfn.calls) == 1


def test_rejecting_fails_the_gate_with_approval_rejected_naming_who_and_why() -> None:
    store, sfn = DrillStore(FakeTable()), Recorder()
    waiting(store, gated_plan())

    record = decide(store, sfn, "d-1", approved=False, by="bob", reason="release freeze", now_ms=NOW + 5)

    (operation, params), = sfn.calls
    assert (operation, params["error"], params["cause"]) == ("send_task_failure", "ApprovalRejected",
                                                             "rejected by bob: release freeze")
    assert (record.approval_status, record.approval_reason) == ("REJECTED", "release freeze")


def test_someone_not_listed_may_not_decide() -> None:
    store, sfn = DrillStore(FakeTable()), Recorder()
    waiting(store, gated_plan(approvers=["alice"]))

    with pytest.raises(NotAnApprover):
        decide(store, sfn, "d-1", approved=True, by="mallory", reason=None, now_ms=NOW)

    assert sfn.calls == []
    record = store.get_drill("d-1")
    assert record is not None and record.approval_status == "PENDING"


def test_a_decision_after_the_gate_closed_is_marked_undelivered() -> None:
    store = DrillStore(FakeTable())
    waiting(store, gated_plan())

    with pytest.raises(ApprovalNotPending, match="closed"):
        decide(store, Recorder(fail_with="TaskTimedOut"), "d-1", approved=True, by="alice", reason=None, now_ms=NOW)

    record = store.get_drill("d-1")
    assert record is not None and record.approval_status == "UNDELIVERED"


def test_a_drill_without_a_gate_has_nothing_to_decide() -> None:
    store = DrillStore(FakeTable())

    with pytest.raises(ApprovalNotPending, match="no drill"):
        decide(store, Recorder(), "d-9", approved=True, by="alice", reason=None, now_ms=NOW)


def test_the_evidence_names_the_decision_or_the_timeout() -> None:
    store = DrillStore(FakeTable())
    waiting(store, gated_plan())
    pending = store.get_drill("d-1")
    decide(store, Recorder(), "d-1", approved=False, by="bob", reason="release freeze", now_ms=NOW + 5)
    rejected = approval_evidence(store.get_drill("d-1"), "ApprovalRejected")
    timed_out = approval_evidence(pending, "States.Timeout")

    assert rejected is not None and rejected.line() == ("rejected at the go/no-go gate by bob (release freeze): "
                                                        "nothing was injected")
    assert timed_out is not None and timed_out.line() == ("no decision at the go/no-go gate within 1800s: the drill "
                                                          "was cancelled, nothing was injected")
    assert approval_evidence(None, None) is None


def test_an_approver_is_named_by_name_or_by_the_last_part_of_an_iam_arn() -> None:
    assert is_approver("anyone", [])
    assert is_approver("alice", ["alice"])
    assert is_approver("arn:aws:iam::123456789012:user/alice", ["alice"])
    assert not is_approver("arn:aws:iam::123456789012:user/mallory", ["alice"])


def test_the_live_view_shows_a_drill_waiting_at_its_gate_between_baseline_and_lead() -> None:
    watch = DrillWatch(parse_spec(sandbox_spec_document(approval={})), "d-1")

    def enter(state: str, at_s: float) -> None:
        watch.on_event({"type": "TaskStateEntered", "timestamp": datetime.fromtimestamp(at_s, UTC),
                        "stateEnteredEventDetails": {"name": state}})

    enter("Baseline", 1_800_000_000)
    enter("AwaitApproval", 1_800_000_002)
    waiting_phase = watch.phase
    enter("Drill", 1_800_000_100)

    assert (waiting_phase, watch.phase_seconds("approval"), watch.probe_phase) == ("approval", None, "lead")
