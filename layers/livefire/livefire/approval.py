"""The go/no-go gate (spec ``approval``): a person approves or rejects a drill before anything is injected
(docs/architecture.md §2, §9).

The AwaitApproval state (``lambda:invoke.waitForTaskToken``) calls ``request_approval``: the task token goes on the
drill's record, and the request — what will be patched, for how long, the blast radius, who may decide and how —
is announced as a ``Drill Approval Requested`` event (and on the spec's SNS topic, when it names one). The token
itself is never logged, announced or put in the evidence. ``decide`` (``livefire approve|reject``) records who
decided on the record, then answers the gate: SendTaskSuccess, or SendTaskFailure with error ``ApprovalRejected``.
A rejection or the gate's timeout (``States.Timeout``) ends the drill CANCELLED; ``approval_evidence`` is what its
evidence says of the gate (``approval.json`` and the report's line).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError
from pydantic import Field

from livefire.config import Settings
from livefire.contracts import Contract, Plan, PlannedApproval
from livefire.errors import ApprovalNotPending, ApprovalRejected, GuardrailViolation, NotAnApprover
from livefire.records import DrillRecord
from livefire.redaction import redact_url
from livefire.spec import DrillSpec, format_duration
from livefire.store import DrillStore

APPROVAL_ARTIFACT = "approval.json"
REQUESTED = "Drill Approval Requested"
TIMED_OUT = "States.Timeout"
REASON_LIMIT = 1000
# What SendTaskSuccess / SendTaskFailure answer when the gate no longer waits for this token.
_CLOSED_GATE = ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken")


class ApprovalRequest(Contract):
    """The AwaitApproval state's payload: the plan and the gate's task token (``$$.Task.Token``)."""

    plan: Plan
    task_token: str = Field(repr=False, description="The gate's task token: stored on the drill record, never "
                                                    "logged or announced.")


class ApprovalAnnouncement(Contract):
    """What the owner is asked to approve: the request announced (event, SNS) and returned by the step."""

    drill_id: str = Field(description="The drill waiting at the gate.")
    service: str = Field(description="metadata.service of the spec.")
    mode: str = Field(description="live or dry-run.")
    faults: list[str] = Field(description="What will be patched or started, one line per fault.")
    blast_radius: list[str] = Field(description="The regions, clusters and namespaces the faults touch.")
    targets: list[str] = Field(description="The endpoints probed (query values redacted).")
    fault_seconds: int = Field(description="How long the fault stays live.")
    observe_seconds: float = Field(description="How long the drill observes after the gate: lead, fault and "
                                               "recovery.")
    timeout_seconds: int = Field(description="How long the gate waits for a decision.")
    deadline_ms: int = Field(description="When the gate stops waiting (epoch ms): then the drill is CANCELLED.")
    approvers: list[str] = Field(description="Who may decide (empty: anyone IAM allows).")
    approve: str = Field(description="The command that approves the drill.")
    reject: str = Field(description="The command that rejects it.")

    def text(self) -> str:
        """The request as an SNS message body."""
        lines = [f"livefire drill {self.drill_id} of {self.service} ({self.mode}) waits for your go/no-go.",
                 *(f"Fault: {fault}" for fault in self.faults),
                 f"Fault live for {format_duration(self.fault_seconds)}; the drill observes for "
                 f"{format_duration(self.observe_seconds)} after approval.",
                 f"Blast radius: {'; '.join(self.blast_radius) or 'none'}",
                 f"Probed: {', '.join(self.targets)}",
                 f"Approvers: {', '.join(self.approvers) or 'anyone allowed to answer the gate'}",
                 f"Without a decision within {format_duration(self.timeout_seconds)} the drill is CANCELLED.",
                 f"Approve: {self.approve}", f"Reject: {self.reject}"]
        return "\n".join(lines) + "\n"


class ApprovalEvidence(Contract):
    """What the evidence says of the gate (``approval.json``)."""

    status: str = Field(description="APPROVED, REJECTED, TIMED_OUT or PENDING (the drill ended otherwise).")
    requested_at_ms: int | None = Field(description="When the gate started waiting.")
    deadline_ms: int | None = Field(description="When it would stop waiting.")
    approvers: list[str] = Field(description="Who could decide (empty: anyone IAM allowed).")
    decided_by: str | None = Field(description="Who approved or rejected (None: nobody decided).")
    decided_at_ms: int | None = Field(description="When.")
    reason: str | None = Field(description="The reason given.")

    def line(self) -> str:
        """One sentence for the report."""
        if self.status == "TIMED_OUT":
            waited = (self.deadline_ms - self.requested_at_ms) / 1000 if self.deadline_ms and \
                self.requested_at_ms else None
            return ("no decision at the go/no-go gate" +
                    (f" within {format_duration(round(waited))}" if waited is not None else "") +
                    ": the drill was cancelled, nothing was injected")
        if self.status == "REJECTED":
            return (f"rejected at the go/no-go gate by {self.decided_by}" +
                    (f" ({self.reason})" if self.reason else "") + ": nothing was injected")
        if self.status == "APPROVED":
            return f"approved at the go/no-go gate by {self.decided_by}"
        return "the go/no-go gate was still waiting when the drill ended"


def check_approval_topic(spec: DrillSpec, settings: Settings) -> None:
    """Refuse (at Plan) an approval topic the deployment does not list: the gate's role may publish to no other."""
    gate = spec.gate
    if gate is not None and gate.topic is not None and gate.topic not in settings.approval_topics:
        raise GuardrailViolation(f"approval.topic: {gate.topic!r} is not one of this deployment's ApprovalTopicArns "
                                 "(template parameter, SNS topic ARNs)")


