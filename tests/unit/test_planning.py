"""The Plan step: the blast radius, the refusals it records, a retried Plan, and a fuzzed spec through it."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livefire.config import Settings
from livefire.contracts import PlanRequest
from livefire.errors import DrillInProgress, GuardrailViolation, InvalidDrillSpec
from livefire.planning import check_blast_radius, plan_drill, planned_faults
from livefire.runtime import Runtime
from livefire.spec import DrillSpec, parse_spec, read_spec
from livefire_local import aws_cli
from livefire_local.aws import local_stack
from tests.conftest import ROOT, sandbox_spec_document

DEPLOYMENT = Settings(bucket="b", table="t", event_bus="default", allowed_namespaces=("payments",),
                      allowed_clusters=())


def spec_with(**changes: Any) -> DrillSpec:
    document = sandbox_spec_document()
    for path, value in changes.items():
        node: Any = document
        *parents, last = path.split("__")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[last] = value
    return parse_spec(document)


def refusal(spec: DrillSpec, deployment: Settings) -> str | None:
    try:
        check_blast_radius(spec, planned_faults(spec), deployment)
    except GuardrailViolation as exc:
        return str(exc)
    return None


# ---------------------------------------------------------------- blast radius


def test_a_fault_inside_every_allow_list_is_planned() -> None:
    assert refusal(spec_with(), DEPLOYMENT) is None


def test_a_namespace_outside_the_deployments_allow_list_is_refused() -> None:
    deployment = replace(DEPLOYMENT, allowed_namespaces=("checkout",))

    reason = refusal(spec_with(), deployment)

    assert reason is not None and reason.startswith("fault.target.namespace: 'payments'")
    assert "AllowedNamespaces" in reason


def test_a_deployment_without_allowed_namespaces_allows_no_drill_at_all() -> None:
    reason = refusal(spec_with(), replace(DEPLOYMENT, allowed_namespaces=()))

    assert reason is not None and "outside this deployment's allowed namespaces []" in reason


def test_a_cluster_outside_the_specs_allowed_clusters_is_refused_with_the_field_named() -> None:
    spec = spec_with(guardrails={"allowedNamespaces": ["payments"], "allowedClusters": ["payments-usw2"]})

    reason = refusal(spec, DEPLOYMENT)

    assert reason is not None and reason.startswith("regions.0.cluster: cluster 'payments-use1' of region us-east-1")
    assert "guardrails.allowedClusters" in reason


EKS_USE1 = {"eks": "payments-use1", "region": "us-east-1"}


@pytest.mark.parametrize("cluster", [EKS_USE1, {"eks": "arn:aws:eks:us-east-1:123456789012:cluster/payments-use1"}],
                         ids=["name-and-region", "arn"])
def test_an_eks_cluster_is_allowed_only_by_its_region_qualified_name(cluster: dict[str, str]) -> None:
    spec = spec_with(regions__0__cluster=cluster)

    same_name_other_region = refusal(spec, replace(DEPLOYMENT, allowed_clusters=("us-west-2/payments-use1",)))
    name_only = refusal(spec, replace(DEPLOYMENT, allowed_clusters=("payments-use1",)))

    assert same_name_other_region is not None and same_name_other_region.startswith(
        "regions.0.cluster: EKS cluster 'us-east-1/payments-use1' of region us-east-1 is outside this deployment's "
        "allowed clusters ['us-west-2/payments-use1']")
    assert "AllowedClusters" in same_name_other_region
    assert name_only is not None and "(an EKS cluster is listed as REGION/NAME)" in name_only
    assert refusal(spec, replace(DEPLOYMENT, allowed_clusters=("us-east-1/payments-use1",))) is None


def test_a_deployment_without_allowed_clusters_allows_no_eks_cluster_live_or_dry_run() -> None:
    live = refusal(spec_with(regions__0__cluster=EKS_USE1), DEPLOYMENT)
    dry_run = refusal(spec_with(regions__0__cluster=EKS_USE1, mode="dry-run"), DEPLOYMENT)

    assert live is not None and "allowed clusters [] " in live and "empty allows no EKS cluster" in live
    assert dry_run == live


def test_the_spec_names_an_eks_cluster_as_region_slash_name_too() -> None:
    deployment = replace(DEPLOYMENT, allowed_clusters=("us-east-1/payments-use1",))
    guarded = {"allowedNamespaces": ["payments"], "allowedClusters": ["payments-use1"]}

    reason = refusal(spec_with(regions__0__cluster=EKS_USE1, guardrails=guarded), deployment)

    assert reason is not None and "guardrails.allowedClusters ['payments-use1'] (an EKS cluster" in reason
    guarded["allowedClusters"] = ["us-east-1/payments-use1"]
    assert refusal(spec_with(regions__0__cluster=EKS_USE1, guardrails=guarded), deployment) is None


@pytest.mark.parametrize("cluster", [{"sandbox": "payments-use1"}, {"kubeconfig": "/kube/config", "context": "c"}],
                         ids=["sandbox", "kubeconfig"])
def test_a_sandbox_or_kubeconfig_cluster_is_not_an_aws_resource_the_deployment_lists(cluster: dict[str, str]) -> None:
    spec = spec_with(regions__0__cluster=cluster)

    assert refusal(spec, DEPLOYMENT) is None
    assert refusal(spec, replace(DEPLOYMENT, allowed_clusters=("us-east-1/payments-use1",))) is None


# ---------------------------------------------------------------- the Plan step under moto


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    with local_stack(ROOT):
        yield Runtime(settings=Settings.from_env())


def request(drill_id: str, document: Any) -> PlanRequest:
    return PlanRequest(drill_id=drill_id, execution_arn=f"arn:aws:states:us-east-1:1:execution:sm:{drill_id}",
                       execution_input={"spec": document})


def touched(runtime: Runtime, drill_id: str) -> dict[str, Any]:
    """Everything a Plan could have left: leases, fault records, evidence objects."""
    listed = runtime.s3.list_objects_v2(Bucket=runtime.settings.bucket, Prefix="drills/")
    return {
        "leases": [lease.holder for lease in runtime.store.active_leases()],
        "faults": runtime.store.faults_of(drill_id),
        "objects": [o["Key"] for o in listed.get("Contents", []) if f"/{drill_id}/" in o["Key"]],
    }


def test_a_refused_blast_radius_is_recorded_and_touches_nothing(runtime: Runtime, unique_id: str) -> None:
    document = sandbox_spec_document()
    document["guardrails"]["allowedClusters"] = ["payments-usw2"]

    with pytest.raises(GuardrailViolation):
        plan_drill(request(unique_id, document), runtime)

    record = runtime.store.get_drill(unique_id)
    assert record is not None and record.status == "REJECTED"
    assert record.reason is not None and record.reason.startswith("GuardrailViolation: regions.0.cluster")
    assert touched(runtime, unique_id) == {"leases": [], "faults": [], "objects": []}


def test_an_eks_cluster_outside_a_region_qualified_allowed_clusters_is_refused_in_plan_and_touches_nothing(
    runtime: Runtime, unique_id: str
) -> None:
    deployment = Runtime(settings=replace(runtime.settings, allowed_clusters=("us-west-2/payments-use1",)))
    document = sandbox_spec_document()
    document["regions"][0]["cluster"] = {"eks": "payments-use1", "region": "us-east-1"}

    with pytest.raises(GuardrailViolation, match=r"^regions\.0\.cluster: EKS cluster 'us-east-1/payments-use1'"):
        plan_drill(request(unique_id, document), deployment)

    record = runtime.store.get_drill(unique_id)
    assert record is not None and record.status == "REJECTED"
    assert record.reason is not None and record.reason.startswith(
        "GuardrailViolation: regions.0.cluster: EKS cluster 'us-east-1/payments-use1'")
    assert touched(runtime, unique_id) == {"leases": [], "faults": [], "objects": []}


def release_all(runtime: Runtime, drill_id: str) -> None:
    record = runtime.store.get_drill(drill_id)
    assert record is not None
    for key in record.lease_keys:
        assert runtime.store.release_lease(key, drill_id), key


def test_a_retried_plan_of_the_same_execution_returns_the_same_plan_and_the_same_two_leases(
    runtime: Runtime, unique_id: str
) -> None:
    first = plan_drill(request(unique_id, sandbox_spec_document()), runtime)

    again = plan_drill(request(unique_id, sandbox_spec_document()), runtime)

    assert again == first
    held = sorted((lease.lease_key, lease.holder) for lease in runtime.store.active_leases())
    assert held == [("sandbox:payments-use1/payments/VirtualService/payments", unique_id),
                    ("service:payments", unique_id)]
    record = runtime.store.get_drill(unique_id)
    assert record is not None and sorted(record.lease_keys) == [key for key, _holder in held]
    release_all(runtime, unique_id)


def test_a_plan_refused_by_a_lease_never_overwrites_the_record_of_the_drill_that_owns_the_id(
    runtime: Runtime, unique_id: str
) -> None:
    plan = plan_drill(request(unique_id, sandbox_spec_document()), runtime)
    other = PlanRequest(drill_id=unique_id, execution_arn="arn:aws:states:us-east-1:1:execution:other:x",
                        execution_input={"spec": sandbox_spec_document()})

    with pytest.raises(DrillInProgress):
        plan_drill(other, runtime)

    record = runtime.store.get_drill(unique_id)
    assert record is not None and record.status == "RUNNING" and record.execution_arn == plan.execution_arn
    assert runtime.store.lease_holder(plan.faults[0].lease_key) == unique_id
    release_all(runtime, unique_id)


def test_a_refused_spec_never_overwrites_the_record_of_a_finished_drill_with_the_same_id(
    runtime: Runtime, unique_id: str
) -> None:
    plan_drill(request(unique_id, sandbox_spec_document()), runtime)
    release_all(runtime, unique_id)
    runtime.store.finish_drill(unique_id, status="COMPLETED", verdict="PASS")
    reused = PlanRequest(drill_id=unique_id, execution_arn="arn:aws:states:us-east-1:1:execution:sm:reused",
                         execution_input={"spec": {"apiVersion": "livefire/v1"}})

    with pytest.raises(InvalidDrillSpec):
        plan_drill(reused, runtime)

    record = runtime.store.get_drill(unique_id)
    assert record is not None and (record.status, record.verdict) == ("COMPLETED", "PASS")
    assert record.execution_arn.endswith(f":{unique_id}")


# ---------------------------------------------------------------- one live drill per service


def standby_scale_to_zero() -> dict[str, Any]:
    """The same service, the other region, another object: the standby's Deployment."""
    document = sandbox_spec_document()
    document["fault"] = {"kind": "scale-to-zero", "region": "us-west-2",
                         "target": {"namespace": "payments", "deployment": "payments-v1"}}
    return document


