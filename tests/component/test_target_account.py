"""The target-account template (target-account.yaml): the role a livefire stack assumes to reach another account's
EKS clusters grants exactly what the functions do there, to exactly the livefire roles, and the livefire stack may
assume exactly the roles its TrustedRoleArns parameter lists, from exactly the functions that reach clusters."""

from __future__ import annotations

from livefire_local.template import LocalTemplate
from tests.component.event_replay import Call
from tests.component.test_iam_least_privilege import Stack, grants_of, unused_and_missing
from tests.conftest import ROOT

TARGET_ACCOUNT = "210987654321"
LIVEFIRE_ROLES = ["arn:aws:iam::123456789012:role/livefire-InjectFunctionRole-A1",
                  "arn:aws:iam::123456789012:role/livefire-EvidenceFunctionRole-B2"]
CLUSTERS = "us-east-1/payments-use1,eu-west-1/ledger"
TARGET_ROLE = f"arn:aws:iam::{TARGET_ACCOUNT}:role/livefire-target"


def target() -> LocalTemplate:
    return LocalTemplate.load(ROOT, "us-east-1", template_file="target-account.yaml",
                              parameters={"LivefireRoleArns": ",".join(LIVEFIRE_ROLES), "Clusters": CLUSTERS})


def test_the_target_role_may_only_describe_the_listed_clusters_each_in_its_region() -> None:
    role = target().resolve(target().resources["TargetRole"])["Properties"]
    grants = grants_of([s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]])
    needed = {Call("eks:DescribeCluster", f"arn:aws:eks:us-east-1:{TARGET_ACCOUNT}:cluster/payments-use1"),
              Call("eks:DescribeCluster", f"arn:aws:eks:eu-west-1:{TARGET_ACCOUNT}:cluster/ledger")}

    extra, missing = unused_and_missing(grants, needed)

    assert missing == [] and extra == []
    assert not any(g.resource == "*" for g in grants)
    same_name_elsewhere = Call("eks:DescribeCluster", f"arn:aws:eks:us-west-2:{TARGET_ACCOUNT}:cluster/ledger")
    assert unused_and_missing(grants, {same_name_elsewhere})[1] == [same_name_elsewhere]


def test_only_the_livefire_roles_may_assume_the_target_role() -> None:
    role = target().resolve(target().resources["TargetRole"])["Properties"]

    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"AWS": LIVEFIRE_ROLES}, "Action": "sts:AssumeRole"}]
    assert role["MaxSessionDuration"] == 3600


def test_the_target_role_grants_what_the_functions_roles_grant_on_their_own_account_clusters() -> None:
    stack = Stack({"AllowedClusters": CLUSTERS})
    functions_on_eks = {g.action for f in stack.functions() for g in stack.role_grants(stack.role_of(f))
                        if g.action.startswith("eks:")}
    role = target().resolve(target().resources["TargetRole"])["Properties"]

    in_target = {g.action for p in role["Policies"] for g in grants_of(p["PolicyDocument"]["Statement"])}

    assert in_target == functions_on_eks == {"eks:DescribeCluster"}


def test_the_livefire_stack_assumes_exactly_the_trusted_roles_from_the_functions_that_reach_clusters() -> None:
    stack = Stack({"AllowedClusters": CLUSTERS, "TrustedRoleArns": TARGET_ROLE})
    default = Stack({})

    assuming = {f for f in stack.functions() if any(g.action == "sts:AssumeRole"
                                                      for g in stack.role_grants(stack.role_of(f)))}
    reaching = {f for f in stack.functions() if any(g.action == "eks:DescribeCluster"
                                                      for g in stack.role_grants(stack.role_of(f)))}
    roles = {g.resource for f in assuming for g in stack.role_grants(stack.role_of(f)) if g.action == "sts:AssumeRole"}

    assert assuming == reaching == {"InjectFunction", "RollbackFunction", "EvidenceFunction", "GuardianFunction"}
    assert roles == {TARGET_ROLE}
    assert not any(g.action == "sts:AssumeRole" for f in default.functions()
                   for g in default.role_grants(default.role_of(f)))
