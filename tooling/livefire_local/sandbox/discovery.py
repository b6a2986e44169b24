"""Discovery, as kubectl reads it before anything else: ``/version``, ``/api``, ``/apis``,
``/apis/<group>[/<version>]``, and the OpenAPI documents.

The OpenAPI v2 document (``/openapi/v2``, asked for as protobuf by kubectl 1.20's client-side validation) and the
v3 index (``/openapi/v3``) publish no schemas: kubectl then skips its own validation and the server's, from the
CRDs (schema.py), decides. Legacy (unaggregated) discovery only: a client asking for aggregated discovery gets the
plain lists, which every client accepts.
"""

from __future__ import annotations

from typing import Any

from livefire_local.sandbox.kube_wire import ApiError, Reply
from livefire_local.sandbox.resources import Served, served, subresources

SERVER_VERSION = {"major": "1", "minor": "30", "gitVersion": "v1.30.0-livefire-sandbox", "platform": "linux/amd64",
                  "goVersion": "go1.22", "compiler": "gc", "gitCommit": "", "gitTreeState": "clean",
                  "buildDate": "2024-04-17T00:00:00Z"}
OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def _groups() -> dict[str, list[Served]]:
    grouped: dict[str, list[Served]] = {}
    for entry in served().values():
        grouped.setdefault(entry.group, []).append(entry)
    return grouped


def _versions(entries: list[Served]) -> list[str]:
    """The group's versions, the preferred (its first resource's first) first."""
    ordered: list[str] = []
    for entry in entries:
        ordered += [v for v in entry.versions if v not in ordered]
    return ordered


def _group(name: str, entries: list[Served]) -> dict[str, Any]:
    versions = [{"groupVersion": f"{name}/{v}", "version": v} for v in _versions(entries)]
    return {"name": name, "versions": versions, "preferredVersion": versions[0]}


def _resource_list(group: str, version: str) -> dict[str, Any]:
    entries = [e for e in _groups().get(group, []) if version in e.versions]
    if not entries:
        raise ApiError(404, f"the server could not find the requested resource (get {group}/{version})")
    resources = [entry.discovery() for entry in entries]
    for entry in entries:
        resources += subresources(entry.group, entry.plural)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}",
            "resources": resources}


def discovery(path: str, accept: str = "") -> Reply | None:
    """The answer to a discovery path; None when ``path`` is not one."""
    path = path.rstrip("/") or "/"
    parts = path.strip("/").split("/")
    if path == "/version":
        return Reply(200, SERVER_VERSION)
    if path == "/api":  # the sandbox serves no core (v1) kind: no legacy version to discover
        return Reply(200, {"kind": "APIVersions", "versions": [], "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
    if path == "/apis":
        groups = [_group(name, entries) for name, entries in sorted(_groups().items())]
        return Reply(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    if parts[0] == "apis" and len(parts) == 2:
        entries = _groups().get(parts[1])
        if entries is None:
            raise ApiError(404, f"the server could not find the requested resource (get {parts[1]})")
        return Reply(200, {"kind": "APIGroup", "apiVersion": "v1", **_group(parts[1], entries)})
    if parts[0] == "apis" and len(parts) == 3:
        return Reply(200, _resource_list(parts[1], parts[2]))
    if path == "/openapi/v2" and "protobuf" in accept:
        return Reply(200, b"", content_type=OPENAPI_V2_PROTOBUF)  # an empty Document: no schemas published
    if path == "/openapi/v2":
        return Reply(200, {"swagger": "2.0", "info": {"title": "livefire sandbox", "version": "v1"}, "paths": {},
                           "definitions": {}})
    if path == "/openapi/v3":
        return Reply(200, {"paths": {}})
    return None