def test_a_second_drill_of_the_service_on_another_object_in_another_region_is_refused_touching_nothing(
    runtime: Runtime, unique_id: str
) -> None:
    first, second = f"{unique_id}-a", f"{unique_id}-b"
    plan_drill(request(first, sandbox_spec_document()), runtime)

    with pytest.raises(DrillInProgress, match=f"target service:payments is held by drill {first}"):
        plan_drill(request(second, standby_scale_to_zero()), runtime)

    record = runtime.store.get_drill(second)
    assert record is not None and record.status == "REJECTED"
    assert touched(runtime, second)["faults"] == [] and touched(runtime, second)["objects"] == []
    assert runtime.store.leases_held_by(second) == []
    release_all(runtime, first)
    assert runtime.store.active_leases() == []


def test_an_observe_only_drill_takes_the_service_lease_too(runtime: Runtime, unique_id: str) -> None:
    observe = sandbox_spec_document()
    observe["fault"] = {"kind": "external", "region": "us-east-1"}
    plan = plan_drill(request(unique_id, observe), runtime)

    with pytest.raises(DrillInProgress, match=f"held by drill {unique_id}"):
        plan_drill(request(f"{unique_id}-b", sandbox_spec_document()), runtime)

    assert plan.faults == []
    assert [lease.lease_key for lease in runtime.store.leases_held_by(unique_id)] == ["service:payments"]
    release_all(runtime, unique_id)
    assert runtime.store.active_leases() == []


