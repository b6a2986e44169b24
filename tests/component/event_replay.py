"""Replays every file in events/ against its function's handler, in the order a drill sends them, on the sandbox.

Each event is invoked in-process (the handler of functions/<step>/app.py, loaded with its template.yaml environment)
inside ``sandbox_session``: moto for AWS, the fake Kubernetes API and regional services for the mesh. Every AWS API
call a handler makes is recorded, per function, through a botocore event hook (``before-parameter-build``,
registered for every botocore session created during the replay: Powertools makes its own), so
test_iam_least_privilege can compare what the code really calls with what template.yaml grants.

Besides the event files, a few extra invocations reach code paths the recorded drills do not: a Plan retried
with the same drill id, a Plan refused because the target is leased, and the guardian restoring a fault that
is still live. One replay per test session: its results are plain data.
"""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import boto3
import botocore.handlers
from botocore.awsrequest import AWSResponse

from livefire.spec import parse_spec
from livefire_local.aws import REGION, LocalStack
from livefire_local.lambda_server import LambdaContext
from livefire_local.runner import sandbox_session
from livefire_local.sandbox.mesh import SandboxMesh
from livefire_local.template import ACCOUNT
from tests.conftest import MESH_DIR, ROOT

EVENTS = ROOT / "events"
# An event file's name starts with the step it is for.
FUNCTION_OF_PREFIX = {
    "plan": "PlanFunction", "probe": "ProbeFunction", "assess": "AssessFunction", "inject": "InjectFunction",
    "rollback": "RollbackFunction", "evidence": "EvidenceFunction", "guardian": "GuardianFunction",
    "approval": "ApprovalFunction",
    "campaign": "CampaignFunction",  # a campaign's last step (docs/campaigns.md); its other steps need its specs
    "schedule": "PlanFunction",  # the state machine input a schedule sends: it reaches Plan as executionInput
}
# The order of a drill: a passing one, then one whose planned rollback failed (the execution FAILED, the
# guardian got its status change), then the sweep, then a scheduled drill's Plan.
ORDER = [
    "plan_active_passive.json", "probe_baseline.json", "assess_steady.json", "approval_gate.json",
    "inject_http_abort.json",
    "probe_drill.json", "rollback_planned.json", "assess_recovery.json", "evidence_completed.json",
    "plan_rollback_fails.json", "inject_rollback_fails.json", "rollback_emergency.json", "evidence_error.json",
    "guardian_execution_failed.json", "guardian_sweep.json", "schedule_input.json", "campaign_conclude.json",
]
SCHEDULED_DRILL_ID = "scheduled-drill-0001"
# The resource of a call this module cannot map yet (the IAM test names it): add a mapping to ``to_calls``.
UNMAPPED = "(no resource mapping in tests/component/event_replay.py)"

# Where the service's endpoint prefix differs from its IAM prefix, and operations whose IAM action has another name.
_IAM_PREFIX = {"monitoring": "cloudwatch"}
_IAM_ACTION = {
    ("s3", "ListObjectsV2"): "s3:ListBucket", ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "HeadObject"): "s3:GetObject", ("s3", "HeadBucket"): "s3:ListBucket",
    ("lambda", "Invoke"): "lambda:InvokeFunction",
}
_TRANSACT_ITEM = {
    "Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem",
}
# Calls no IAM policy governs (a presigned GetCallerIdentity is the EKS token; it needs no permission).
_NO_PERMISSION = {"sts:GetCallerIdentity"}


@dataclass(frozen=True)
class Call:
    """One AWS API call as IAM sees it: the action and the resource ARN it acts on."""

    action: str
    resource: str
    condition_keys: tuple[tuple[str, str], ...] = ()


@dataclass
class Step:
    name: str  # the event file, or a label for the extra invocations
    function: str  # logical id in template.yaml
    event: dict[str, Any]
    output: Any = None
    error: str | None = None
    calls: set[Call] = field(default_factory=set)
    expected_error: str | None = None  # the exception type an extra invocation is meant to end with


@dataclass
class Replay:
    steps: list[Step]

    def calls_of(self, function: str) -> set[Call]:
        return {call for step in self.steps if step.function == function for call in step.calls}


