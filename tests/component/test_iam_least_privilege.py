"""Least privilege, checked against what the code really does.

Every AWS API call each function makes while events/ is replayed on the sandbox (tests/component/event_replay.py)
becomes an IAM action on a resource; each function's role in template.yaml must allow every one of them (nothing
missing) and grant nothing that none of them needs (nothing extra). Calls the sandbox cannot make are mapped from
the code that makes them (see CODE_CALLS and runtime_calls). The state machine's role is checked against the
functions its definition invokes.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from livefire_local.template import ACCOUNT, LocalTemplate
from tests.component.event_replay import UNMAPPED, Call, replay
from tests.conftest import ROOT

REGION = "us-east-1"
BUCKET = "livefire-local-evidencebucket"
PACKAGE = ROOT / "layers" / "livefire"
SUMMARY_TOPIC = f"arn:aws:sns:eu-west-1:{ACCOUNT}:drill-summaries"
APPROVAL_TOPICS = [f"arn:aws:sns:eu-west-1:{ACCOUNT}:drill-approvals", f"arn:aws:sns:{REGION}:{ACCOUNT}:sre-oncall"]
KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0b9e6c3e-1f7c-4a53-9d5e-2c1c3a4b5d6e"
FIS_TEMPLATES = ["EXTa1b2c3d4e5f6g7", "EXT7g6f5e4d3c2b1a"]
WEBHOOK_SECRETS = ["livefire/webhooks/runbook", "chaos-bot"]
OUTSIDE_THE_MESH = {"AllowedFisTemplates": ",".join(FIS_TEMPLATES), "AllowedWebhookSecrets": ",".join(WEBHOOK_SECRETS)}
CLUSTERS = ["us-east-1/payments-use1", "us-west-2/payments-usw2"]
MARKER_TABLES = ["livefire-markers", "orders.markers"]
WORKSPACES = ["us-west-2/ws-0a1b2c3d-4e5f-6789-abcd-ef0123456789", "eu-west-1/ws-1"]
TELEMETRY_SECRETS = [f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:livefire/prometheus-AbC123"]
# Roles in other accounts (target-account.yaml) that a region's EKS cluster is reached through.
TRUSTED_ROLES = ["arn:aws:iam::210987654321:role/livefire-target", "arn:aws:iam::111122223333:role/livefire-target"]
CONFIGURATIONS = {"default": {}, "with a KMS key": {"KmsKeyArn": KMS_KEY},
                  "with FIS templates and webhook secrets": OUTSIDE_THE_MESH,
                  "with allowed clusters": {"AllowedClusters": ",".join(CLUSTERS)},
                  "with marker tables": {"MarkerTables": ",".join(MARKER_TABLES)},
                  "with telemetry": {"TelemetryWorkspaces": ",".join(WORKSPACES),
                                     "TelemetrySecrets": ",".join(TELEMETRY_SECRETS)},
                  "with a summary topic and a control mapping": {"SummaryTopicArn": SUMMARY_TOPIC,
                                                                 "ControlMappingKey": "config/controls.yaml"},
                  "with approval topics": {"ApprovalTopicArns": ",".join(APPROVAL_TOPICS)},
                  "with trusted roles in other accounts": {"TrustedRoleArns": ",".join(TRUSTED_ROLES)}}

# Calls the sandbox cannot make, mapped from the code that makes them: a function whose handler reaches the module
# (its imports, followed from functions/<step>/app.py) makes the call; the marker proves the module still does.
CODE_CALLS = {
    # dataChecks (the sandbox specs the replay runs name none): Probe writes the marker chunks, Plan the cleanup
    # record's document before any marker exists.
    "livefire.datachecks.marking": (
        "marker_key(prefix, vantage, first + chunk)",
        Call("s3:PutObject", f"arn:aws:s3:::{BUCKET}/drills/payments/d-1/markers/default-00000000.jsonl.gz"),
    ),
    "livefire.planning": (
        "_open_marker_cleanup(",
        Call("s3:PutObject", f"arn:aws:s3:::{BUCKET}/drills/payments/d-1/faults/data-check-markers-markers.json"),
    ),
    # guardrails.alarms of a drill spec (the sandbox specs name none), each read in its own region.
    "livefire.guardrails": (
        "describe_alarms(",
        Call("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:payments-5xx"),
    ),
    # telemetry (the sandbox specs the replay runs name none): Assess keeps the raw answers of its queries.
    "livefire.telemetry.measure": (
        'save(f"{TELEMETRY_FOLDER}{query.name}.json"',
        Call("s3:PutObject", f"arn:aws:s3:::{BUCKET}/drills/payments/d-1/telemetry/requests.json"),
    ),
    # cost.json: the replayed events name executions the local stack never ran, so their history cannot be priced.
    "livefire.evidence.publish": (
        "artifacts[COST] = runtime.put_json(",
        Call("s3:PutObject", f"arn:aws:s3:::{BUCKET}/drills/payments/d-1/cost.json"),
    ),
}
# Faults outside the mesh (livefire/faults/): the sandbox has neither FIS nor Secrets Manager, so their calls are
# mapped per function from the code that makes them, and only when the deployment allows some template or secret:
#   Inject (lifecycle.inject_faults -> FisDriver.apply): StartExperiment (authorized on the template and on the
#     experiment it creates, tagged at creation: TagResource), GetExperiment polls, StopExperiment when a rollback
#     closed the record while the experiment was starting (the lifecycle's late undo); GetExperimentTemplate in a
#     dry run.
#   Rollback, Guardian (lifecycle.rollback_faults / restore_drill -> FisDriver.restore): GetExperiment,
#     StopExperiment, and ListExperiments to find by its tags an experiment whose id an Inject never stored.
#   All three (WebhookDriver.apply / restore -> call): GetSecretValue of a fault's headersSecret.
#   Inject, Rollback, Evidence, Guardian (livefire.mesh.kube): DescribeCluster of an EKS cluster, in its own region,
#     for each cluster the deployment lists in AllowedClusters (the sandbox's clusters are fake API servers, not EKS).
# Each entry: (module, marker proving it still makes the call, action); the handler must reach the module.
_FIS_STOP = [("livefire.faults.fis", "get_experiment(", "fis:GetExperiment"),
             ("livefire.faults.fis", "stop_experiment(", "fis:StopExperiment")]
_WEBHOOK = [("livefire.faults.webhook", "get_secret_value(", "secretsmanager:GetSecretValue")]
# A region of another account (its cluster, marker tables, AMP workspace, alarms), through a role TrustedRoleArns
# lists (livefire/accounts.py).
_ASSUME = ("livefire.accounts", "assume_role(", "sts:AssumeRole")
_EKS = [("livefire.mesh.kube", "describe_cluster(", "eks:DescribeCluster"), _ASSUME]
# dataChecks of kind dynamodb (livefire/datachecks/stores.py), on the MarkerTables only: Probe puts, reads back and
# deletes its markers; every rollback (Rollback, Guardian) deletes them too (datachecks/cleanup.py).
_MARKER_CLEANUP = [("livefire.datachecks.stores", '"scan"', "dynamodb:Scan"),
                   ("livefire.datachecks.stores", "delete_item,", "dynamodb:DeleteItem")]
_MARKERS = [("livefire.datachecks.stores", "put_item,", "dynamodb:PutItem"),
            ("livefire.datachecks.stores", "batch_get_item,", "dynamodb:BatchGetItem"), *_MARKER_CLEANUP]
# Evidence, on the SummaryTopicArn and ControlMappingKey parameters: the stakeholders' summary and the deployment's
# control mapping (the replay sets neither).
_REVIEW = [("livefire.evidence.summary", "sns.publish(", "sns:Publish"),
           ("livefire.evidence.controls", "s3.get_object(", "s3:GetObject")]
EXTERNAL_CALLS = {
    "EvidenceFunction": [*_EKS, *_REVIEW],
    "InjectFunction": [*_EKS, ("livefire.faults.fis", "start_experiment(", "fis:StartExperiment"),
                       ("livefire.faults.fis", "get_experiment_template(", "fis:GetExperimentTemplate"),
                       ("livefire.faults.fis", "tags={TAG_DRILL", "fis:TagResource"), *_FIS_STOP, *_WEBHOOK],
    "RollbackFunction": [*_EKS, *_FIS_STOP, ("livefire.faults.fis", '"list_experiments"', "fis:ListExperiments"),
                         *_WEBHOOK, *_MARKER_CLEANUP],
    "GuardianFunction": [*_EKS, *_FIS_STOP, ("livefire.faults.fis", '"list_experiments"', "fis:ListExperiments"),
                         *_WEBHOOK, *_MARKER_CLEANUP],
    "ProbeFunction": [*_MARKERS, _ASSUME],  # markers and guardrails.alarms of another account
    # telemetry: an amp workspace's query (SigV4 for aps) and a prometheus tokenSecret, on the Telemetry* parameters
    # the go/no-go gate's request on the spec's approval.topic, one of the ApprovalTopicArns (the replay names none)
    "ApprovalFunction": [("livefire.approval", ".publish(TopicArn=gate.topic", "sns:Publish")],
    "AssessFunction": [("livefire.telemetry.client", "SigV4Auth(", "aps:QueryMetrics"),
                       ("livefire.telemetry.client", "get_secret_value(", "secretsmanager:GetSecretValue"), _ASSUME],
}
# The experiment a fis fault starts, in the fault's region (any region of the drill).
EXPERIMENT = f"arn:aws:fis:us-west-2:{ACCOUNT}:experiment/EXPq1w2e3r4t5y6u7"
# The one action a function role is granted on Resource "*": ListExperiments has no resource-level permission.
STAR_ACTIONS = {"fis:ListExperiments"}
# The only resource patterns with a wildcard a function may be granted, and why each needs one.
WILDCARD_RESOURCES = {
    f"arn:aws:s3:::{BUCKET}/drills/*": "reading the evidence objects of every drill",
    f"arn:aws:s3:::{BUCKET}/drills/*/spec.json": "Plan writes each drill's spec",
    f"arn:aws:s3:::{BUCKET}/drills/*/plan.json": "and its plan",
    f"arn:aws:s3:::{BUCKET}/drills/*/samples/*": "Probe writes each drill's sample chunks",
    f"arn:aws:s3:::{BUCKET}/drills/*/markers/*": "and its data checks' marker chunks",
    f"arn:aws:s3:::{BUCKET}/drills/*/faults/data-check-markers-markers.json": "Plan opens each drill's marker cleanup",
    f"arn:aws:s3:::{BUCKET}/drills/*/faults/*-*.json": "the fault steps write each fault's documents",
    f"arn:aws:s3:::{BUCKET}/drills/*/assessment.json": "Assess writes each drill's assessment",
    f"arn:aws:s3:::{BUCKET}/drills/*/timeline.json": "and the report's timeline chart it binned",
    f"arn:aws:s3:::{BUCKET}/drills/*/telemetry/*": "and the raw answers of its telemetry queries",
    **{f"arn:aws:s3:::{BUCKET}/drills/*/{name}": "Evidence writes each drill's reports, records and seal"
       for name in ("faults/records.json", "approval.json", "posture.json", "cost.json", "report.md", "report.html",
                    "manifest.json",
                    "signature.json")},
    f"arn:aws:cloudwatch:*:{ACCOUNT}:alarm:*": "alarms are named by drill specs, each in its own region",
    f"arn:aws:states:{REGION}:{ACCOUNT}:execution:livefire-local-DrillStateMachine:*": "the drill executions",
    f"arn:aws:fis:*:{ACCOUNT}:experiment/*": "experiments are created by StartExperiment, in the fault's region",
}
# Resource "*" is granted only through these managed policies, for actions without resource-level permissions.
STAR_POLICIES = {
    "FunctionTracingPolicy": {"xray:PutTraceSegments", "xray:PutTelemetryRecords"},
    "FunctionNetworkPolicy": {"ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
                              "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses",
                              "ec2:UnassignPrivateIpAddresses"},
}
# The state machine: X-Ray tracing and CloudWatch Logs vended log delivery accept only Resource "*".
STATE_MACHINE_STAR_ACTIONS = {
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
}


@dataclass(frozen=True)
class Grant:
    action: str
    resource: str
    condition: str  # the statement's Condition as JSON ("" when none)


def _pattern(resource: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in resource) + r"\Z")


def _like(value: str, patterns: str | list[str]) -> bool:
    return any(_pattern(pattern).match(value) for pattern in ([patterns] if isinstance(patterns, str) else patterns))


def allows(grant: Grant, call: Call) -> bool:
    """Whether the grant allows the call: its action, its resource and every condition operator of the statement
    (StringLike, ForAllValues:StringLike on a single-valued key such as dynamodb:LeadingKeys, and Null)."""
    if grant.action != call.action or not _pattern(grant.resource).match(call.resource):
        return False
    keys = dict(call.condition_keys)
    for operator, tests in (json.loads(grant.condition) if grant.condition else {}).items():
        for key, wanted in tests.items():
            if operator == "StringLike" and not (key in keys and _like(keys[key], wanted)):
                return False
            if operator == "ForAllValues:StringLike" and key in keys and not _like(keys[key], wanted):
                return False
            if operator == "Null" and (key not in keys) != (wanted == "true"):
                return False
            if operator not in ("StringLike", "ForAllValues:StringLike", "Null"):
                raise AssertionError(f"this test does not evaluate the condition operator {operator}")
    return True


def grants_of(statements: list[dict[str, Any]]) -> list[Grant]:
    grants = []
    for statement in statements:
        assert statement["Effect"] == "Allow", statement
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        condition = json.dumps(statement["Condition"], sort_keys=True) if "Condition" in statement else ""
        grants += [Grant(a, r, condition) for a in actions for r in resources]
    return grants


def unused_and_missing(grants: list[Grant], used: set[Call]) -> tuple[list[Grant], list[Call]]:
    """Grants no call needs (extra) and calls no grant allows (missing)."""
    extra = [grant for grant in grants if not any(allows(grant, call) for call in used)]
    missing = [call for call in sorted(used, key=str) if not any(allows(grant, call) for grant in grants)]
    return extra, missing


class Stack:
    """template.yaml resolved with some parameters, as local names (the replay's bucket, table, ...)."""

    def __init__(self, parameters: dict[str, str]) -> None:
        self.template = LocalTemplate.load(ROOT, REGION, parameters=parameters)
        self.logical_of = {name: logical for logical, name in self.template.physical_names.items()}

    def resource(self, logical_id: str) -> dict[str, Any]:
        resolved: dict[str, Any] = self.template.resolve(self.template.resources[logical_id])
        return resolved

    def functions(self) -> list[str]:
        return sorted(self.template.resources_of_type("AWS::Serverless::Function"))

    def role_of(self, logical_id: str) -> str:
        role = self.template.resources[logical_id]["Properties"]["Role"]
        return str(role["Fn::GetAtt"][0])

    def inline_statements(self, role: str) -> list[dict[str, Any]]:
        policies = self.resource(role)["Properties"].get("Policies", [])
        return [statement for policy in policies for statement in policy["PolicyDocument"]["Statement"]]

    def key_statements(self, role: str) -> list[dict[str, Any]]:
        """What the KMS key policies allow the role itself (their Resource "*" is the key)."""
        arn = self.template.arn_of(role)
        statements = []
        for key in self.template.resources_of_type("AWS::KMS::Key"):
            for statement in self.resource(key)["Properties"]["KeyPolicy"]["Statement"]:
                if statement["Effect"] == "Allow" and statement["Principal"].get("AWS") == arn:
                    statements.append({**statement, "Resource": self.template.arn_of(key)})
        return statements

    def role_grants(self, role: str) -> list[Grant]:
        return grants_of(self.inline_statements(role) + self.key_statements(role))

    def managed_policies(self, role: str) -> list[str]:
        return [self.logical_of[name] for name in self.resource(role)["Properties"].get("ManagedPolicyArns", [])]

    def log_group_arn(self, function: str) -> str:
        log_group = self.template.resources[function]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        return self.template.arn_of(log_group)


def modules_reached(app: Path) -> set[str]:
    """The livefire modules a handler imports, directly or not (lazy imports included), found in the source."""
    seen: set[str] = set()
    todo = [app]
    while todo:
        tree = ast.parse(todo.pop().read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            for name in names:
                parts = name.split(".")
                for depth in range(1, len(parts) + 1):
                    module = ".".join(parts[:depth])
                    path = _module_path(module)
                    if module.startswith("livefire") and path is not None and module not in seen:
                        seen.add(module)
                        todo.append(path)
    return seen


def _module_path(module: str) -> Path | None:
    base = PACKAGE.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def code_calls(stack: Stack, function: str) -> set[Call]:
    code_dir = ROOT / stack.template.resources[function]["Properties"]["CodeUri"]
    reached = modules_reached(code_dir / "app.py")
    calls = set()
    for module, (marker, call) in CODE_CALLS.items():
        path = _module_path(module)
        assert path is not None and marker in path.read_text(), f"{module} no longer calls {marker}: update CODE_CALLS"
        if module in reached:
            calls.add(call)
    return calls


def listed(stack: Stack, parameter: str) -> list[str]:
    value = str(stack.template.parameter(parameter))
    return value.split(",") if value else []


def external_resources(stack: Stack, action: str, function: str = "") -> list[str]:
    """The resources of one external call, for each template or secret the deployment allows (none when unset)."""
    templates, secrets = listed(stack, "AllowedFisTemplates"), listed(stack, "AllowedWebhookSecrets")
    if action == "sns:Publish":
        return listed(stack, "ApprovalTopicArns" if function == "ApprovalFunction" else "SummaryTopicArn")
    if action == "s3:GetObject":
        return [f"arn:aws:s3:::{BUCKET}/{key}" for key in listed(stack, "ControlMappingKey")]
    if action == "aps:QueryMetrics":
        workspaces = listed(stack, "TelemetryWorkspaces")
        return [f"arn:aws:aps:{ws.replace('/', f':{ACCOUNT}:workspace/')}" for ws in workspaces]
    if action == "secretsmanager:GetSecretValue" and function == "AssessFunction":
        return listed(stack, "TelemetrySecrets")
    if action == "sts:AssumeRole":
        return [role for role in stack.template.parameter("TrustedRoleArns") if role]
    if action == "eks:DescribeCluster":
        return [f"arn:aws:eks:{cluster.replace('/', f':{ACCOUNT}:cluster/')}" for cluster in listed(stack,
                                                                                                  "AllowedClusters")]
    if action.startswith("dynamodb:"):  # a marker table, in a replica region
        return [f"arn:aws:dynamodb:us-west-2:{ACCOUNT}:table/{name}" for name in listed(stack, "MarkerTables")]
    if action == "secretsmanager:GetSecretValue":
        return [f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbC123" for name in secrets]
    if not templates:
        return []
    if action == "fis:ListExperiments":
        return ["*"]
    if action == "fis:StartExperiment":
        return [f"arn:aws:fis:us-west-2:{ACCOUNT}:experiment-template/{id_}" for id_ in templates] + [EXPERIMENT]
    if action == "fis:GetExperimentTemplate":  # a dry run
        return [f"arn:aws:fis:us-west-2:{ACCOUNT}:experiment-template/{id_}" for id_ in templates]
    return [EXPERIMENT]


def external_calls(stack: Stack, function: str) -> set[Call]:
    reached = modules_reached(ROOT / stack.template.resources[function]["Properties"]["CodeUri"] / "app.py")
    calls = set()
    for module, marker, action in EXTERNAL_CALLS.get(function, []):
        path = _module_path(module)
        assert path is not None and marker in path.read_text(), f"{module} lacks {marker}: update EXTERNAL_CALLS"
        assert module in reached, f"{function} no longer reaches {module}: update EXTERNAL_CALLS"
        calls |= {Call(action, resource) for resource in external_resources(stack, action, function)}
    return calls


def external_wildcards(stack: Stack) -> set[str]:
    """The per-template, per-secret and per-cluster grants: Fn::Join's delimiter is a literal, so partition,
    account (and for templates and secrets, region) are wildcards (template.yaml)."""
    return {f"arn:*:fis:*:*:experiment-template/{id_}" for id_ in listed(stack, "AllowedFisTemplates")} | {
        f"arn:*:secretsmanager:*:*:secret:{name}-??????" for name in listed(stack, "AllowedWebhookSecrets")} | {
        f"arn:*:eks:{cluster.replace('/', ':*:cluster/')}" for cluster in listed(stack, "AllowedClusters")} | {
        f"arn:*:dynamodb:*:*:table/{name}" for name in listed(stack, "MarkerTables")} | {
        f"arn:*:aps:{ws.replace('/', ':*:workspace/')}" for ws in listed(stack, "TelemetryWorkspaces")}


def runtime_calls(stack: Stack, function: str, recorded: set[Call]) -> set[Call]:
    """What the Lambda service does with the function's role: its logs, its dead-letter queue, and (SSE-KMS) the
    key operations S3 makes on the caller's behalf for each object it reads or writes."""
    stream = stack.log_group_arn(function).removesuffix(":*") + ":log-stream:2026/01/01/[$LATEST]0123456789abcdef"
    calls = {Call("logs:CreateLogStream", stream), Call("logs:PutLogEvents", stream)}
    properties = stack.resource(function)["Properties"]
    if "DeadLetterQueue" in properties:
        calls.add(Call("sqs:SendMessage", properties["DeadLetterQueue"]["TargetArn"]))
    key = stack.template.parameter("KmsKeyArn")
    actions = {call.action for call in recorded}
    if key and "s3:PutObject" in actions:
        calls.add(Call("kms:GenerateDataKey", key))
    if key and "s3:GetObject" in actions:
        calls.add(Call("kms:Decrypt", key))
    return calls


def _template_keys(stack: Stack, calls: set[Call]) -> set[Call]:
    """The replay's KMS key has the id moto gave it: the template's (only) key stands in for it."""
    (key,) = [stack.template.arn_of(k) for k in stack.template.resources_of_type("AWS::KMS::Key")]
    return {Call(c.action, key, c.condition_keys) if c.action.startswith("kms:") else c for c in calls}


def used_by(stack: Stack, function: str) -> set[Call]:
    recorded = _template_keys(stack, replay().calls_of(function))
    return (recorded | code_calls(stack, function) | external_calls(stack, function)
            | runtime_calls(stack, function, recorded))


# Functions whose calls the replay of events/ does not make, each checked the same way by its own module.
CHECKED_ELSEWHERE = {"CampaignFunction": "tests/component/test_campaign_least_privilege.py"}


def _functions() -> Iterator[str]:
    yield from (f for f in Stack({}).functions() if f not in CHECKED_ELSEWHERE)


@pytest.mark.slow
@pytest.mark.parametrize("configuration", CONFIGURATIONS)
@pytest.mark.parametrize("function", list(_functions()))
def test_each_function_role_grants_exactly_the_calls_its_code_makes(function: str, configuration: str) -> None:
    stack = Stack(CONFIGURATIONS[configuration])
    used = used_by(stack, function)
    grants = stack.role_grants(stack.role_of(function))

    extra, missing = unused_and_missing(grants, used)

    assert [call for call in used if call.resource == UNMAPPED] == []
    assert missing == [], f"{function} calls these but its role does not allow them"
    assert extra == [], f"{function}'s role grants these but its code never needs them"
    assert {grant.action for grant in grants if grant.resource == "*"} <= STAR_ACTIONS
    for grant in grants:
        if "*" in grant.resource and grant.resource != "*" and not grant.resource.startswith("arn:aws:logs:"):
            assert grant.resource in WILDCARD_RESOURCES or grant.resource in external_wildcards(stack), grant


@pytest.mark.slow
def test_every_replayed_invocation_ends_as_its_scenario_intends() -> None:
    outcomes = [(step.name, (step.error or "").split(":", 1)[0] or None) for step in replay().steps]

    assert outcomes == [(step.name, step.expected_error) for step in replay().steps]


def test_the_check_names_an_action_a_function_gains_without_using_it() -> None:
    stack = Stack({})
    statements = stack.inline_statements(stack.role_of("PlanFunction"))
    table = stack.template.arn_of("DrillTable")
    statements.append({"Effect": "Allow", "Action": ["dynamodb:Scan", "dynamodb:PutItem"], "Resource": table})

    extra, missing = unused_and_missing(grants_of(statements), used_by(stack, "PlanFunction"))

    assert extra == [Grant("dynamodb:Scan", table, "")]
    assert missing == []


def test_the_check_names_a_call_no_statement_allows() -> None:
    stack = Stack({})
    role = stack.role_of("EvidenceFunction")
    statements = [s for s in stack.inline_statements(role) + stack.key_statements(role)
                  if "events:PutEvents" not in s["Action"]]

    _extra, missing = unused_and_missing(grants_of(statements), used_by(stack, "EvidenceFunction"))

    assert missing == [Call("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default")]


def test_a_listing_is_allowed_only_under_the_drills_prefix() -> None:
    grant = Grant("s3:ListBucket", "arn:aws:s3:::b", json.dumps({"StringLike": {"s3:prefix": ["drills/*"]}}))

    assert allows(grant, Call("s3:ListBucket", "arn:aws:s3:::b", (("s3:prefix", "drills/payments/x/"),)))
    assert not allows(grant, Call("s3:ListBucket", "arn:aws:s3:::b", (("s3:prefix", ""),)))


def test_every_function_has_its_own_role_and_log_group_with_the_retention_parameter() -> None:
    stack = Stack({})
    functions = stack.functions()
    roles = [stack.role_of(f) for f in functions]
    log_groups = [stack.template.resources[f]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for f in functions]

    assert len(set(roles)) == len(functions) and len(set(log_groups)) == len(functions)
    for role in roles:
        trust = stack.resource(role)["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust == [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                          "Action": "sts:AssumeRole"}]
        assert "FunctionTracingPolicy" in stack.managed_policies(role)  # Tracing: Active (Globals)
    for log_group in log_groups:
        assert stack.template.resources[log_group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_resource_star_is_granted_only_for_actions_without_resource_level_permissions() -> None:
    stack = Stack({"VpcSubnetIds": "subnet-0a,subnet-0b", "VpcSecurityGroupIds": "sg-0a"})
    for policy, actions in STAR_POLICIES.items():
        grants = grants_of(stack.resource(policy)["Properties"]["PolicyDocument"]["Statement"])

        assert {grant.action for grant in grants} == actions
        assert {grant.resource for grant in grants} == {"*"}
    managed = stack.template.resources_of_type("AWS::IAM::ManagedPolicy")
    assert set(managed) == set(STAR_POLICIES)


def test_only_the_functions_that_call_the_kubernetes_api_or_a_telemetry_endpoint_join_the_vpc() -> None:
    stack = Stack({"VpcSubnetIds": "subnet-0a,subnet-0b", "VpcSecurityGroupIds": "sg-0a"})
    for function in stack.functions():
        reached = modules_reached(ROOT / stack.template.resources[function]["Properties"]["CodeUri"] / "app.py")
        # a cluster's private endpoint, or a drill's Prometheus inside the VPC
        in_vpc = bool({"livefire.mesh.kube", "livefire.telemetry.client"} & reached)
        properties = stack.resource(function)["Properties"]
        role = stack.role_of(function)

        assert ("VpcConfig" in properties) == in_vpc, function
        assert ("FunctionNetworkPolicy" in stack.managed_policies(role)) == in_vpc, function
        if in_vpc:
            assert properties["VpcConfig"] == {"SubnetIds": ["subnet-0a", "subnet-0b"], "SecurityGroupIds": ["sg-0a"]}
    default = Stack({})
    assert all("VpcConfig" not in default.resource(f)["Properties"] for f in default.functions())
    assert "FunctionNetworkPolicy" not in default.template.document["Resources"] or \
        default.template.resources["FunctionNetworkPolicy"]["Condition"] == "InVpc"


def invoked_functions(definition: dict[str, Any]) -> set[str]:
    """Every FunctionName a lambda:invoke task of the definition names (in branches and map processors too)."""
    names: set[str] = set()

    def visit(states: dict[str, Any]) -> None:
        for state in states.values():
            # lambda:invoke, and lambda:invoke.waitForTaskToken (the go/no-go gate)
            if state.get("Resource", "").startswith("arn:aws:states:::lambda:invoke"):
                parameters = state["Parameters"]
                if "FunctionName.$" in parameters:
                    # Only a vantage's own probe function is named at run time; the role allows exactly the
                    # VantageProbeFunctionArns parameter (test_probe_only_stacks_are_invoked_only_when_...).
                    assert parameters["FunctionName.$"] == "$.vantage.functionArn", state
                    continue
                names.add(parameters["FunctionName"])
            for branch in state.get("Branches", []):
                visit(branch["States"])
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if processor:
                visit(processor["States"])

    visit(definition["States"])
    return names


def test_the_state_machine_role_invokes_exactly_the_functions_of_its_definition() -> None:
    stack = Stack({})
    invoked = invoked_functions(json.loads(stack.template.state_machine_definition()))
    grants = grants_of(stack.inline_statements("DrillStateMachineRole"))

    extra, missing = unused_and_missing([g for g in grants if g.resource != "*"],
                                        {Call("lambda:InvokeFunction", name) for name in invoked})

    assert missing == [] and extra == []
    assert {g.action for g in grants if g.resource == "*"} == STATE_MACHINE_STAR_ACTIONS
    assert stack.template.resources["DrillStateMachine"]["Properties"]["Role"] == {
        "Fn::GetAtt": ["DrillStateMachineRole", "Arn"]}


def test_probe_only_stacks_are_invoked_only_when_their_functions_are_named() -> None:
    vantages = [f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:livefire-probe-ProbeFunction-1",
                f"arn:aws:lambda:ap-southeast-2:{ACCOUNT}:function:livefire-probe-ProbeFunction-2"]
    default = grants_of(Stack({}).inline_statements("DrillStateMachineRole"))
    with_vantages = grants_of(Stack({"VantageProbeFunctionArns": ",".join(vantages)})
                              .inline_statements("DrillStateMachineRole"))

    added = [grant for grant in with_vantages if grant not in default]

    assert added == [Grant("lambda:InvokeFunction", arn, "") for arn in vantages]


def _role_actions(stack: Stack) -> dict[str, set[str]]:
    roles = stack.template.resources_of_type("AWS::IAM::Role")
    return {role: {grant.action for grant in grants_of(stack.inline_statements(role))} for role in roles}


def test_without_fis_templates_or_webhook_secrets_no_role_may_touch_fis_or_secrets() -> None:
    stack = Stack({})

    touching = {role: sorted(a for a in actions if a.startswith(("fis:", "secretsmanager:")))
                for role, actions in _role_actions(stack).items()}

    assert touching == {role: [] for role in touching}
    assert external_calls(stack, "InjectFunction") == set()


def test_fis_templates_and_webhook_secrets_reach_only_the_functions_that_start_and_end_faults() -> None:
    stack = Stack(OUTSIDE_THE_MESH)

    touching = {role for role, actions in _role_actions(stack).items()
                if any(a.startswith(("fis:", "secretsmanager:")) for a in actions)}

    assert touching == {"InjectFunctionRole", "RollbackFunctionRole", "GuardianFunctionRole"}


def test_inject_may_start_only_the_listed_experiment_templates() -> None:
    stack = Stack({"AllowedFisTemplates": FIS_TEMPLATES[0]})
    grants = grants_of(stack.inline_statements("InjectFunctionRole"))

    def startable(template_id: str) -> bool:
        call = Call("fis:StartExperiment", f"arn:aws:fis:eu-west-1:{ACCOUNT}:experiment-template/{template_id}")
        return any(allows(grant, call) for grant in grants)

    assert startable(FIS_TEMPLATES[0])
    assert not startable(FIS_TEMPLATES[1])
    assert not startable(FIS_TEMPLATES[0] + "x")


def test_a_webhook_secret_is_readable_only_by_its_own_name() -> None:
    stack = Stack({"AllowedWebhookSecrets": "hooks"})
    grants = grants_of(stack.inline_statements("RollbackFunctionRole"))

    def readable(secret_arn: str) -> bool:
        return any(allows(grant, Call("secretsmanager:GetSecretValue", secret_arn)) for grant in grants)

    assert readable(f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:hooks-AbC123")
    assert not readable(f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:hooks-prod-AbC123")
    assert not readable(f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:other-AbC123")


def test_without_allowed_clusters_no_role_may_describe_any_eks_cluster() -> None:
    describing = {role for role, actions in _role_actions(Stack({})).items() if "eks:DescribeCluster" in actions}

    assert describing == set()


def test_the_mesh_roles_may_describe_only_the_listed_clusters_each_in_its_own_region() -> None:
    stack = Stack({"AllowedClusters": ",".join(CLUSTERS)})
    roles = {role: grants_of(stack.inline_statements(role)) for role in _role_actions(stack)}

    def describable(role: str, region: str, name: str) -> bool:
        call = Call("eks:DescribeCluster", f"arn:aws:eks:{region}:{ACCOUNT}:cluster/{name}")
        return any(allows(grant, call) for grant in roles[role])

    assert {role for role in roles if describable(role, "us-east-1", "payments-use1")} == {
        "InjectFunctionRole", "RollbackFunctionRole", "EvidenceFunctionRole", "GuardianFunctionRole"}
    assert describable("InjectFunctionRole", "us-west-2", "payments-usw2")
    assert not describable("InjectFunctionRole", "us-west-2", "payments-use1")  # the same name in another region
    assert not describable("InjectFunctionRole", "us-east-1", "payments-use1-b")
    assert not describable("InjectFunctionRole", "us-east-1", "payments")


def test_the_allowed_clusters_parameter_accepts_only_region_qualified_names() -> None:
    pattern = re.compile(Stack({}).template.document["Parameters"]["AllowedClusters"]["AllowedPattern"])

    accepted = ["", "us-east-1/payments-use1", ",".join(CLUSTERS), "us-gov-west-1/a", "eu-central-2/x_y-1"]
    refused = ["payments-use1", "us-east-1/", "us-east-1/a,payments", "us-east-1/a, us-west-2/b", "primary/a",
               f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/a", "us-east-1/a/b", "us-east-1/a,"]

    assert [value for value in accepted if not pattern.fullmatch(value)] == []
    assert [value for value in refused if pattern.fullmatch(value)] == []


def test_a_probe_may_read_alarms_in_any_region_of_its_account_in_both_stacks() -> None:
    vantage = LocalTemplate.load(ROOT, "eu-west-1", template_file="probe-vantage.yaml",
                                 parameters={"EvidenceBucketName": "livefire-evidence-123"})
    stacks = {"main": grants_of(Stack({}).inline_statements("ProbeFunctionRole")),
              "vantage": grants_of([statement for policy in vantage.resolve(
                  vantage.resources["ProbeFunctionRole"])["Properties"]["Policies"]
                  for statement in policy["PolicyDocument"]["Statement"]])}

    def readable(grants: list[Grant], region: str, account: str = ACCOUNT) -> bool:
        call = Call("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:{region}:{account}:alarm:payments-5xx")
        return any(allows(grant, call) for grant in grants)

    for grants in stacks.values():
        assert readable(grants, "us-east-1") and readable(grants, "eu-west-1") and readable(grants, "ap-south-2")
        assert not readable(grants, "us-east-1", "210987654321")


def test_the_check_names_a_fis_action_a_rollback_role_gains_without_using_it() -> None:
    stack = Stack(OUTSIDE_THE_MESH)
    statements = stack.inline_statements("RollbackFunctionRole")
    statements.append({"Effect": "Allow", "Action": ["fis:StartExperiment"],
                       "Resource": f"arn:*:fis:*:*:experiment-template/{FIS_TEMPLATES[0]}"})

    extra, missing = unused_and_missing(grants_of(statements), used_by(stack, "RollbackFunction"))

    assert extra == [Grant("fis:StartExperiment", f"arn:*:fis:*:*:experiment-template/{FIS_TEMPLATES[0]}", "")]
    assert missing == []


def test_the_check_names_the_secrets_a_guardian_reads_without_a_grant() -> None:
    stack = Stack(OUTSIDE_THE_MESH)
    statements = [s for s in stack.inline_statements("GuardianFunctionRole")
                  if "secretsmanager:GetSecretValue" not in s["Action"]]

    _extra, missing = unused_and_missing(grants_of(statements), used_by(stack, "GuardianFunction"))

    assert missing == sorted((Call("secretsmanager:GetSecretValue",
                                   f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbC123")
                              for name in WEBHOOK_SECRETS), key=str)


def test_list_experiments_is_the_only_function_grant_on_every_resource() -> None:
    stack = Stack(OUTSIDE_THE_MESH)

    star = {role: sorted(g.action for g in grants_of(stack.inline_statements(stack.role_of(f))) if g.resource == "*")
            for f in stack.functions() for role in [stack.role_of(f)]}

    assert {role: actions for role, actions in star.items() if actions} == {
        "RollbackFunctionRole": ["fis:ListExperiments"], "GuardianFunctionRole": ["fis:ListExperiments"]}


# ---------------------------------------------------------------- evidence that survives an insider (issue 16)

DRILL_KEY = f"arn:aws:s3:::{BUCKET}/drills/payments/d-1/"
# Who writes each evidence object (docs/architecture.md §8): any other role writing it would be an insider's way in.
WRITER_OF = {
    "spec.json": {"PlanFunctionRole"}, "plan.json": {"PlanFunctionRole"},
    "samples/default/drill-0000.jsonl.gz": {"ProbeFunctionRole"},
    "markers/default-0000.jsonl.gz": {"ProbeFunctionRole"},
    "faults/data-check-markers-markers.json": {"PlanFunctionRole", "InjectFunctionRole", "RollbackFunctionRole",
                                               "GuardianFunctionRole"},
    "faults/http-abort-us-east-1-before.json": {"InjectFunctionRole", "RollbackFunctionRole", "GuardianFunctionRole"},
    "faults/http-abort-us-east-1-restored.json": {"InjectFunctionRole", "RollbackFunctionRole",
                                                 "GuardianFunctionRole"},
    "assessment.json": {"AssessFunctionRole"},
    "faults/records.json": {"EvidenceFunctionRole"}, "posture.json": {"EvidenceFunctionRole"},
    "cost.json": {"EvidenceFunctionRole"}, "report.md": {"EvidenceFunctionRole"},
    "report.html": {"EvidenceFunctionRole"},
}
SEAL = ("manifest.json", "signature.json")
CREATE_ONLY = (("s3:if-none-match", "*"),)
# Items of the drill table by partition, and who may write them (dynamodb:LeadingKeys).
ITEM_WRITERS = {
    "CHAIN#payments": {"EvidenceFunctionRole"},
    "LEASE#sandbox:payments-use1/payments/VirtualService/payments": {"PlanFunctionRole", "EvidenceFunctionRole",
                                                                     "GuardianFunctionRole"},
    "IDEMPOTENCY#inject": {"InjectFunctionRole"},
    "IDEMPOTENCY#rollback": {"RollbackFunctionRole"},
    "DRILL#d-1": {"PlanFunctionRole", "InjectFunctionRole", "RollbackFunctionRole", "EvidenceFunctionRole",
                  "GuardianFunctionRole", "ApprovalFunctionRole"},  # the drill record and its fault records share
    # the drill's partition; the go/no-go gate's token goes on the drill record (livefire/approval.py)
}
# What would delete, unlock or rewrite evidence behind the manifest's back: no role may do any of it.
DESTRUCTIVE = ("s3:Delete", "s3:PutObjectRetention", "s3:PutObjectLegalHold", "s3:BypassGovernanceRetention",
               "s3:PutBucket", "s3:PutLifecycleConfiguration", "s3:PutObjectAcl", "s3:RestoreObject",
               "s3:PutReplicationConfiguration", "dynamodb:DeleteTable", "dynamodb:UpdateTable", "kms:")


def function_roles(stack: Stack) -> dict[str, list[Grant]]:
    return {stack.role_of(f): stack.role_grants(stack.role_of(f)) for f in stack.functions()}


def may(grants: list[Grant], call: Call) -> bool:
    return any(allows(grant, call) for grant in grants)


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_each_role_may_write_only_the_evidence_objects_of_its_own_step(configuration: str) -> None:
    roles = function_roles(Stack(CONFIGURATIONS[configuration]))

    writers = {name: {role for role, grants in roles.items() if may(grants, Call("s3:PutObject", DRILL_KEY + name))}
               for name in WRITER_OF}

    assert writers == WRITER_OF


def test_only_the_evidence_role_may_write_a_manifest_or_its_signature_and_only_where_none_exists() -> None:
    roles = function_roles(Stack({}))

    for name in SEAL:
        overwrite = Call("s3:PutObject", DRILL_KEY + name)
        create = Call("s3:PutObject", DRILL_KEY + name, CREATE_ONLY)

        assert {role for role, grants in roles.items() if may(grants, overwrite)} == set()
        assert {role for role, grants in roles.items() if may(grants, create)} == {"EvidenceFunctionRole"}


def test_each_role_may_write_only_the_drill_table_items_of_its_own_step() -> None:
    roles = function_roles(Stack({}))
    table = Stack({}).template.arn_of("DrillTable")

    for partition, expected in ITEM_WRITERS.items():
        keys = (("dynamodb:LeadingKeys", partition),)
        writers = {role for role, grants in roles.items()
                   if any(may(grants, Call(action, table, keys))
                          for action in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"))}

        assert writers == expected, partition


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_no_role_may_delete_unlock_or_rewrite_evidence_around_the_seal(configuration: str) -> None:
    stack = Stack(CONFIGURATIONS[configuration])

    offending = {role: sorted(g.action for g in grants if g.action.startswith(DESTRUCTIVE)
                              and g.action not in ("kms:Sign", "kms:GetPublicKey", "kms:Decrypt",
                                                   "kms:GenerateDataKey"))
                 for role, grants in function_roles(stack).items()}

    assert offending == {role: [] for role in offending}


def test_only_the_sealing_roles_may_sign_and_the_key_policy_denies_everyone_else() -> None:
    stack = Stack({})
    key = stack.template.arn_of("EvidenceSigningKey")
    evidence = stack.template.arn_of("EvidenceFunctionRole")
    campaign = stack.template.arn_of("CampaignFunctionRole")  # a campaign's manifest (docs/campaigns.md)
    policy = stack.resource("EvidenceSigningKey")["Properties"]["KeyPolicy"]["Statement"]

    signers = {role for role, grants in function_roles(stack).items() if may(grants, Call("kms:Sign", key))}
    allowed = [s for s in policy if s["Effect"] == "Allow" and "kms:Sign" in s["Action"]]
    denied = [s for s in policy if s["Effect"] == "Deny" and s["Action"] == "kms:Sign"]
    administered = next(s for s in policy if s["Principal"].get("AWS", "").endswith(":root"))

    assert signers == {"EvidenceFunctionRole", "CampaignFunctionRole"}
    assert [s["Principal"] for s in allowed] == [{"AWS": evidence}, {"AWS": campaign}]
    assert denied == [{"Sid": "NobodyElseSigns", "Effect": "Deny", "Principal": "*", "Action": "kms:Sign",
                       "Resource": "*", "Condition": {"ArnNotEquals": {"aws:PrincipalArn": [evidence, campaign]}}}]
    assert not any(_pattern(action).match("kms:Sign") for action in administered["Action"])
    assert any(_pattern(action).match("kms:GetPublicKey") for action in administered["Action"])  # verifiers
    assert stack.resource("EvidenceSigningKey")["Properties"]["KeySpec"] == "ECC_NIST_P256"


def test_evidence_is_locked_in_governance_mode_by_default() -> None:
    bucket = Stack({}).resource("EvidenceBucket")["Properties"]

    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["ObjectLockEnabled"] is True
    assert bucket["ObjectLockConfiguration"]["Rule"]["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": "365"}
    assert "ObjectLockConfiguration" not in Stack({"ObjectLockMode": "NONE"}).resource("EvidenceBucket")["Properties"]