def test_the_drills_of_a_multi_region_fault_share_the_service_and_exclude_every_other_drill(
    runtime: Runtime, unique_id: str
) -> None:
    primary, standby = sandbox_spec_document(), standby_scale_to_zero()
    for document in (primary, standby):
        document["guardrails"]["multiRegionFault"] = True

    plan_drill(request(f"{unique_id}-a", primary), runtime)
    plan_drill(request(f"{unique_id}-b", standby), runtime)
    with pytest.raises(DrillInProgress, match="held by the drills of a multi-region fault"):
        plan_drill(request(f"{unique_id}-c", sandbox_spec_document()), runtime)

    lease = runtime.store.lease("service:payments")
    assert lease is not None and sorted(lease.members) == [f"{unique_id}-a", f"{unique_id}-b"]
    release_all(runtime, f"{unique_id}-a")
    assert runtime.store.lease_holder("service:payments") == "(multi-region)"  # the other member still runs
    runtime.store.finish_drill(f"{unique_id}-a", status="COMPLETED", verdict="PASS")
    release_all(runtime, f"{unique_id}-b")
    assert runtime.store.active_leases() == []


# ---------------------------------------------------------------- fuzz: malformed specs through the Plan step


def base_document() -> dict[str, Any]:
    """The sandbox drill with every optional section filled, so mutations reach every part of the spec."""
    document = sandbox_spec_document()
    document["guardrails"] = {"allowedNamespaces": ["payments"], "allowedClusters": ["payments-use1"],
                              "abortIf": {"errorRateOver": 50, "for": "2s"}, "alarms": ["payments-5xx"]}
    document["vantages"] = [{"name": "default", "region": "us-east-1"}]
    document["probes"]["expect"] = {"status": [200], "bodyContains": "ok"}
    return document