def planned_approval(spec: DrillSpec) -> PlannedApproval | None:
    """The plan's gate, when the spec has one."""
    gate = spec.gate
    if gate is None:
        return None
    return PlannedApproval(timeout_seconds=round(gate.timeout), approvers=gate.approvers, topic=gate.topic)


def announcement(plan: Plan, gate: PlannedApproval, deadline_ms: int) -> ApprovalAnnouncement:
    """What the owner is asked: each fault, how long it stays live, the blast radius, the probed endpoints."""
    faults = [f"{f.kind} on {f.object_kind} {f.namespace + '/' if f.namespace else ''}{f.object_name} in "
              f"{f.region}" + (f" ({f.cluster.key})" if f.cluster is not None else "") + f" [{f.reach}]"
              for f in plan.faults]
    radius = sorted({f"region {f.region}" for f in plan.faults} |
                    {f"cluster {f.cluster.key}" for f in plan.faults if f.cluster is not None} |
                    {f"namespace {f.namespace}" for f in plan.faults if f.namespace})
    return ApprovalAnnouncement(
        drill_id=plan.drill_id, service=plan.service, mode=plan.mode, faults=faults, blast_radius=radius,
        targets=[f"{t.name} {redact_url(t.url)}" for t in plan.targets], fault_seconds=plan.fault_wait_seconds,
        observe_seconds=plan.observe_seconds, timeout_seconds=gate.timeout_seconds, deadline_ms=deadline_ms,
        approvers=gate.approvers, approve=f"livefire approve {plan.drill_id}",
        reject=f"livefire reject {plan.drill_id} --reason TEXT",
    )


def request_approval(request: ApprovalRequest, store: DrillStore, events: Any, settings: Settings, *,
                     now_ms: int, sns_for: Callable[[str], Any]) -> ApprovalAnnouncement:
    """The AwaitApproval step: the token on the drill's record, then the request announced. ``sns_for(region)``
    gives an SNS client in the topic's region."""
    plan, gate = request.plan, request.plan.approval
    if gate is None:
        raise ApprovalNotPending(f"drill {plan.drill_id} has no go/no-go gate")
    asked = announcement(plan, gate, now_ms + gate.timeout_seconds * 1000)
    if not store.await_approval(plan.drill_id, token=request.task_token, requested_at_ms=now_ms,
                                deadline_ms=asked.deadline_ms, approvers=asked.approvers):
        raise ApprovalNotPending(f"drill {plan.drill_id} has no RUNNING record to wait on")
    events.put_events(Entries=[{"Source": "livefire", "DetailType": REQUESTED, "EventBusName": settings.event_bus,
                                "Detail": json.dumps(asked.to_state())}])
    if gate.topic:
        sns_for(gate.topic.split(":")[3]).publish(TopicArn=gate.topic, Message=asked.text(),
                                                  Subject=f"livefire: approve drill {plan.drill_id}?"[:100])
    return asked


def is_approver(decider: str, approvers: list[str]) -> bool:
    """Anyone when no approver is named; else the decider's name, or the last part of its IAM ARN (the user, role
    or session name), must be listed."""
    return not approvers or decider in approvers or decider.rsplit("/", 1)[-1] in approvers


def decide(store: DrillStore, sfn: Any, drill_id: str, *, approved: bool, by: str, reason: str | None,
           now_ms: int) -> DrillRecord:
    """Approve or reject the drill waiting at its gate: who decided goes on its record first (once: a second
    decision is refused), then the gate is answered. ApprovalNotPending when there is nothing to decide (or the
    gate closed before the answer reached it), NotAnApprover when ``by`` may not decide."""
    record = store.get_drill(drill_id)
    if record is None:
        raise ApprovalNotPending(f"no drill {drill_id} in the drill table")
    if record.approval_status != "PENDING" or record.approval_token is None:
        state = record.approval_status or "no go/no-go gate"
        raise ApprovalNotPending(f"drill {drill_id} is not waiting for approval ({state}; status {record.status})")
    if not is_approver(by, record.approval_approvers):
        raise NotAnApprover(f"{by} is not one of drill {drill_id}'s approvers {record.approval_approvers}")
    token = record.approval_token
    if not store.decide_approval(drill_id, token=token, approved=approved, by=by, reason=reason, decided_at_ms=now_ms):
        raise ApprovalNotPending(f"drill {drill_id} was decided by someone else first")
    try:
        if approved:
            sfn.send_task_success(taskToken=token, output=json.dumps({"decision": "APPROVED", "by": by}))
        else:
            cause = f"rejected by {by}" + (f": {reason}" if reason else "")
            sfn.send_task_failure(taskToken=token, error=ApprovalRejected.__name__, cause=cause[:REASON_LIMIT])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in _CLOSED_GATE:
            raise
        store.mark_approval_undelivered(drill_id)
        raise ApprovalNotPending(f"drill {drill_id}'s gate closed before the decision reached it (it timed out or "
                                 "the drill ended): nothing changed") from None
    decided = store.get_drill(drill_id)
    assert decided is not None
    return decided


def approval_evidence(record: DrillRecord | None, error: str | None) -> ApprovalEvidence | None:
    """What the evidence says of the gate: from the drill's record, and the error that ended the gate (a timeout
    is told by ``States.Timeout``, whatever a late decision wrote). None when the drill had no gate."""
    if record is None or record.approval_status is None:
        return None
    status = "TIMED_OUT" if error == TIMED_OUT else record.approval_status
    decided = status in ("APPROVED", "REJECTED")
    return ApprovalEvidence(
        status=status, requested_at_ms=record.approval_requested_at_ms, deadline_ms=record.approval_deadline_ms,
        approvers=record.approval_approvers, decided_by=record.approval_decided_by if decided else None,
        decided_at_ms=record.approval_decided_at_ms if decided else None,
        reason=record.approval_reason if decided else None,
    )
