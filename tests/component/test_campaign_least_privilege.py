"""Least privilege of the campaign (docs/campaigns.md), checked as tests/component/test_iam_least_privilege.py checks
the drill's functions: every AWS call the campaign's steps really make (plan, admit, a drill recorded, a drill
skipped, conclude) is recorded on the local stack, and CampaignFunctionRole must allow each and grant nothing
else; the campaign state machine's role allows exactly what its definition and its integrations need."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
import yaml

from livefire.records import DrillRecord
from livefire.store import DrillStore
from livefire_local.aws import REGION, LocalStack, local_stack
from livefire_local.lambda_server import LambdaContext
from livefire_local.template import ACCOUNT
from tests.component.event_replay import Call, CallRecorder, Step
from tests.component.test_iam_least_privilege import (
    CONFIGURATIONS,
    STATE_MACHINE_STAR_ACTIONS,
    Grant,
    Stack,
    _template_keys,
    grants_of,
    invoked_functions,
    runtime_calls,
    unused_and_missing,
)
from tests.conftest import ROOT, sandbox_spec_document

CAMPAIGN = "gameday-0001"
BUCKET = "livefire-local-evidencebucket"


def _invoke(stack: LocalStack, recorder: CallRecorder, step: Step, event: dict[str, Any]) -> Any:
    """One invocation of the campaign function; its calls accumulate on ``step``."""
    function, handler = stack.lambdas.handler_for("livefire-CampaignFunction")
    recorder.current = step
    try:
        return handler(json.loads(json.dumps(event)), LambdaContext(function.name, 512, 600, REGION))
    finally:
        recorder.current = None


def _sealed_drill(stack: LocalStack, drill_id: str) -> None:
    """The record and assessment a finished child drill leaves, as its Evidence step writes them."""
    DrillStore(stack.dynamodb.Table(stack.table)).restore_drill(DrillRecord(
        drill_id=drill_id, execution_arn=f"arn:aws:states:{REGION}:{ACCOUNT}:execution:d:{drill_id}",
        status="COMPLETED", started_at_ms=1, ended_at_ms=2, service="payments", pattern="active-passive",
        verdict="FAIL", rto_seconds=1.5, manifest_digest="0" * 64, sequence=1,
        manifest_key=f"drills/payments/{drill_id}/manifest.json"))
    stack.s3.put_object(Bucket=stack.bucket, Key=f"drills/payments/{drill_id}/assessment.json",
                        Body=json.dumps({"data_checks": [{"rpo": [{"seconds": 0.25}]}]}).encode())


@cache
def campaign_calls() -> frozenset[Call]:
    """Every call of a two-drill campaign whose first drill fails (so the second is skipped), step by step."""
    recorder = CallRecorder()
    step = Step("campaign", "CampaignFunction", {})
    with recorder.installed(), local_stack(ROOT) as stack:
        for index in range(2):
            stack.s3.put_object(Bucket=stack.bucket, Key=f"campaign-specs/{CAMPAIGN}/{index}.yaml",
                                Body=yaml.safe_dump(sandbox_spec_document()).encode())
        campaign = _invoke(stack, recorder, step, {
            "step": "plan", "campaignId": CAMPAIGN,
            "campaignInput": {"specs": {"prefix": f"campaign-specs/{CAMPAIGN}/"}, "rules": {"maxConcurrency": 1}}})
        items = sorted(o["Key"] for o in stack.s3.list_objects_v2(
            Bucket=stack.bucket, Prefix=f"campaigns/{CAMPAIGN}/rounds/")["Contents"])
        for key in items:
            admission = _invoke(stack, recorder, step, {"step": "admit", "campaign": campaign, "key": key})
            if admission["admitted"]:
                _sealed_drill(stack, admission["drill"]["drillId"])
                _invoke(stack, recorder, step, {
                    "step": "record", "campaign": campaign, "drill": admission["drill"],
                    "failure": {"Error": "States.TaskFailed", "Cause": json.dumps({"Status": "FAILED",
                                                                                   "Error": "DrillVerdictFail"})}})
        summary = _invoke(stack, recorder, step, {"step": "conclude", "campaign": campaign})
        assert (summary["ran"], summary["skipped"], summary["failed"]) == (1, 1, 1), summary
    return frozenset(step.calls)


@pytest.fixture(scope="module")
def calls() -> Iterator[frozenset[Call]]:
    yield campaign_calls()


@pytest.mark.parametrize("configuration", ["default", "with a KMS key"])
def test_the_campaign_role_grants_exactly_the_calls_its_steps_make(calls: frozenset[Call], configuration: str) -> None:
    stack = Stack(CONFIGURATIONS[configuration])
    recorded = _template_keys(stack, set(calls))
    used = recorded | runtime_calls(stack, "CampaignFunction", recorded)
    grants = stack.role_grants(stack.role_of("CampaignFunction"))

    extra, missing = unused_and_missing(grants, used)

    assert missing == [], "the campaign's steps call these but its role does not allow them"
    assert extra == [], "the campaign's role grants these but its steps never need them"


def test_the_campaign_role_writes_only_under_campaigns_and_reads_no_drill_evidence_but_assessments() -> None:
    grants = Stack({}).role_grants("CampaignFunctionRole")

    writes = {g.resource for g in grants if g.action == "s3:PutObject"}
    reads = {g.resource for g in grants if g.action == "s3:GetObject"}

    assert writes == {f"arn:aws:s3:::{BUCKET}/campaigns/*"}
    assert reads == {f"arn:aws:s3:::{BUCKET}/{p}" for p in ("campaign-specs/*", "campaigns/*",
                                                             "drills/*/assessment.json")}
    assert not any(g.action.startswith(("dynamodb:Put", "dynamodb:Update", "dynamodb:Delete", "s3:Delete"))
                   for g in grants)


def test_the_campaign_state_machine_role_allows_exactly_what_its_definition_needs() -> None:
    stack = Stack({})
    definition = json.loads(stack.template.state_machine_definition("CampaignStateMachine"))
    grants = grants_of(stack.inline_statements("CampaignStateMachineRole"))
    drills = stack.template.arn_of("DrillStateMachine")
    itself = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:livefire-local-CampaignStateMachine"
    needed = {
        *(Call("lambda:InvokeFunction", name) for name in invoked_functions(definition)),
        # the Distributed Map's ItemReader lists a round's items
        Call("s3:ListBucket", f"arn:aws:s3:::{BUCKET}", (("s3:prefix", f"campaigns/{CAMPAIGN}/rounds/0/"),)),
        # RunDrill (startExecution.sync:2): start the drill, follow it, stop it if the campaign is stopped
        Call("states:StartExecution", drills),
        *(Call(action, f"arn:aws:states:{REGION}:{ACCOUNT}:execution:livefire-local-DrillStateMachine:d-1")
          for action in ("states:DescribeExecution", "states:StopExecution")),
        *(Call(action, f"arn:aws:events:{REGION}:{ACCOUNT}:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule")
          for action in ("events:PutTargets", "events:PutRule", "events:DescribeRule")),
        # the Distributed Map's child workflow executions of this state machine
        Call("states:StartExecution", itself),
        *(Call(action, f"arn:aws:states:{REGION}:{ACCOUNT}:execution:livefire-local-CampaignStateMachine/map:1")
          for action in ("states:DescribeExecution", "states:StopExecution")),
    }

    extra, missing = unused_and_missing([g for g in grants if g.resource != "*"], needed)

    assert missing == [] and extra == []
    assert invoked_functions(definition) == {stack.template.arn_of("CampaignFunction")}
    assert {g.action for g in grants if g.resource == "*"} == STATE_MACHINE_STAR_ACTIONS
    assert Grant("s3:ListBucket", f"arn:aws:s3:::{BUCKET}",
                 json.dumps({"StringLike": {"s3:prefix": ["campaigns/*"]}}, sort_keys=True)) in grants