BASE = base_document()
REQUIRED = [
    ("apiVersion",), ("kind",), ("metadata",), ("metadata", "name"), ("metadata", "service"), ("pattern",),
    ("regions",), ("regions", 0, "name"), ("regions", 0, "role"), ("regions", 1, "endpoint"), ("entrypoint",),
    ("fault",), ("fault", "kind"), ("fault", "region"), ("fault", "target"), ("fault", "target", "namespace"),
    ("phases",), ("phases", "fault"), ("phases", "recovery"), ("guardrails",), ("guardrails", "allowedNamespaces"),
    ("guardrails", "abortIf", "errorRateOver"), ("vantages", 0, "name"), ("vantages", 0, "region"),
]


def all_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            paths += all_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            paths += all_paths(value, (*prefix, index))
    return paths


PATHS = all_paths(BASE)
def at(document: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        document = document[part]
    return document


MAPPINGS = [()] + [p for p in PATHS if isinstance(at(BASE, p), dict)]


def dotted(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path)


@st.composite
def malformed(draw: st.DrawFn) -> tuple[Any, str]:
    """A malformed execution input and the field path its error must name."""
    document = copy.deepcopy(BASE)
    kind = draw(st.sampled_from(["unknown-key", "wrong-type", "missing", "not-a-mapping", "no-spec"]))
    if kind == "unknown-key":
        path = draw(st.sampled_from(MAPPINGS))
        key = "x-" + draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12))
        at(document, path)[key] = draw(st.one_of(st.none(), st.integers(), st.text(max_size=5)))
        return {"spec": document}, dotted((*path, key))
    if kind == "wrong-type":
        path = draw(st.sampled_from(PATHS))
        parent, last = at(document, path[:-1]), path[-1]
        parent[last] = [draw(st.integers())] if isinstance(parent[last], dict) else {"x-bad": [None]}
        return {"spec": document}, dotted(path)
    if kind == "missing":
        path = draw(st.sampled_from(REQUIRED))
        del at(document, path[:-1])[path[-1]]
        return {"spec": document}, dotted(path)
    if kind == "not-a-mapping":
        return {"spec": draw(st.one_of(st.none(), st.integers(), st.text(max_size=8), st.lists(st.integers())))}, \
            "(spec)"
    return draw(st.dictionaries(st.sampled_from(["specs", "drill", "x"]), st.integers(), max_size=2)), "spec"


