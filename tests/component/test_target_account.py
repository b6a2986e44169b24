"""The target-account template (target-account.yaml): the role a livefire stack assumes to reach another account's
EKS clusters, marker tables, AMP workspaces and alarms grants exactly what the functions do there, to exactly the
livefire roles, and the livefire stack may assume exactly the roles its TrustedRoleArns parameter lists, from exactly
the functions that reach another account."""

from __future__ import annotations

from livefire_local.template import LocalTemplate
from tests.component.event_replay import Call
from tests.component.test_iam_least_privilege import Grant, Stack, grants_of, unused_and_missing
from tests.conftest import ROOT

TARGET_ACCOUNT = "210987654321"
LIVEFIRE_ROLES = ["arn:aws:iam::123456789012:role/livefire-InjectFunctionRole-A1",
                  "arn:aws:iam::123456789012:role/livefire-EvidenceFunctionRole-B2"]
CLUSTERS = "us-east-1/payments-use1,eu-west-1/ledger"
TARGET_ROLE = f"arn:aws:iam::{TARGET_ACCOUNT}:role/livefire-target"
WORKSPACE = "ws-0a1b2c3d-4e5f-6789-abcd-ef0123456789"
# What a target account holds besides its clusters: marker tables, AMP workspaces and alarms.
HELD = {"MarkerTables": "orders-markers", "Workspaces": f"eu-west-1/{WORKSPACE}", "Alarms": "eu-west-1/ledger-5xx"}
MARKER_ACTIONS = ["dynamodb:PutItem", "dynamodb:BatchGetItem", "dynamodb:Scan", "dynamodb:DeleteItem"]
CLUSTER_CALLS = {Call("eks:DescribeCluster", f"arn:aws:eks:us-east-1:{TARGET_ACCOUNT}:cluster/payments-use1"),
                 Call("eks:DescribeCluster", f"arn:aws:eks:eu-west-1:{TARGET_ACCOUNT}:cluster/ledger")}


def target(**held: str) -> LocalTemplate:
    return LocalTemplate.load(ROOT, "us-east-1", template_file="target-account.yaml",
                              parameters={"LivefireRoleArns": ",".join(LIVEFIRE_ROLES), "Clusters": CLUSTERS, **held})


def target_grants(template: LocalTemplate) -> list[Grant]:
    role = template.resolve(template.resources["TargetRole"])["Properties"]
    return grants_of([s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]])


def reaches_what_a_target_account_holds(grant: Grant) -> bool:
    """A grant on a cluster, a workspace, an alarm or a marker table: what a target account may hold."""
    return grant.action.startswith(("eks:", "aps:", "cloudwatch:")) or grant.resource.endswith(
        f"table/{HELD['MarkerTables']}")


def test_the_target_role_may_only_describe_the_listed_clusters_each_in_its_region() -> None:
    grants = target_grants(target())

    extra, missing = unused_and_missing(grants, CLUSTER_CALLS)

    assert missing == [] and extra == []
    assert not any(g.resource == "*" for g in grants)
    same_name_elsewhere = Call("eks:DescribeCluster", f"arn:aws:eks:us-west-2:{TARGET_ACCOUNT}:cluster/ledger")
    assert unused_and_missing(grants, {same_name_elsewhere})[1] == [same_name_elsewhere]


def test_the_target_role_may_also_use_exactly_the_listed_marker_tables_workspaces_and_alarms() -> None:
    grants = target_grants(target(**HELD))
    needed = CLUSTER_CALLS | {
        *(Call(action, f"arn:aws:dynamodb:{region}:{TARGET_ACCOUNT}:table/orders-markers")
          for action in MARKER_ACTIONS for region in ("us-east-1", "eu-west-1")),
        Call("aps:QueryMetrics", f"arn:aws:aps:eu-west-1:{TARGET_ACCOUNT}:workspace/{WORKSPACE}"),
        Call("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:eu-west-1:{TARGET_ACCOUNT}:alarm:ledger-5xx")}

    extra, missing = unused_and_missing(grants, needed)

    assert missing == [] and extra == []
    elsewhere = {Call("dynamodb:PutItem", f"arn:aws:dynamodb:eu-west-1:{TARGET_ACCOUNT}:table/orders"),
                 Call("aps:QueryMetrics", f"arn:aws:aps:us-east-1:{TARGET_ACCOUNT}:workspace/{WORKSPACE}"),
                 Call("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:us-east-1:{TARGET_ACCOUNT}:alarm:ledger-5xx")}
    assert set(unused_and_missing(grants, elsewhere)[1]) == elsewhere


def test_only_the_livefire_roles_may_assume_the_target_role() -> None:
    role = target().resolve(target().resources["TargetRole"])["Properties"]

    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"AWS": LIVEFIRE_ROLES}, "Action": "sts:AssumeRole"}]
    assert role["MaxSessionDuration"] == 3600


def test_the_target_role_grants_what_the_functions_roles_grant_on_their_own_accounts_resources() -> None:
    stack = Stack({"AllowedClusters": CLUSTERS, "MarkerTables": HELD["MarkerTables"],
                   "TelemetryWorkspaces": HELD["Workspaces"]})
    in_own_account = {g.action for f in stack.functions() for g in stack.role_grants(stack.role_of(f))
                      if reaches_what_a_target_account_holds(g)}

    in_target = {g.action for g in target_grants(target(**HELD))}

    assert in_target == in_own_account == {"eks:DescribeCluster", *MARKER_ACTIONS, "aps:QueryMetrics",
                                           "cloudwatch:DescribeAlarms"}


def test_the_livefire_stack_assumes_exactly_the_trusted_roles_from_the_functions_that_reach_another_account() -> None:
    stack = Stack({"AllowedClusters": CLUSTERS, "MarkerTables": HELD["MarkerTables"],
                   "TelemetryWorkspaces": HELD["Workspaces"], "TrustedRoleArns": TARGET_ROLE})
    default = Stack({})

    assuming = {f for f in stack.functions() if any(g.action == "sts:AssumeRole"
                                                      for g in stack.role_grants(stack.role_of(f)))}
    reaching = {f for f in stack.functions() if any(reaches_what_a_target_account_holds(g)
                                                      for g in stack.role_grants(stack.role_of(f)))}
    roles = {g.resource for f in assuming for g in stack.role_grants(stack.role_of(f)) if g.action == "sts:AssumeRole"}
    outputs = stack.template.document["Outputs"]["CrossAccountRoleArns"]["Value"]["Fn::Join"][1]

    assert assuming == reaching == {"InjectFunction", "RollbackFunction", "EvidenceFunction", "GuardianFunction",
                                    "ProbeFunction", "AssessFunction"}
    assert {role["Fn::GetAtt"][0].removesuffix("Role") for role in outputs} == assuming
    assert roles == {TARGET_ROLE}
    assert not any(g.action == "sts:AssumeRole" for f in default.functions()
                   for g in default.role_grants(default.role_of(f)))
