"""``?watch=true`` on the fake Kubernetes API: event streams with resourceVersions and bookmarks, always bounded
(by timeoutSeconds or the server's stop), read with the official client's Watch and with plain HTTP."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Generator, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from kubernetes import watch
from kubernetes.client import CustomObjectsApi

from livefire_local.sandbox.store import HISTORY
from tests.component.kube_fixtures import VS_KEY, Sandbox, running_sandbox

ISTIO = ("networking.istio.io", "v1", "payments", "virtualservices")
COLLECTION = "/apis/networking.istio.io/v1/namespaces/payments/virtualservices"


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    with running_sandbox(monkeypatch) as running:
        yield running


def stream(sandbox: Sandbox, query: str) -> Generator[dict[str, Any], None, None]:
    """The events of one watch request, as they arrive (the response is read line by line)."""
    parts = urlsplit(sandbox.api.url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=20)
    connection.request("GET", f"{COLLECTION}?watch=true&{query}",
                       headers={"Authorization": f"Bearer {sandbox.token}"})
    response = connection.getresponse()
    try:
        assert response.status == 200
        while line := response.readline():
            yield json.loads(line)
    finally:
        connection.close()


def _patch_label(sandbox: Sandbox, value: str) -> dict[str, Any]:
    patched = CustomObjectsApi(sandbox.client).patch_namespaced_custom_object(
        *ISTIO, "payments", {"metadata": {"labels": {"drill": value}}})
    assert isinstance(patched, dict)
    return patched


def test_a_watch_from_a_lists_version_streams_each_later_change_in_order(sandbox: Sandbox) -> None:
    listed = CustomObjectsApi(sandbox.client).list_namespaced_custom_object(*ISTIO)
    assert isinstance(listed, dict)
    first = _patch_label(sandbox, "one")
    second = _patch_label(sandbox, "two")
    sandbox.store.delete(VS_KEY)

    events = list(stream(sandbox, f"resourceVersion={listed['metadata']['resourceVersion']}&timeoutSeconds=1"))

    assert [(e["type"], e["object"]["metadata"].get("labels", {}).get("drill")) for e in events] == [
        ("MODIFIED", "one"), ("MODIFIED", "two"), ("DELETED", "two")]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and versions[:2] == [int(first["metadata"]["resourceVersion"]),
                                                             int(second["metadata"]["resourceVersion"])]
    assert all(e["object"]["apiVersion"] == "networking.istio.io/v1" for e in events)


def test_a_watch_without_a_version_starts_with_the_matching_objects_and_follows_live_changes(
    sandbox: Sandbox,
) -> None:
    seen: list[tuple[str, str | None]] = []
    w = watch.Watch()

    def follow() -> None:
        for event in w.stream(CustomObjectsApi(sandbox.client).list_namespaced_custom_object, *ISTIO,
                              label_selector="app=payments", timeout_seconds=10):
            seen.append((event["type"], event["object"]["metadata"].get("labels", {}).get("drill")))
            if len(seen) == 2:
                w.stop()

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    while not seen and follower.is_alive():
        follower.join(timeout=0.05)
    _patch_label(sandbox, "live")
    follower.join(timeout=15)

    assert seen == [("ADDED", None), ("MODIFIED", "live")]


def test_a_watch_that_allows_bookmarks_gets_the_current_resource_version(sandbox: Sandbox) -> None:
    sandbox.api.bookmark_s = 0.1
    patched = _patch_label(sandbox, "one")

    events = stream(sandbox, f"resourceVersion={patched['metadata']['resourceVersion']}&allowWatchBookmarks=true"
                             "&timeoutSeconds=5")
    bookmark = next(events)
    events.close()

    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"]
    assert bookmark["object"]["kind"] == "VirtualService"


def test_a_watch_from_a_version_no_longer_kept_gets_one_410_expired_event(sandbox: Sandbox) -> None:
    current = sandbox.store.get(VS_KEY)
    assert current is not None
    for _ in range(HISTORY + 1):
        current = sandbox.store.replace(VS_KEY, current)

    events = list(stream(sandbox, "resourceVersion=1&timeoutSeconds=5"))

    assert [(e["type"], e["object"]["code"], e["object"]["reason"]) for e in events] == [("ERROR", 410, "Expired")]


def test_a_watch_ends_when_the_server_stops(sandbox: Sandbox) -> None:
    events = stream(sandbox, "timeoutSeconds=600")
    assert next(events)["type"] == "ADDED"
    ended = threading.Event()

    def drain() -> None:
        for _ in events:
            pass
        ended.set()

    threading.Thread(target=drain, daemon=True).start()
    sandbox.api.stop()

    assert ended.wait(timeout=10)


def test_a_watch_filters_one_object_by_field_selector(sandbox: Sandbox) -> None:
    events = list(stream(sandbox, "fieldSelector=metadata.name%3Dother&timeoutSeconds=0.5"))
    named = list(stream(sandbox, "fieldSelector=metadata.name%3Dpayments&timeoutSeconds=0.5"))

    assert events == []
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in named] == [("ADDED", "payments")]


def test_an_object_leaving_and_joining_a_watchs_label_selector_is_seen_deleted_and_added(sandbox: Sandbox) -> None:
    start = _patch_label(sandbox, "out")["metadata"]["resourceVersion"]
    _patch_label(sandbox, "in")
    _patch_label(sandbox, "in-again")
    _patch_label(sandbox, "out")

    events = list(stream(sandbox, f"resourceVersion={start}&timeoutSeconds=0.5"
                                  "&labelSelector=drill%20in%20(in,in-again)"))

    assert [(e["type"], e["object"]["metadata"]["labels"]["drill"]) for e in events] == [
        ("ADDED", "in"), ("MODIFIED", "in-again"), ("DELETED", "out")]
