"""The fake Kubernetes API as kubectl uses it: discovery, create / delete, cluster-wide lists, admission against
Istio's CRD schemas, and TLS with a kubeconfig's CA — over HTTP with the official client or plain requests."""

from __future__ import annotations

import base64
import copy
import http.client
import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from kubernetes.client import CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from livefire.mesh.kube import api_client_for
from livefire.spec import ClusterRef
from livefire_local.sandbox.kube_api import FakeKubeApi
from livefire_local.sandbox.store import ObjectKey
from livefire_local.sandbox.tls import loopback_certificate
from livefire_local.sandbox_up import kubeconfig
from tests.component.kube_fixtures import Sandbox, running_sandbox, seeded_store

ISTIO = ("networking.istio.io", "v1", "payments", "virtualservices")


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    with running_sandbox(monkeypatch) as running:
        yield running


def call(sandbox: Sandbox, method: str, path: str, body: Any = None,
         content_type: str = "application/json") -> tuple[int, http.client.HTTPMessage, Any]:
    parts = urlsplit(sandbox.api.url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    headers = {"Authorization": f"Bearer {sandbox.token}", "Content-Type": content_type}
    try:
        connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = connection.getresponse()
        raw = response.read()
        return response.status, response.headers, json.loads(raw) if raw else None
    finally:
        connection.close()


def virtual_service(name: str, namespace: str = "payments", **http: Any) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
            "spec": {"hosts": [name], "http": [{"route": [{"destination": {"host": name}}], **http}]}}


def _obj(value: object) -> dict[str, Any]:
    assert isinstance(value, dict)
    return value


# ---------------------------------------------------------------- discovery


def test_discovery_lists_the_istio_groups_with_v1_preferred(sandbox: Sandbox) -> None:
    status, _, groups = call(sandbox, "GET", "/apis")

    assert status == 200 and groups["kind"] == "APIGroupList"
    by_name = {group["name"]: group for group in groups["groups"]}
    assert {"networking.istio.io", "security.istio.io", "apps", "authorization.k8s.io"} <= set(by_name)
    assert by_name["networking.istio.io"]["preferredVersion"]["version"] == "v1"
    assert {v["version"] for v in by_name["networking.istio.io"]["versions"]} == {"v1", "v1beta1", "v1alpha3"}


def test_discovery_of_a_group_version_names_each_resource_its_kind_verbs_and_short_names(sandbox: Sandbox) -> None:
    _, _, listed = call(sandbox, "GET", "/apis/networking.istio.io/v1")
    _, _, apps = call(sandbox, "GET", "/apis/apps/v1")

    resources = {r["name"]: r for r in listed["resources"]}
    assert resources["virtualservices"]["kind"] == "VirtualService"
    assert resources["virtualservices"]["shortNames"] == ["vs"]
    assert {"get", "list", "watch", "create", "update", "patch", "delete"} <= set(resources["virtualservices"]["verbs"])
    assert {r["name"] for r in apps["resources"]} == {"deployments", "deployments/scale"}


def test_version_and_an_unknown_group_version_answer_as_a_real_server(sandbox: Sandbox) -> None:
    _, _, version = call(sandbox, "GET", "/version")
    status, _, missing = call(sandbox, "GET", "/apis/networking.istio.io/v9")

    assert version["major"] == "1" and version["gitVersion"].startswith("v1.")
    assert (status, missing["kind"], missing["reason"]) == (404, "Status", "NotFound")


# ---------------------------------------------------------------- create, delete, cluster-wide list


def test_create_stores_the_object_and_a_second_create_answers_409_already_exists(sandbox: Sandbox) -> None:
    api = CustomObjectsApi(sandbox.client)

    created = _obj(api.create_namespaced_custom_object(*ISTIO, virtual_service("extra")))
    with pytest.raises(ApiException) as again:
        api.create_namespaced_custom_object(*ISTIO, virtual_service("extra"))

    assert created["metadata"]["uid"] and created["metadata"]["resourceVersion"]
    assert _obj(api.get_namespaced_custom_object(*ISTIO, "extra"))["spec"]["hosts"] == ["extra"]
    assert again.value.status == 409 and json.loads(again.value.body or "{}")["reason"] == "AlreadyExists"


def test_a_dry_run_create_answers_the_object_and_stores_nothing(sandbox: Sandbox) -> None:
    status, _, answered = call(sandbox, "POST", "/apis/networking.istio.io/v1/namespaces/payments/virtualservices"
                                                "?dryRun=All", virtual_service("extra"))

    assert status == 201 and answered["metadata"]["name"] == "extra"
    assert call(sandbox, "GET", "/apis/networking.istio.io/v1/namespaces/payments/virtualservices/extra")[0] == 404


def test_delete_removes_the_object_and_a_dry_run_delete_keeps_it(sandbox: Sandbox) -> None:
    path = "/apis/networking.istio.io/v1/namespaces/payments/virtualservices/payments"

    dry = call(sandbox, "DELETE", f"{path}?dryRun=All")[0]
    kept = call(sandbox, "GET", path)[0]
    deleted = call(sandbox, "DELETE", path)[0]
    gone = call(sandbox, "GET", path)[0]

    assert (dry, kept, deleted, gone) == (200, 200, 200, 404)


