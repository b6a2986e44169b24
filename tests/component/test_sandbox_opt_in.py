"""The sandbox is opt-in by name: it serves only hosts under ``.sandbox`` and regions whose cluster is
``{sandbox: NAME}``; every other URL is contacted for real, and Plan marks each target real or sandbox."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from livefire.egress import reach_of, sandbox_hosts
from livefire.errors import InvalidDrillSpec
from livefire.planning import planned_faults, probe_targets
from livefire.spec import DrillSpec, parse_spec
from livefire_local.runner import reach_lines, sandbox_session
from livefire_local.sandbox.mesh import ENV_HOSTS, ENV_RESOLVE, SandboxMesh, is_sandbox_host
from tests.conftest import MESH_DIR, ROOT, SANDBOX

REAL = "http://127.0.0.1:8080"


def webhook_outage(change: Any = None) -> DrillSpec:
    document = yaml.safe_load((SANDBOX / "webhook-outage.yaml").read_text())
    if change is not None:
        change(document)
    return parse_spec(document)


def all_real(document: dict[str, Any]) -> None:
    """The same drill aimed at a service of one's own: no sandbox host, no sandbox cluster."""
    for region in document["regions"]:
        region.pop("cluster")
        region["endpoint"] = f"{REAL}/{region['name']}/healthz"
    document["entrypoint"] = f"{REAL}/healthz"
    document["fault"]["webhook"]["inject"]["url"] = f"{REAL}/outage"
    document["fault"]["webhook"]["rollback"]["url"] = f"{REAL}/outage"


def sandbox_entrypoint_alone(document: dict[str, Any]) -> None:
    all_real(document)
    document["entrypoint"] = "http://payments.sandbox/healthz"


@pytest.mark.parametrize(("host", "served"), [
    ("sandbox", True), ("payments.sandbox", True), ("use1.payments.sandbox", True), ("Control.Payments.SANDBOX.", True),
    ("127.0.0.1", False), ("localhost", False), ("sandbox.example.com", False), ("mysandbox", False),
    ("payments.sandbox.io", False), (None, False),
])
def test_the_sandbox_serves_its_own_domain_and_nothing_else(host: str | None, served: bool) -> None:
    assert is_sandbox_host(host) is served


def test_a_sandbox_drill_resolves_every_host_it_names_to_the_sandbox() -> None:
    with SandboxMesh.from_spec(webhook_outage(), MESH_DIR) as mesh:
        environment = mesh.environment({})

    resolve = json.loads(environment[ENV_RESOLVE])
    assert set(resolve) == {"use1.payments.sandbox:80", "usw2.payments.sandbox:80", "payments.sandbox:80",
                            "control.payments.sandbox:80"}
    assert json.loads(environment[ENV_HOSTS]) == sorted(resolve)


def test_a_drill_of_real_targets_resolves_nothing_and_starts_no_server() -> None:
    mesh = SandboxMesh.from_spec(webhook_outage(all_real), MESH_DIR)

    with mesh:
        environment = mesh.environment({})
        resolve = mesh.resolve()

    assert resolve == {} and json.loads(environment[ENV_RESOLVE]) == {} and json.loads(environment[ENV_HOSTS]) == []
    assert mesh.regional == {} and mesh.stores == {} and mesh.api_urls == {}
    with pytest.raises(RuntimeError, match="is real"):
        _ = mesh.entrypoint
    with pytest.raises(RuntimeError, match="not started"):
        _ = mesh.control.port