PATH_PREFIX = re.compile(r"^(\(spec\)|[A-Za-z0-9_'-]+(\.[A-Za-z0-9_'-]+)*): ")


def test_every_malformed_spec_ends_at_plan_as_invalid_drill_spec_with_its_field_path(runtime: Runtime) -> None:
    seen: list[int] = []

    @settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(malformed())
    def plan_refuses(case: tuple[Any, str]) -> None:
        execution_input, field = case
        drill_id = f"fuzz-{len(seen)}"
        seen.append(1)
        with pytest.raises(InvalidDrillSpec) as refused:
            plan_drill(PlanRequest(drill_id=drill_id, execution_arn=f"arn:x:{drill_id}",
                                   execution_input=execution_input), runtime)
        message = str(refused.value)
        assert all(PATH_PREFIX.match(part) for part in message.split("; ")), message
        assert field in message, (field, message)
        record = runtime.store.get_drill(drill_id)
        assert record is not None and record.status == "REJECTED"
        assert record.reason is not None and record.reason.startswith("InvalidDrillSpec")

    plan_refuses()
    assert len(seen) >= 500
    # and none of them touched anything: no lease, no fault record, no evidence object
    assert runtime.store.active_leases() == []
    table = boto3.resource("dynamodb").Table(runtime.settings.table)
    items = table.scan(FilterExpression="begins_with(pk, :fuzz)", ExpressionAttributeValues={":fuzz": "DRILL#fuzz-"})
    assert {item["sk"] for item in items["Items"]} == {"DRILL"}
    listed = runtime.s3.list_objects_v2(Bucket=runtime.settings.bucket, Prefix="drills/")
    assert [o["Key"] for o in listed.get("Contents", []) if "/fuzz-" in o["Key"]] == []


# ---------------------------------------------------------------- the same spec text, the same error everywhere


def deep(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {}
    for _ in range(levels):
        node = {"x": node}
    return node


SAME_ERROR = {
    "non-finite": ("phases", {"fault": "3s", "recovery": float("inf")}),
    "over-the-cap": ("phases", {"fault": "10000h", "recovery": "4s"}),
    "zero-percent": ("fault", {**sandbox_spec_document()["fault"], "abort": {"percent": 0}}),
    "entrypoint-is-a-region": ("entrypoint", sandbox_spec_document()["regions"][0]["endpoint"]),
    "credentials": ("entrypoint", "https://ops:hunter2@payments.example/healthz"),
    "nesting": ("metadata", {"name": "x", "service": "payments", **deep(40)}),
    "over-256-KiB": ("metadata", {"name": "x", "service": "payments", "description": "d" * 270_000}),
}


@pytest.mark.parametrize("case", SAME_ERROR, ids=str)
def test_the_same_spec_text_gives_the_same_error_locally_via_start_and_as_a_console_input(
    case: str, runtime: Runtime, unique_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    field, value = SAME_ERROR[case]
    document = {**sandbox_spec_document(), field: value}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, width=2**20))
    monkeypatch.setattr(aws_cli, "_session", lambda _region: pytest.fail("livefire start reached AWS"))

    with pytest.raises(InvalidDrillSpec) as local:
        read_spec(path)
    with pytest.raises(InvalidDrillSpec) as started:
        aws_cli.start_on_stack(path, stack_name="livefire")
    with pytest.raises(InvalidDrillSpec) as console:
        plan_drill(request(unique_id, json.loads(json.dumps(document))), runtime)

    assert str(local.value) == str(started.value) == f"{path}: {console.value}"
    record = runtime.store.get_drill(unique_id)
    assert record is not None and record.status == "REJECTED" and record.reason == f"InvalidDrillSpec: {console.value}"
    assert "hunter2" not in str(console.value)
