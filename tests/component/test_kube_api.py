"""The fake Kubernetes API server, driven over HTTP by the official kubernetes client."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import (
    ApiClient,
    AppsV1Api,
    AuthorizationV1Api,
    Configuration,
    CustomObjectsApi,
    V1ResourceAttributes,
    V1SelfSubjectAccessReview,
    V1SelfSubjectAccessReviewSpec,
)
from kubernetes.client.exceptions import ApiException

from livefire.errors import MeshAccessError
from livefire.mesh.kube import SANDBOX_CLUSTERS_ENV, api_client_for
from livefire.spec import ClusterRef
from livefire_local.sandbox.kube_api import FakeKubeApi
from livefire_local.sandbox.kube_wire import merge_patch
from tests.component.kube_fixtures import VS_KEY, Sandbox, running_sandbox, seeded_store

ISTIO = ("networking.istio.io", "v1", "payments", "virtualservices")
JSON_PATCH = "application/json-patch+json"


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    with running_sandbox(monkeypatch) as running:
        yield running


def _status(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body or "{}")
    return body


def _obj(value: object) -> dict[str, Any]:
    """Custom-object calls are typed ``object``; the API answers JSON objects."""
    assert isinstance(value, dict)
    return value


def _vs(sandbox: Sandbox) -> dict[str, Any]:
    return _obj(CustomObjectsApi(sandbox.client).get_namespaced_custom_object(*ISTIO, "payments"))


# ---------------------------------------------------------------- reads


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha3"])
def test_a_virtual_service_is_served_in_every_istio_version(sandbox: Sandbox, version: str) -> None:
    api = CustomObjectsApi(sandbox.client)

    obj = _obj(
        api.get_namespaced_custom_object("networking.istio.io", version, "payments", "virtualservices", "payments")
    )

    assert obj["apiVersion"] == f"networking.istio.io/{version}"
    assert obj["spec"]["http"][0]["name"] == "primary"


def test_list_filters_custom_objects_by_equality_label_selectors(sandbox: Sandbox) -> None:
    api = CustomObjectsApi(sandbox.client)

    matching = _obj(api.list_namespaced_custom_object(*ISTIO, label_selector="app=payments"))
    other = _obj(api.list_namespaced_custom_object(*ISTIO, label_selector="app=payments,tier=edge"))
    peer = _obj(api.list_namespaced_custom_object("security.istio.io", "v1", "payments", "peerauthentications"))

    assert matching["kind"] == "VirtualServiceList"
    assert [item["metadata"]["name"] for item in matching["items"]] == ["payments"]
    assert other["items"] == []
    assert peer["items"][0]["spec"]["mtls"]["mode"] == "STRICT"
    selectors = [r.query.get("labelSelector") for r in sandbox.api.requests]
    assert selectors[:2] == ["app=payments", "app=payments,tier=edge"]


def test_the_typed_apps_client_reads_deployments_and_their_scale(sandbox: Sandbox) -> None:
    apps = AppsV1Api(sandbox.client)

    deployment = apps.read_namespaced_deployment("payments-v1", "payments")
    listed = apps.list_namespaced_deployment("payments", label_selector="version=v1")
    scale = apps.read_namespaced_deployment_scale("payments-v1", "payments")

    assert scale.spec is not None and scale.status is not None and scale.metadata is not None
    assert deployment.metadata is not None
    assert deployment.spec.replicas == 3
    assert [d.metadata.name for d in listed.items if d.metadata is not None] == ["payments-v1"]
    assert scale.kind == "Scale"
    assert scale.spec.replicas == 3
    assert scale.status.selector == "app=payments,version=v1"
    assert scale.metadata.resource_version == deployment.metadata.resource_version


def test_an_unknown_object_answers_a_404_status(sandbox: Sandbox) -> None:
    with pytest.raises(ApiException) as caught:
        CustomObjectsApi(sandbox.client).get_namespaced_custom_object(*ISTIO, "no-such-vs")

    status = _status(caught.value)
    assert caught.value.status == 404
    assert (status["kind"], status["apiVersion"], status["status"]) == ("Status", "v1", "Failure")
    assert (status["reason"], status["code"]) == ("NotFound", 404)
    assert "no-such-vs" in status["message"]


def test_an_unserved_version_answers_404(sandbox: Sandbox) -> None:
    with pytest.raises(ApiException) as caught:
        CustomObjectsApi(sandbox.client).get_namespaced_custom_object(
            "networking.istio.io", "v2", "payments", "virtualservices", "payments"
        )

    assert caught.value.status == 404


# ---------------------------------------------------------------- patches


def test_a_merge_patch_changes_the_object_and_bumps_its_resource_version(sandbox: Sandbox) -> None:
    before = _vs(sandbox)

    after = _obj(CustomObjectsApi(sandbox.client).patch_namespaced_custom_object(
        *ISTIO, "payments", {"metadata": {"labels": {"tier": "edge", "app": None}}}
    ))

    assert after["metadata"]["labels"] == {"tier": "edge"}
    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    assert sandbox.api.requests[-1].content_type == "application/merge-patch+json"
    assert (sandbox.store.get(VS_KEY) or {})["metadata"]["labels"] == {"tier": "edge"}


def test_a_merge_patch_carrying_a_stale_resource_version_answers_409(sandbox: Sandbox) -> None:
    stale = _vs(sandbox)["metadata"]["resourceVersion"]
    CustomObjectsApi(sandbox.client).patch_namespaced_custom_object(
        *ISTIO, "payments", {"metadata": {"labels": {"tier": "edge"}}}
    )

    with pytest.raises(ApiException) as caught:
        CustomObjectsApi(sandbox.client).patch_namespaced_custom_object(
            *ISTIO, "payments", {"metadata": {"resourceVersion": stale, "labels": {"tier": "core"}}}
        )

    assert caught.value.status == 409
    assert _status(caught.value)["reason"] == "Conflict"


def test_a_json_patch_applies_its_operations_with_escaped_paths(sandbox: Sandbox) -> None:
    rv = _vs(sandbox)["metadata"]["resourceVersion"]
    operations = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "add", "path": "/metadata/annotations", "value": {"example.com/a~b": "1"}},
        {"op": "copy", "from": "/metadata/annotations/example.com~1a~0b", "path": "/metadata/labels/copied"},
        {"op": "add", "path": "/spec/http/-", "value": {"name": "extra", "route": []}},
        {"op": "move", "from": "/spec/http/1", "path": "/spec/http/0"},
        {"op": "replace", "path": "/spec/hosts/0", "value": "payments.payments.svc.cluster.local"},
        {"op": "remove", "path": "/metadata/labels/app"},
    ]

    after = _obj(CustomObjectsApi(sandbox.client).patch_namespaced_custom_object(
        *ISTIO, "payments", operations, _content_type=JSON_PATCH
    ))

    assert after["metadata"]["annotations"] == {"example.com/a~b": "1"}
    assert after["metadata"]["labels"] == {"copied": "1"}
    assert [route["name"] for route in after["spec"]["http"]] == ["extra", "primary"]
    assert after["spec"]["hosts"] == ["payments.payments.svc.cluster.local"]
    assert sandbox.api.requests[-1].content_type == JSON_PATCH


def test_a_json_patch_whose_test_op_fails_answers_422_and_changes_nothing(sandbox: Sandbox) -> None:
    snapshot = sandbox.store.snapshot()
    operations = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "0"},
        {"op": "add", "path": "/metadata/labels/tier", "value": "edge"},
    ]

    with pytest.raises(ApiException) as caught:
        CustomObjectsApi(sandbox.client).patch_namespaced_custom_object(
            *ISTIO, "payments", operations, _content_type=JSON_PATCH
        )

    assert caught.value.status == 422
    assert _status(caught.value)["reason"] == "Invalid"
    assert sandbox.store.snapshot() == snapshot


def test_a_list_body_sent_as_merge_patch_is_rejected(sandbox: Sandbox) -> None:
    with pytest.raises(ApiException) as caught:
        CustomObjectsApi(sandbox.client).patch_namespaced_custom_object(
            *ISTIO, "payments", [{"op": "add", "path": "/metadata/labels/x", "value": "y"}]
        )

    assert caught.value.status in (400, 422)
    assert sandbox.api.requests[-1].content_type == "application/merge-patch+json"


def test_a_strategic_merge_patch_on_a_custom_resource_answers_415(sandbox: Sandbox) -> None:
    with pytest.raises(ApiException) as caught:
        CustomObjectsApi(sandbox.client).patch_namespaced_custom_object(
            *ISTIO, "payments", {"metadata": {"labels": {"x": "y"}}},
            _content_type="application/strategic-merge-patch+json",
        )

    assert caught.value.status == 415
    assert _status(caught.value)["reason"] == "UnsupportedMediaType"


def test_a_strategic_merge_patch_on_deployment_scale_sets_the_replicas(sandbox: Sandbox) -> None:
    apps = AppsV1Api(sandbox.client)

    scale = apps.patch_namespaced_deployment_scale("payments-v1", "payments", {"spec": {"replicas": 1}})

    assert scale.spec is not None and scale.spec.replicas == 1
    assert apps.read_namespaced_deployment("payments-v1", "payments").spec.replicas == 1
    assert sandbox.api.requests[-2].content_type == "application/strategic-merge-patch+json"


def test_a_json_patch_on_deployment_scale_with_a_negative_count_answers_422(sandbox: Sandbox) -> None:
    with pytest.raises(ApiException) as caught:
        AppsV1Api(sandbox.client).patch_namespaced_deployment_scale(
            "payments-v1", "payments", [{"op": "replace", "path": "/spec/replicas", "value": -1}]
        )

    assert caught.value.status == 422


# ---------------------------------------------------------------- dry run, RBAC and slow answers


def test_a_dry_run_patch_answers_what_would_be_stored_and_stores_nothing(sandbox: Sandbox) -> None:
    snapshot = sandbox.store.snapshot()
    rv = _vs(sandbox)["metadata"]["resourceVersion"]

    answer = _obj(CustomObjectsApi(sandbox.client).patch_namespaced_custom_object(
        *ISTIO, "payments", [{"op": "add", "path": "/metadata/labels/tier", "value": "edge"}],
        _content_type=JSON_PATCH, dry_run="All"))

    assert answer["metadata"]["labels"]["tier"] == "edge" and answer["metadata"]["resourceVersion"] == rv
    assert sandbox.store.snapshot() == snapshot
    assert sandbox.api.requests[-1].query == {"dryRun": "All"}


def test_a_dry_run_scale_to_zero_is_validated_but_not_applied(sandbox: Sandbox) -> None:
    apps = AppsV1Api(sandbox.client)

    with pytest.raises(ApiException) as refused:
        apps.patch_namespaced_deployment_scale("payments-v1", "payments",
                                               [{"op": "replace", "path": "/spec/replicas", "value": -1}],
                                               dry_run="All")
    scale = apps.patch_namespaced_deployment_scale("payments-v1", "payments",
                                                   [{"op": "replace", "path": "/spec/replicas", "value": 0}],
                                                   dry_run="All")

    assert refused.value.status == 422
    assert scale.spec is not None and scale.spec.replicas == 0
    assert apps.read_namespaced_deployment("payments-v1", "payments").spec.replicas == 3


def test_a_dry_run_value_other_than_all_answers_400(sandbox: Sandbox) -> None:
    with pytest.raises(ApiException) as caught:
        CustomObjectsApi(sandbox.client).patch_namespaced_custom_object(
            *ISTIO, "payments", {"metadata": {"labels": {"x": "y"}}}, dry_run="Some")

    assert caught.value.status == 400 and "dryRun" in _status(caught.value)["message"]


def _may(sandbox: Sandbox, verb: str, resource: str, subresource: str = "", group: str = "networking.istio.io") -> bool:
    """A SelfSubjectAccessReview of one verb on the payments object, as the official client sends it."""
    review = V1SelfSubjectAccessReview(spec=V1SelfSubjectAccessReviewSpec(resource_attributes=V1ResourceAttributes(
        namespace="payments", verb=verb, group=group, resource=resource, subresource=subresource or None,
        name="payments")))
    answer: Any = AuthorizationV1Api(sandbox.client).create_self_subject_access_review(review, _preload_content=False)
    assert answer.status == 201
    return bool(json.loads(answer.data)["status"]["allowed"])


def test_a_verb_the_test_forbids_answers_403_and_the_access_review_says_so(sandbox: Sandbox) -> None:
    sandbox.api.rbac.forbid("patch", "networking.istio.io", "virtualservices", "payments")

    with pytest.raises(ApiException) as caught:
        CustomObjectsApi(sandbox.client).patch_namespaced_custom_object(
            *ISTIO, "payments", {"metadata": {"labels": {"x": "y"}}})

    status = _status(caught.value)
    assert caught.value.status == 403 and status["reason"] == "Forbidden"
    assert 'cannot patch resource "virtualservices" in API group "networking.istio.io"' in status["message"]
    assert (_may(sandbox, "patch", "virtualservices"), _may(sandbox, "get", "virtualservices")) == (False, True)
    assert _vs(sandbox)["metadata"]["labels"] == {"app": "payments"}


def test_a_forbidden_subresource_leaves_the_resource_itself_allowed(sandbox: Sandbox) -> None:
    sandbox.api.rbac.forbid("patch", "apps", "deployments/scale")

    assert not _may(sandbox, "patch", "deployments", "scale", group="apps")
    assert _may(sandbox, "patch", "deployments", group="apps")


def test_a_delayed_answer_comes_after_the_write_is_already_in_effect(sandbox: Sandbox) -> None:
    sandbox.api.delay_write_answers(0.3)
    seen: list[dict[str, Any]] = []
    original = sandbox.api.answer_delay

    def look_then_wait(method: str) -> float:
        seen.append(sandbox.store.get(VS_KEY) or {})  # the write was applied before the answer waits
        return original(method)

    sandbox.api.answer_delay = look_then_wait  # type: ignore[method-assign]

    CustomObjectsApi(sandbox.client).patch_namespaced_custom_object(
        *ISTIO, "payments", {"metadata": {"labels": {"tier": "edge"}}})

    assert seen[-1]["metadata"]["labels"]["tier"] == "edge"
    assert original("PATCH") == 0.3 and original("GET") == 0.0


# ---------------------------------------------------------------- PUT


def test_a_put_without_resource_version_on_a_custom_resource_answers_422(sandbox: Sandbox) -> None:
    body = _vs(sandbox)
    del body["metadata"]["resourceVersion"]

    with pytest.raises(ApiException) as caught:
        CustomObjectsApi(sandbox.client).replace_namespaced_custom_object(*ISTIO, "payments", body)

    assert caught.value.status == 422


def test_a_put_with_a_stale_resource_version_answers_409(sandbox: Sandbox) -> None:
    body = _vs(sandbox)
    CustomObjectsApi(sandbox.client).patch_namespaced_custom_object(
        *ISTIO, "payments", {"metadata": {"labels": {"tier": "edge"}}}
    )
    body["spec"]["hosts"] = ["other"]

    with pytest.raises(ApiException) as caught:
        CustomObjectsApi(sandbox.client).replace_namespaced_custom_object(*ISTIO, "payments", body)

    assert caught.value.status == 409
    assert (sandbox.store.get(VS_KEY) or {})["spec"]["hosts"] == ["payments"]


def test_a_put_with_the_current_resource_version_replaces_the_object(sandbox: Sandbox) -> None:
    body = _vs(sandbox)
    body["spec"]["hosts"] = ["payments", "payments.example.com"]

    after = _obj(CustomObjectsApi(sandbox.client).replace_namespaced_custom_object(*ISTIO, "payments", body))

    assert after["spec"]["hosts"] == ["payments", "payments.example.com"]
    assert after["metadata"]["generation"] == 2
    assert after["metadata"]["uid"] == body["metadata"]["uid"]


def test_a_put_of_a_deployment_without_resource_version_is_an_unconditional_update(sandbox: Sandbox) -> None:
    apps = AppsV1Api(sandbox.client)
    deployment = apps.read_namespaced_deployment("payments-v1", "payments")
    assert deployment.metadata is not None
    deployment.metadata.resource_version = None
    deployment.spec.replicas = 2

    after = apps.replace_namespaced_deployment("payments-v1", "payments", deployment)

    assert after.spec.replicas == 2


# ---------------------------------------------------------------- auth, failure injection, records


def test_requests_without_the_bearer_token_answer_401(sandbox: Sandbox) -> None:
    anonymous = ApiClient(Configuration(host=sandbox.api.url))
    wrong = Configuration(host=sandbox.api.url)
    wrong.api_key["authorization"] = "not-the-token"
    wrong.api_key_prefix["authorization"] = "Bearer"

    with pytest.raises(ApiException) as no_token:
        CustomObjectsApi(anonymous).get_namespaced_custom_object(*ISTIO, "payments")
    with pytest.raises(ApiException) as bad_token:
        CustomObjectsApi(ApiClient(wrong)).get_namespaced_custom_object(*ISTIO, "payments")

    assert (no_token.value.status, bad_token.value.status) == (401, 401)
    assert [r.had_bearer for r in sandbox.api.requests] == [False, True]
    assert _status(no_token.value)["reason"] == "Unauthorized"


def test_the_client_sends_a_bearer_token_that_never_appears_in_records_or_logs(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox.client.configuration.debug = True

    _vs(sandbox)
    AppsV1Api(sandbox.client).read_namespaced_deployment_scale("payments-v1", "payments")

    captured = capsys.readouterr()
    assert sandbox.client.configuration.debug is False
    assert [r.had_bearer for r in sandbox.api.requests] == [True, True]
    assert sandbox.token not in repr(sandbox.api.requests)
    assert sandbox.token not in caplog.text + captured.out + captured.err


def _codes_of_reads(sandbox: Sandbox, reads: int) -> list[int]:
    """The status of each of ``reads`` GETs of the VirtualService."""
    codes = []
    for _ in range(reads):
        try:
            _vs(sandbox)
            codes.append(200)
        except ApiException as exc:
            codes.append(int(exc.status or 0))
    return codes


def test_fail_next_answers_the_given_status_only_the_given_number_of_times(sandbox: Sandbox) -> None:
    sandbox.api.fail_next("GET", "/virtualservices/payments", 503, times=2)
    snapshot = sandbox.store.snapshot()

    codes = _codes_of_reads(sandbox, 3)

    assert codes == [503, 503, 200]
    assert sandbox.store.snapshot() == snapshot


def test_fail_next_can_let_some_matching_requests_through_first(sandbox: Sandbox) -> None:
    sandbox.api.fail_next("GET", "/virtualservices/payments", 500, times=1, skip=2)

    codes = _codes_of_reads(sandbox, 4)

    assert codes == [200, 200, 500, 200]


def test_two_fake_servers_serve_their_own_clusters(monkeypatch: pytest.MonkeyPatch) -> None:
    stores = {f"c-{uuid.uuid4().hex[:6]}": seeded_store() for _ in range(2)}
    servers = [FakeKubeApi(store) for store in stores.values()]
    try:
        urls = {name: server.start() for name, server in zip(stores, servers, strict=True)}
        monkeypatch.setenv(SANDBOX_CLUSTERS_ENV, json.dumps(urls))
        first, second = (api_client_for(ClusterRef(sandbox=name)) for name in stores)
        CustomObjectsApi(first).patch_namespaced_custom_object(
            *ISTIO, "payments", {"metadata": {"labels": {"only": "first"}}}
        )

        labels = [
            _obj(CustomObjectsApi(c).get_namespaced_custom_object(*ISTIO, "payments"))["metadata"]["labels"]
            for c in (first, second)
        ]
    finally:
        for server in servers:
            server.stop()

    assert labels == [{"app": "payments", "only": "first"}, {"app": "payments"}]
    assert api_client_for(ClusterRef(sandbox=next(iter(stores)))) is first


def test_an_unknown_sandbox_cluster_is_a_mesh_access_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SANDBOX_CLUSTERS_ENV, json.dumps({"known": "http://127.0.0.1:9"}))

    with pytest.raises(MeshAccessError, match="unknown"):
        api_client_for(ClusterRef(sandbox="unknown"))


def test_a_kubeconfig_cluster_reaches_the_api_with_its_token(sandbox: Sandbox, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sbx", "cluster": {"server": sandbox.api.url}}],
        "users": [{"name": "drill", "user": {"token": sandbox.token}}],
        "contexts": [{"name": "drill@sbx", "context": {"cluster": "sbx", "user": "drill"}}],
        "current-context": "other",
    }))
    cluster = ClusterRef(kubeconfig=str(kubeconfig), context="drill@sbx")

    client = api_client_for(cluster)
    obj = _obj(CustomObjectsApi(client).get_namespaced_custom_object(*ISTIO, "payments"))

    assert obj["metadata"]["name"] == "payments"
    assert sandbox.api.requests[-1].had_bearer
    client.configuration.debug = True
    assert client.configuration.debug is False


def test_a_missing_kubeconfig_is_a_mesh_access_error(tmp_path: Path) -> None:
    cluster = ClusterRef(kubeconfig=str(tmp_path / "absent"), context="nope")

    with pytest.raises(MeshAccessError):
        api_client_for(cluster)


# ---------------------------------------------------------------- the merge patch algorithm (RFC 7386 examples;
# the JSON patch the server applies is livefire.mesh.jsonpatch, tested in tests/unit/test_jsonpatch.py)


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        (["a", "b"], {"a": "c"}, {"a": "c"}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ],
)
def test_merge_patch_follows_rfc_7386(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected
