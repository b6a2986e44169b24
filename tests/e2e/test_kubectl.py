"""kubectl as a test client of `livefire sandbox up`: the sandbox's API servers are ones kubectl accepts (TLS with
the kubeconfig's CA, bearer token, discovery, watch streams, Istio schema admission). ``KUBECTL`` names another
kubectl binary (CI installs Debian's kubernetes-client, kubectl 1.20)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from livefire.contracts import PlannedFault
from livefire.mesh.faults import apply_fault, read_target, restore_fault
from livefire.mesh.kube import api_client_for
from livefire.spec import ClusterRef
from livefire_local.sandbox.mesh import SandboxMesh
from livefire_local.sandbox_up import sandbox_up
from tests.component.kube_fixtures import fault_of

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = os.environ.get("KUBECTL", "kubectl")
pytestmark = pytest.mark.skipif(shutil.which(KUBECTL) is None,
                                reason=f"{KUBECTL} is not installed (CI installs Debian's kubernetes-client)")


@dataclass
class Kubectl:
    kubeconfig: Path
    cache: Path
    mesh: SandboxMesh

    def command(self, *args: str) -> list[str]:
        return [KUBECTL, "--kubeconfig", str(self.kubeconfig), "--context", "payments-use1",
                "--cache-dir", str(self.cache), "--request-timeout", "10s", *args]

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args), input=stdin, capture_output=True, text=True, timeout=30,
                              check=False)

    def vs(self, name: str = "payments") -> dict[str, Any]:
        result = self("get", "vs", name, "-n", "payments", "-o", "json")
        assert result.returncode == 0, result.stderr
        found: dict[str, Any] = json.loads(result.stdout)
        return found


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    folder = tmp_path_factory.mktemp("sandbox-up")
    with sandbox_up(ROOT / "drills" / "sandbox" / "active-passive.yaml", None, folder / "kubeconfig") as mesh:
        yield Kubectl(folder / "kubeconfig", folder / "cache", mesh)


def _virtual_service(name: str, **http: Any) -> str:
    return yaml.safe_dump({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": name, "namespace": "payments", "labels": {"app": name}},
        "spec": {"hosts": [name], "http": [{"route": [{"destination": {"host": name}}], **http}]},
    })


def test_kubectl_gets_every_virtual_service_across_namespaces_as_yaml(kubectl: Kubectl) -> None:
    result = kubectl("get", "vs", "-A", "-o", "yaml")

    assert result.returncode == 0, result.stderr
    listed = yaml.safe_load(result.stdout)
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in listed["items"]] == [("payments", "payments")]
    assert listed["items"][0]["spec"]["http"][0]["route"]


def test_kubectl_merge_and_json_patches_change_the_virtual_service(kubectl: Kubectl) -> None:
    merged = kubectl("patch", "vs", "payments", "-n", "payments", "--type=merge",
                     "-p", '{"metadata": {"labels": {"patched-by": "merge"}}}')
    jsoned = kubectl("patch", "vs", "payments", "-n", "payments", "--type=json",
                     "-p", '[{"op": "add", "path": "/metadata/labels/json", "value": "yes"}]')

    assert merged.returncode == 0 and jsoned.returncode == 0, merged.stderr + jsoned.stderr
    labels = kubectl.vs()["metadata"]["labels"]
    assert labels["patched-by"] == "merge" and labels["json"] == "yes"


def test_kubectl_apply_creates_then_configures_a_virtual_service(kubectl: Kubectl) -> None:
    name = f"extra-{uuid.uuid4().hex[:6]}"

    created = kubectl("apply", "-f", "-", stdin=_virtual_service(name))
    configured = kubectl("apply", "-f", "-", stdin=_virtual_service(name, timeout="3s"))

    assert created.returncode == 0 and "created" in created.stdout, created.stderr
    assert configured.returncode == 0 and "configured" in configured.stdout, configured.stderr
    assert kubectl.vs(name)["spec"]["http"][0]["timeout"] == "3s"


def test_kubectl_apply_of_a_virtual_service_that_breaks_the_istio_schema_is_refused(kubectl: Kubectl) -> None:
    name = f"broken-{uuid.uuid4().hex[:6]}"
    broken = _virtual_service(name, fault={"abort": {"httpStatus": "five hundred", "percentage": {"value": 100}}})

    result = kubectl("apply", "-f", "-", stdin=broken)

    assert result.returncode != 0
    assert "is invalid" in result.stderr and "spec.http[0].fault.abort.httpStatus" in result.stderr
    assert "NotFound" in kubectl("get", "vs", name, "-n", "payments").stderr


def test_kubectl_api_resources_lists_the_istio_kinds_with_their_short_names(kubectl: Kubectl) -> None:
    result = kubectl("api-resources", "-o", "wide")

    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert {"virtualservices", "destinationrules", "peerauthentications", "deployments"} <= set(rows)
    assert rows["virtualservices"][1] == "vs" and rows["destinationrules"][1] == "dr"


def test_kubectl_auth_can_i_answers_from_the_sandbox_rbac(kubectl: Kubectl) -> None:
    kubectl.mesh.apis["payments-use1"].rbac.forbid("patch", "networking.istio.io", "virtualservices", "payments")
    try:
        denied = kubectl("auth", "can-i", "patch", "virtualservices", "-n", "payments")
        allowed = kubectl("auth", "can-i", "get", "virtualservices", "-n", "payments")
    finally:
        kubectl.mesh.apis["payments-use1"].rbac.allow_everything()

    assert (denied.stdout.split()[0], denied.returncode) == ("no", 1)  # with the review's reason after it
    assert (allowed.stdout.split()[0], allowed.returncode) == ("yes", 0)


def test_kubectl_get_watch_shows_a_drills_fault_and_its_restore_live(kubectl: Kubectl) -> None:
    cluster = ClusterRef(kubeconfig=str(kubectl.kubeconfig), context="payments-use1")
    api = api_client_for(cluster)  # the drill's own client: the real-cluster path, through the kubeconfig
    planned = PlannedFault(fault_id=f"fault-{uuid.uuid4().hex[:8]}", kind="http-abort", region="us-east-1",
                           cluster=cluster, namespace="payments", object_kind="VirtualService",
                           object_name="payments", lease_key="kubeconfig/payments")
    template = '{.metadata.resourceVersion}{" "}{.spec.http[0].fault.abort.httpStatus}{" fault\\n"}'
    watch = subprocess.Popen(kubectl.command("get", "vs", "payments", "-n", "payments", "-w",
                                             "-o", f"jsonpath={template}"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(watch.stdout.readline, "")),  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    try:
        _wait_for(lambda: len(lines) >= 1)
        before = read_target(api, planned)
        drill = f"drill-{uuid.uuid4().hex[:6]}"
        apply_fault(api, planned, fault_of("http-abort", abort={"httpStatus": 503, "percent": 100}), drill_id=drill,
                    expires_at=datetime.now(UTC) + timedelta(minutes=5), before=before)
        _wait_for(lambda: len(lines) >= 2)
        restore_fault(api, planned, before, drill_id=drill)
        _wait_for(lambda: len(lines) >= 3)
    finally:
        watch.kill()
        watch.wait(timeout=10)

    states = [line.split() for line in lines]
    assert [state[1:] for state in states[:3]] == [["fault"], ["503", "fault"], ["fault"]], lines
    assert int(states[0][0]) < int(states[1][0]) < int(states[2][0])  # each version newer than the last


def _wait_for(condition: Any, timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "kubectl get -w did not show the change in time"
        time.sleep(0.05)