def test_a_real_entrypoint_and_webhook_in_front_of_sandbox_regions_resolve_only_the_regions() -> None:
    def mixed(document: dict[str, Any]) -> None:
        document["entrypoint"] = f"{REAL}/healthz"
        document["fault"]["webhook"]["inject"]["url"] = f"{REAL}/outage"
        document["fault"]["webhook"]["rollback"]["url"] = f"{REAL}/outage"

    with SandboxMesh.from_spec(webhook_outage(mixed), MESH_DIR) as mesh:
        resolve = mesh.resolve()
        lines = reach_lines(mesh.spec, frozenset(resolve))

    assert set(resolve) == {"use1.payments.sandbox:80", "usw2.payments.sandbox:80"}
    assert set(mesh.regional) == {"us-east-1", "us-west-2"}
    assert lines == [
        f"target entrypoint {REAL}/healthz: real",
        "target us-east-1 http://use1.payments.sandbox/healthz: sandbox",
        "target us-west-2 http://usw2.payments.sandbox/healthz: sandbox",
        f"webhook inject POST {REAL}/outage: real",
        f"webhook rollback DELETE {REAL}/outage: real",
    ]


def test_a_hand_set_resolve_is_kept_for_real_hosts_and_refused_for_the_sandboxs_own() -> None:
    by_hand = {"staging.payments.example:443": "10.0.0.7:8443"}

    with SandboxMesh.from_spec(webhook_outage(), MESH_DIR) as mesh:
        environment = mesh.environment({ENV_RESOLVE: json.dumps(by_hand)})
        with pytest.raises(ValueError, match=r"payments\.sandbox:80: hosts under \.sandbox are the sandbox.s own"):
            mesh.environment({ENV_RESOLVE: json.dumps({"payments.sandbox:80": "127.0.0.1:1"})})

    resolve = json.loads(environment[ENV_RESOLVE])
    assert resolve["staging.payments.example:443"] == "10.0.0.7:8443" and len(resolve) == 5
    assert "staging.payments.example:443" not in json.loads(environment[ENV_HOSTS])


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d["regions"][0].update(endpoint=f"{REAL}/healthz"), "regions.0.endpoint"),
    (lambda d: d["regions"][1].update(cluster={"kubeconfig": "/nowhere/config", "context": "west"}),
     "regions.1.endpoint"),
    (sandbox_entrypoint_alone, "entrypoint"),
    (lambda d: d["fault"]["webhook"]["rollback"].update(url=f"{REAL}/outage"), "fault.webhook"),
], ids=["sandbox-cluster-real-endpoint", "real-cluster-sandbox-endpoint", "sandbox-entrypoint-alone",
        "inject-sandbox-rollback-real"])
def test_a_drill_mixing_sandbox_and_real_parts_that_cannot_work_together_is_refused(
        change: Any, field: str) -> None:
    with pytest.raises(InvalidDrillSpec, match=rf"^{field}: "):
        SandboxMesh.from_spec(webhook_outage(change), MESH_DIR)


def test_plan_marks_each_target_and_webhook_real_or_sandbox_from_the_hosts_the_runner_names() -> None:
    spec = webhook_outage()
    served = sandbox_hosts({"LIVEFIRE_SANDBOX_HOSTS": json.dumps(["use1.payments.sandbox:80",
                                                                  "control.payments.sandbox:80"])})

    targets = {target.name: target.reach for target in probe_targets(spec, served)}
    [webhook] = planned_faults(spec, served)

    assert targets == {"entrypoint": "real", "us-east-1": "sandbox", "us-west-2": "real"}
    assert webhook.reach == "sandbox"
    assert {t.reach for t in probe_targets(spec)} == {"real"} and planned_faults(spec)[0].reach == "real"  # AWS
    assert reach_of("http://use1.payments.sandbox:80/x?y=1", served) == "sandbox"
    assert sandbox_hosts({}) == frozenset()
    with pytest.raises(ValueError, match="LIVEFIRE_SANDBOX_HOSTS"):
        sandbox_hosts({"LIVEFIRE_SANDBOX_HOSTS": '{"a": 1}'})


def test_a_sandbox_drill_with_loopback_refused_is_stopped_before_anything_starts() -> None:
    with pytest.raises(ValueError, match="refuses loopback, where the sandbox serves"), \
            sandbox_session(webhook_outage(), MESH_DIR, ROOT, allowed_ranges="10.0.0.0/8"):
        pytest.fail("the session must not start")