def function_of(event_file: str) -> str:
    prefix = event_file.split("_", 1)[0]
    if prefix not in FUNCTION_OF_PREFIX:
        raise KeyError(f"events/{event_file}: no function for prefix {prefix!r} (known: {sorted(FUNCTION_OF_PREFIX)})")
    return FUNCTION_OF_PREFIX[prefix]


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def to_calls(service: str, operation: str, params: dict[str, Any]) -> set[Call]:
    """The IAM actions and resources of one API call (as the Service Authorization Reference defines them)."""
    prefix = _IAM_PREFIX.get(service, service)
    action = _IAM_ACTION.get((prefix, operation), f"{prefix}:{operation}")
    if action in _NO_PERMISSION:
        return set()
    if prefix == "s3":
        bucket = params["Bucket"]
        if "Key" in params:  # a conditional write carries the s3:if-none-match key (template.yaml requires it)
            keys = (("s3:if-none-match", str(params["IfNoneMatch"])),) if "IfNoneMatch" in params else ()
            return {Call(action, f"arn:aws:s3:::{bucket}/{params['Key']}", keys)}
        return {Call(action, f"arn:aws:s3:::{bucket}", (("s3:prefix", str(params.get("Prefix", ""))),))}
    if action == "dynamodb:TransactWriteItems":  # authorized item by item, as the single-item actions
        return {call for item in params["TransactItems"] for kind, request in item.items()
                for call in to_calls(service, _TRANSACT_ITEM[kind], request)}
    if prefix == "dynamodb":
        table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{params['TableName']}"
        if "IndexName" in params:
            return {Call(action, f"{table}/index/{params['IndexName']}")}
        item = params.get("Item") or params.get("Key")
        if item is None:  # a Query: the reads are not scoped
            return {Call(action, table)}
        pk = item["pk"]["S"] if isinstance(item["pk"], dict) else item["pk"]  # client or resource parameters
        return {Call(action, table, (("dynamodb:LeadingKeys", str(pk)),))}
    if prefix == "kms":
        key = str(params["KeyId"])
        return {Call(action, key if key.startswith("arn:") else f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key}")}
    if action == "events:PutEvents":
        return {Call(action, _bus_arn(entry.get("EventBusName", "default"))) for entry in params["Entries"]}
    if action in ("states:DescribeExecution", "states:GetExecutionHistory"):
        return {Call(action, params["executionArn"])}
    if action == "cloudwatch:DescribeAlarms":
        return {Call(action, f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}") for name in params["AlarmNames"]}
    if action == "sqs:SendMessage":
        return {Call(action, f"arn:aws:sqs:{REGION}:{ACCOUNT}:{params['QueueUrl'].rsplit('/', 1)[-1]}")}
    return {Call(action, UNMAPPED)}


def _bus_arn(name: str) -> str:
    return name if name.startswith("arn:") else f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{name}"


class CallRecorder:
    """Records the API calls made while ``current`` names a function (handlers run one at a time here, but a
    handler may call AWS from its own worker threads, so this is not thread-local)."""

    def __init__(self) -> None:
        self.current: Step | None = None
        self._lock = threading.Lock()

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        step = self.current
        if step is None:
            return
        calls = to_calls(model.service_model.endpoint_prefix, model.name, params)
        with self._lock:
            step.calls |= calls

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Hook every botocore session created from now on (as moto hooks its own stubber), and the default one."""
        entry = ("before-parameter-build", self)
        botocore.handlers.BUILTIN_HANDLERS.append(entry)
        boto3.DEFAULT_SESSION = None
        try:
            yield
        finally:
            botocore.handlers.BUILTIN_HANDLERS.remove(entry)
            boto3.DEFAULT_SESSION = None


def invoke(stack: LocalStack, recorder: CallRecorder, step: Step) -> Step:
    function, handler = stack.lambdas.handler_for(f"livefire-{step.function}")
    context = LambdaContext(function.name, function.memory_mb, function.timeout, REGION)
    recorder.current = step
    try:
        step.output = handler(json.loads(json.dumps(step.event)), context)
    except Exception as exc:  # the Lambda runtime's view: the error type is what the state machine sees
        step.error = f"{type(exc).__name__}: {exc}"
    finally:
        recorder.current = None
    return step


@dataclass(frozen=True)
class Extra:
    label: str
    function: str
    event: dict[str, Any]
    expected_error: str | None = None
    before: Callable[[SandboxMesh, LocalStack], None] | None = None


def _fail_next_call(client: Any, operation: str, code: str, status: int) -> None:
    """The client's next ``operation`` answers ``code``/``status``, as AWS would (botocore raises the ClientError)."""
    event = f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}"
    unique_id = f"event-replay-{operation}"

    def fail(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        client.meta.events.unregister(event, unique_id=unique_id)
        response = AWSResponse(params.get("url", ""), status, {}, None)
        return response, {"Error": {"Code": code, "Message": f"injected {code}"},
                          "ResponseMetadata": {"HTTPStatusCode": status}}

    client.meta.events.register_first(event, fail, unique_id=unique_id)


def _runtime_of(stack: LocalStack, function: str) -> Any:
    """The Runtime a handler module built when it was loaded (its AWS clients)."""
    _function, handler = stack.lambdas.handler_for(f"livefire-{function}")
    return inspect.unwrap(handler).__globals__["runtime"]


def _renamed(plan: dict[str, Any], drill_id: str, **changes: Any) -> dict[str, Any]:
    prefix = plan["evidencePrefix"].replace(plan["drillId"], drill_id)
    return {**plan, "drillId": drill_id, "evidencePrefix": prefix, **changes}


def _extra_steps() -> list[Extra]:
    """Invocations for code paths the recorded drills do not take; they run after the events, in this order."""
    scheduled = _event_for("schedule_input.json")
    failing_plan = load_event("inject_rollback_fails.json")["plan"]
    live = _renamed(failing_plan, "live-fault-0001")
    missing_fault = {**failing_plan["faults"][0], "objectName": "no-such-virtualservice"}
    ended = load_event("guardian_execution_failed.json")

    other_target = json.loads(json.dumps(scheduled))
    other_target["drillId"] = "s3-failure-0001"
    other_target["executionArn"] = other_target["executionArn"].replace(SCHEDULED_DRILL_ID, "s3-failure-0001")
    other_target["executionInput"]["spec"]["fault"]["target"]["virtualService"] = "payments-internal"
    other_target["executionInput"]["spec"]["metadata"]["service"] = "payments-internal"  # payments is leased

    def fail_next_restore(mesh: SandboxMesh, _stack: LocalStack) -> None:
        cluster = failing_plan["faults"][0]["cluster"]["sandbox"]
        mesh.apis[cluster].fail_next("PATCH", f"virtualservices/{failing_plan['faults'][0]['objectName']}", 500)

    def fail_next_plan_write(_mesh: SandboxMesh, stack: LocalStack) -> None:
        _fail_next_call(_runtime_of(stack, "PlanFunction").s3, "PutObject", "InternalError", 500)

    return [
        Extra("plan, retried by its own execution", "PlanFunction", scheduled),
        Extra("plan, target leased by the scheduled drill", "PlanFunction",
              {**scheduled, "drillId": "leased-target-0001"}, "DrillInProgress"),
        Extra("guardian sweep, a lease held by a running drill", "GuardianFunction", load_event("guardian_sweep.json")),
        Extra("plan, S3 fails after the lease was taken", "PlanFunction", other_target, "ClientError",
              before=fail_next_plan_write),
        Extra("inject, the target object does not exist", "InjectFunction",
              {"plan": _renamed(failing_plan, "missing-target-0001", faults=[missing_fault])}, "FaultInjectionFailed"),
        Extra("inject, a fault left live", "InjectFunction", {"plan": live}),
        Extra("rollback, the Kubernetes API fails", "RollbackFunction", {"plan": live, "emergency": False},
              "RollbackFailed", before=fail_next_restore),
        Extra("guardian, execution aborted with the fault live", "GuardianFunction",
              {**ended, "detail": {**ended["detail"], "name": "live-fault-0001", "status": "ABORTED",
                                   "executionArn": ended["detail"]["executionArn"].rsplit(":", 1)[0]
                                   + ":live-fault-0001"}}),
        Extra("guardian, ends the scheduled drill aborted before its Evidence step (Drill Completed)",
              "GuardianFunction",
              {**ended, "detail": {**ended["detail"], "name": SCHEDULED_DRILL_ID, "status": "ABORTED",
                                   "executionArn": scheduled["executionArn"]}}),
    ]


def _event_for(name: str) -> dict[str, Any]:
    event = load_event(name)
    if name.startswith("schedule_"):
        return {"drillId": SCHEDULED_DRILL_ID, "executionInput": event,
                "executionArn": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:livefire-local-DrillStateMachine:"
                                f"{SCHEDULED_DRILL_ID}"}
    return event


@cache
def replay() -> Replay:
    spec = parse_spec(load_event("plan_active_passive.json")["executionInput"]["spec"])
    recorder = CallRecorder()
    steps: list[Step] = []
    with recorder.installed(), sandbox_session(spec, MESH_DIR, ROOT) as (mesh, stack):
        for name in ORDER:
            steps.append(invoke(stack, recorder, Step(name, function_of(name), _event_for(name))))
        for extra in _extra_steps():
            if extra.before is not None:
                extra.before(mesh, stack)
            steps.append(invoke(stack, recorder, Step(extra.label, extra.function, extra.event,
                                                      expected_error=extra.expected_error)))
    return Replay(steps)


def event_files() -> list[str]:
    return sorted(path.name for path in EVENTS.glob("*.json"))
