"""The ``approval`` section: the go/no-go gate before anything is injected (docs/architecture.md §2, §9).

With ``approval`` (and ``required`` not false), the drill stops after its steady-state check and waits for a person
to approve it (``livefire approve DRILL_ID``) or reject it (``livefire reject DRILL_ID --reason TEXT``); a rejection,
or no answer within ``timeout``, ends the drill CANCELLED with nothing injected. ``approvers`` names who may decide
(empty: anyone who may call Step Functions' SendTaskSuccess on the state machine); ``topic`` is an SNS topic that
receives the request, besides the ``Drill Approval Requested`` event.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from livefire.spec.base import SpecModel
from livefire.spec.durations import AS_DURATION, HOUR, MINUTE, SECOND, bounded

# The longest wait: the state machine's overall timeout covers it beside the longest drill (tests/unit/
# test_execution_bounds.py), and the leases are held for it.
MAX_APPROVAL_S = HOUR
DEFAULT_APPROVAL_S = 30 * MINUTE
MAX_APPROVERS = 20
# An identity as the CLI names the decider: a user name, an e-mail address, an IAM user or role ARN, a session name.
_IDENTITY = r"^[A-Za-z0-9@._:/+=,-]{1,256}$"
_TOPIC_ARN = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]{1,256}$"

ApprovalTimeout = Annotated[float, bounded(SECOND, MAX_APPROVAL_S, SECOND,
                                           why_maximum="the longest a drill may wait for its go/no-go"), AS_DURATION]
Identity = Annotated[str, Field(pattern=_IDENTITY)]


class Approval(SpecModel):
    """The go/no-go gate: who may decide, how long the drill waits, and where the request is announced."""

    required: bool = Field(default=True, description="false: the section is kept but the drill does not wait")
    timeout: ApprovalTimeout = Field(default=DEFAULT_APPROVAL_S, description="how long the drill waits for a "
                                     "decision (whole seconds, at most 1h); then it is CANCELLED")
    approvers: Annotated[list[Identity], Field(max_length=MAX_APPROVERS)] = Field(
        default=[], description="who may decide: a name matches the decider's name, or the last part of the "
                                "decider's IAM ARN (user, role or session name); empty: anyone allowed by IAM")
    topic: Annotated[str | None, Field(pattern=_TOPIC_ARN)] = Field(
        default=None, description="an SNS topic ARN that receives the approval request; the deployment must list "
                                  "it in the template parameter ApprovalTopicArns")

    @field_validator("approvers")
    @classmethod
    def _unique(cls, approvers: list[str]) -> list[str]:
        if len(approvers) != len(set(approvers)):
            raise ValueError("each approver may be named once")
        return approvers
