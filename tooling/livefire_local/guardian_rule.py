"""The guardian's EventBridge rule and sweep schedule, in local mode.

moto's Step Functions does not emit "Step Functions Execution Status Change" events, so when a local execution
ends this module publishes the event Step Functions would send, through moto's EventBridge, on a rule built from
template.yaml's ``GuardianFunction`` ``EventBridgeRule`` pattern (so a rule that would not fire in the cloud does
not fire here either). The rule's target is an SQS queue, read here, and each delivered event invokes the guardian
function through the Lambda endpoint, exactly as the rule's Lambda target would. ``sweep()`` invokes it with the
sweep schedule's input. Both are asynchronous invocations in the cloud, and are treated so here: a failed attempt
is retried ``MaximumRetryAttempts`` times (template.yaml's ``EventInvokeConfig``, default 2; without Lambda's
minutes of backoff) and the event of the last failure goes to the function's dead-letter queue, the queue
GuardianFailedAlarm watches.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3

from livefire_local.aws import REGION, LocalStack
from livefire_local.template import LocalTemplate

GUARDIAN = "GuardianFunction"
RULE_NAME = "livefire-local-guardian-rule"
QUEUE_NAME = "livefire-local-guardian-rule-target"
STATUS_CHANGE = "Step Functions Execution Status Change"
DEFAULT_RETRY_ATTEMPTS = 2  # Lambda's MaximumRetryAttempts for asynchronous invocations


def _event_source(template: LocalTemplate, kind: str) -> dict[str, Any]:
    events = template.resources[GUARDIAN]["Properties"].get("Events", {})
    for event in events.values():
        if event.get("Type") == kind:
            properties: dict[str, Any] = event["Properties"]
            return properties
    raise KeyError(f"template.yaml: {GUARDIAN} has no {kind} event")


def _resolve_pattern(template: LocalTemplate, node: Any) -> Any:
    """Resolve the pattern's intrinsics; ``Ref`` of a state machine is its ARN, as in CloudFormation."""
    if isinstance(node, dict) and set(node) == {"Ref"}:
        target = template.resources.get(str(node["Ref"]), {})
        if target.get("Type") == "AWS::Serverless::StateMachine":
            return template.arn_of(str(node["Ref"]))
        return template.resolve(node)
    if isinstance(node, dict):
        if len(node) == 1 and next(iter(node)).startswith("Fn::"):
            return template.resolve(node)
        return {key: _resolve_pattern(template, value) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve_pattern(template, item) for item in node]
    return node


def rule_pattern(template: LocalTemplate) -> dict[str, Any]:
    pattern: dict[str, Any] = _resolve_pattern(template, _event_source(template, "EventBridgeRule")["Pattern"])
    return pattern


def sweep_input(template: LocalTemplate) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(_event_source(template, "ScheduleV2")["Input"])
    return value


def status_change_detail(execution: dict[str, Any]) -> dict[str, Any]:
    """The ``detail`` of the status-change event for a DescribeExecution result."""

    def epoch_ms(value: Any) -> int | None:
        return int(value.timestamp() * 1000) if value is not None else None

    detail: dict[str, Any] = {
        "executionArn": execution["executionArn"], "stateMachineArn": execution["stateMachineArn"],
        "name": execution["name"], "status": execution["status"],
        "startDate": epoch_ms(execution.get("startDate")), "stopDate": epoch_ms(execution.get("stopDate")),
        "input": execution.get("input"), "inputDetails": {"included": True},
        "output": execution.get("output"), "outputDetails": {"included": True} if execution.get("output") else None,
    }
    if execution.get("error") or execution.get("cause"):
        detail["error"] = execution.get("error")
        detail["cause"] = execution.get("cause")
    return detail


def _queue(template: LocalTemplate) -> str:
    """Create (idempotently) the rule and its queue target; returns the queue URL."""
    sqs = boto3.client("sqs", region_name=REGION)
    url: str = sqs.create_queue(QueueName=QUEUE_NAME)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = boto3.client("events", region_name=REGION)
    events.put_rule(Name=RULE_NAME, EventPattern=json.dumps(rule_pattern(template)), State="ENABLED")
    events.put_targets(Rule=RULE_NAME, Targets=[{"Id": "guardian", "Arn": arn}])
    return url