def test_a_cluster_wide_list_spans_namespaces_and_filters_by_equality_and_set_based_labels(sandbox: Sandbox) -> None:
    api = CustomObjectsApi(sandbox.client)
    api.create_namespaced_custom_object("networking.istio.io", "v1", "orders", "virtualservices",
                                        virtual_service("orders", namespace="orders"))

    everything = _obj(api.list_cluster_custom_object("networking.istio.io", "v1", "virtualservices"))
    orders = _obj(api.list_cluster_custom_object("networking.istio.io", "v1", "virtualservices",
                                                 label_selector="app=orders"))
    in_set = _obj(api.list_cluster_custom_object("networking.istio.io", "v1", "virtualservices",
                                                 label_selector="app in (orders, billing),!tier"))
    not_in = _obj(api.list_cluster_custom_object("networking.istio.io", "v1", "virtualservices",
                                                 label_selector="app notin (orders)"))

    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in everything["items"]] == [
        ("orders", "orders"), ("payments", "payments")]
    assert [i["metadata"]["name"] for i in orders["items"]] == ["orders"]
    assert [i["metadata"]["name"] for i in in_set["items"]] == ["orders"]
    assert [i["metadata"]["name"] for i in not_in["items"]] == ["payments"]


# ---------------------------------------------------------------- admission against the Istio CRDs


def test_a_virtual_service_that_breaks_the_istio_schema_is_refused_with_422_naming_the_field(
    sandbox: Sandbox,
) -> None:
    broken = virtual_service("broken", fault={"abort": {"httpStatus": "five hundred"}, "delay": {"fixedDelay": 2}})

    status, _, refusal = call(sandbox, "POST", "/apis/networking.istio.io/v1/namespaces/payments/virtualservices",
                              broken)

    assert (status, refusal["reason"]) == (422, "Invalid")
    fields = {cause["field"] for cause in refusal["details"]["causes"]}
    assert {"spec.http[0].fault.abort.httpStatus", "spec.http[0].fault.delay.fixedDelay"} <= fields
    assert sandbox.store.get(_key("broken")) is None


def _key(name: str) -> ObjectKey:
    return ObjectKey("networking.istio.io", "virtualservices", "payments", name)


def test_a_patch_that_would_break_the_schema_is_refused_and_changes_nothing(sandbox: Sandbox) -> None:
    before = sandbox.store.get(_key("payments"))
    patch = {"spec": {"http": [{"route": [{"destination": {"host": "payments"}, "weight": "all"}]}]}}

    status, _, refusal = call(sandbox, "PATCH", "/apis/networking.istio.io/v1/namespaces/payments/virtualservices/"
                                                "payments", patch, "application/merge-patch+json")

    assert (status, refusal["reason"]) == (422, "Invalid")
    assert "spec.http[0].route[0].weight" in refusal["message"]
    assert sandbox.store.get(_key("payments")) == before


def test_unknown_fields_are_pruned_with_a_warning_and_refused_with_strict_field_validation(sandbox: Sandbox) -> None:
    path = "/apis/networking.istio.io/v1/namespaces/payments/virtualservices"
    extra = virtual_service("extra")
    extra["spec"]["hostz"] = ["typo"]

    strict, _, refusal = call(sandbox, "POST", f"{path}?fieldValidation=Strict", extra)
    status, headers, created = call(sandbox, "POST", path, extra)

    assert (strict, refusal["reason"]) == (400, "BadRequest")
    assert 'unknown field "spec.hostz"' in refusal["message"]
    assert status == 201 and "hostz" not in created["spec"]
    assert 'unknown field \\"spec.hostz\\"' in (headers.get("Warning") or "")


def test_every_istio_object_of_the_sandbox_seeds_is_admitted(sandbox: Sandbox) -> None:
    seeds = sorted((Path(__file__).resolve().parents[2] / "drills" / "sandbox" / "mesh").glob("*.yaml"))
    plural = {"VirtualService": "virtualservices", "DestinationRule": "destinationrules",
              "PeerAuthentication": "peerauthentications"}

    refused = []
    for index, doc in enumerate(d for seed in seeds for d in yaml.safe_load_all(seed.read_text()) if d):
        if doc.get("kind") not in plural:  # the folder may hold other files than cluster seeds
            continue
        renamed = copy.deepcopy(doc)
        renamed["metadata"]["name"] = f"seed-{index}"
        group = doc["apiVersion"]
        status, _, answer = call(sandbox, "POST", f"/apis/{group}/namespaces/{doc['metadata']['namespace']}/"
                                                  f"{plural[doc['kind']]}?dryRun=All&fieldValidation=Strict", renamed)
        if status != 201:
            refused.append(answer["message"])

    assert refused == []


# ---------------------------------------------------------------- TLS through a kubeconfig


def test_a_kubeconfig_cluster_reaches_a_tls_api_server_trusting_only_the_kubeconfigs_ca(tmp_path: Path) -> None:
    certificate = loopback_certificate("test cluster")
    with FakeKubeApi(seeded_store(), token="secret-token", tls=certificate) as api:
        path = tmp_path / "kubeconfig"
        path.write_text(yaml.safe_dump(kubeconfig({"tls-cluster": api.url}, certificate.ca_pem, "secret-token")))
        client = api_client_for(ClusterRef(kubeconfig=str(path), context="tls-cluster"))

        obj = _obj(CustomObjectsApi(client).get_namespaced_custom_object(*ISTIO, "payments"))
        parts = urlsplit(api.url)
        with pytest.raises(ssl.SSLCertVerificationError), \
                socket.create_connection((parts.hostname or "", parts.port or 0), timeout=5) as raw, \
                ssl.create_default_context().wrap_socket(raw, server_hostname=parts.hostname):
            pass  # the system's CAs do not know the sandbox's: the handshake fails

    assert api.url.startswith("https://127.0.0.1:")
    assert obj["metadata"]["name"] == "payments"
    assert base64.b64decode(yaml.safe_load(path.read_text())["clusters"][0]["cluster"]
                            ["certificate-authority-data"]) == certificate.ca_pem
    assert all(r.had_bearer for r in api.requests)