def _attempts(template: LocalTemplate) -> int:
    """The first attempt of an asynchronous invocation and Lambda's retries of it."""
    config = template.resources[GUARDIAN]["Properties"].get("EventInvokeConfig") or {}
    return 1 + int(config.get("MaximumRetryAttempts", DEFAULT_RETRY_ATTEMPTS))


def dead_letter_queue(template: LocalTemplate) -> str:
    """The URL of the guardian's dead-letter queue (created, idempotently, under its template name)."""
    arn = str(template.resolve(template.resources[GUARDIAN]["Properties"]["DeadLetterQueue"]["TargetArn"]))
    queue: str = boto3.client("sqs", region_name=REGION).create_queue(QueueName=arn.rsplit(":", 1)[1])["QueueUrl"]
    return queue


def dead_letters(stack: LocalStack) -> list[dict[str, Any]]:
    """Take the guardian events in the dead-letter queue: each body with its ``ErrorCode`` and ``ErrorMessage``."""
    sqs, url = boto3.client("sqs", region_name=REGION), dead_letter_queue(stack.template)
    letters: list[dict[str, Any]] = []
    for _batch in range(100):  # bounded: the queue holds what failed guardians left
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                       MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            break
        for message in messages:
            attributes = {k: v.get("StringValue") for k, v in (message.get("MessageAttributes") or {}).items()}
            letters.append({"event": json.loads(message["Body"]), **attributes})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return letters


def invoke_guardian(stack: LocalStack, event: dict[str, Any]) -> dict[str, Any]:
    """Invoke the guardian function through the Lambda endpoint (the in-process server or `sam local`) as an
    asynchronous invocation: retried when it fails, and dead-lettered after the last failure.

    Returns its report, or for a failed invocation ``{"errorType", "errorMessage"}``: as in the cloud, a failed
    guardian does not fail the drill; its alarm and the sweeper are there for that case."""
    payload: dict[str, Any] = {}
    for _attempt in range(_attempts(stack.template)):
        response = boto3.client("lambda", region_name=REGION).invoke(
            FunctionName=stack.template.physical_names[GUARDIAN], Payload=json.dumps(event).encode(),
        )
        payload = json.loads(response["Payload"].read() or b"{}")
        if not response.get("FunctionError"):
            return payload
    boto3.client("sqs", region_name=REGION).send_message(
        QueueUrl=dead_letter_queue(stack.template), MessageBody=json.dumps(event),
        MessageAttributes={name: {"DataType": "String", "StringValue": str(payload.get(key, ""))[:1000] or "-"}
                           for name, key in (("ErrorCode", "errorType"), ("ErrorMessage", "errorMessage"))},
    )
    return payload


def deliver_status_change(stack: LocalStack, execution_arn: str) -> list[dict[str, Any]]:
    """Publish the ended execution's status change and run the guardian for every event the rule delivers.

    Returns the guardian's reports (none when the rule does not match, e.g. SUCCEEDED)."""
    execution = boto3.client("stepfunctions", region_name=REGION).describe_execution(executionArn=execution_arn)
    if execution["status"] == "RUNNING":
        raise ValueError(f"{execution_arn} is still running: Step Functions sends no status change yet")
    url = _queue(stack.template)
    boto3.client("events", region_name=REGION).put_events(Entries=[{
        "Source": "aws.states", "DetailType": STATUS_CHANGE, "Resources": [execution_arn],
        "Detail": json.dumps(status_change_detail(execution)),
    }])
    sqs = boto3.client("sqs", region_name=REGION)
    reports = []
    for _batch in range(10):  # bounded: one event was published
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            break
        for message in messages:
            reports.append(invoke_guardian(stack, json.loads(message["Body"])))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return reports


def sweep(stack: LocalStack) -> dict[str, Any]:
    """One run of the guardian's sweep schedule."""
    return invoke_guardian(stack, sweep_input(stack.template))


def deliver_when_ended(stack: LocalStack, execution_arn: str, *, wait_s: float,
                       poll_s: float = 0.2) -> list[dict[str, Any]]:
    """After a stop: wait (bounded) for the execution to end, then deliver its status change (the guardian's
    reports; none when it is still running, and then the sweeper restores its faults once they expire)."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    give_up = time.monotonic() + wait_s
    while sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING":
        if time.monotonic() > give_up:
            return []
        time.sleep(poll_s)
    return deliver_status_change(stack, execution_arn)
