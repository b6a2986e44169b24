"""What the sandbox's fake Kubernetes API serves, and the request paths that name it.

The Istio kinds come from the vendored CRDs (schema.py: their versions, names, short names and categories), apps/v1
Deployments with their ``scale`` subresource are built in, and ``SelfSubjectAccessReview`` is the one resource of
``authorization.k8s.io``. A path is namespaced (``/apis/G/V/namespaces/NS/PLURAL[/NAME[/SUB]]``) or cluster-wide
(``/apis/G/V/PLURAL``: lists and watches across namespaces).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from livefire_local.sandbox.kube_wire import ApiError
from livefire_local.sandbox.schema import crd_names, crd_schemas
from livefire_local.sandbox.store import KINDS, ObjectKey

REVIEW_GROUP = "authorization.k8s.io"
OBJECT_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
_PATH = re.compile(
    r"^/apis/(?P<group>[^/]+)/(?P<version>[^/]+)/(?:namespaces/(?P<namespace>[^/]+)/)?(?P<plural>[^/]+)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?$"
)


@dataclass(frozen=True)
class Served:
    """One resource as discovery shows it."""

    group: str
    plural: str
    kind: str
    versions: tuple[str, ...]  # the preferred first
    singular: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = tuple(OBJECT_VERBS)
    custom: bool = True  # a custom resource: no strategic merge patch, resourceVersion needed on update

    def discovery(self) -> dict[str, Any]:
        """The APIResource entry of ``/apis/<group>/<version>``."""
        entry: dict[str, Any] = {"name": self.plural, "singularName": self.singular, "namespaced": self.namespaced,
                                 "kind": self.kind, "verbs": list(self.verbs)}
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        return entry


_SCALE = {"name": "deployments/scale", "singularName": "", "namespaced": True, "group": "autoscaling",
          "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}


@functools.cache
def served() -> dict[tuple[str, str], Served]:
    """(group, plural) -> what is served."""
    versions: dict[tuple[str, str], list[str]] = {}
    for group, plural, version in crd_schemas():
        versions.setdefault((group, plural), []).append(version)
    table: dict[tuple[str, str], Served] = {}
    for kind, (group, plural) in KINDS.items():
        if group == "apps":
            table[(group, plural)] = Served(group, plural, kind, ("v1",), "deployment", short_names=("deploy",),
                                            categories=("all",), custom=False)
            continue
        names = crd_names()[(group, plural)]
        ordered = sorted(versions[(group, plural)], key=lambda v: (v != "v1", v))
        table[(group, plural)] = Served(group, plural, kind, tuple(ordered), names["singular"],
                                        short_names=tuple(names.get("shortNames", ())),
                                        categories=tuple(names.get("categories", ())))
    table[(REVIEW_GROUP, "selfsubjectaccessreviews")] = Served(
        REVIEW_GROUP, "selfsubjectaccessreviews", "SelfSubjectAccessReview", ("v1",), "", namespaced=False,
        verbs=("create",), custom=False)
    return table


def subresources(group: str, plural: str) -> list[dict[str, Any]]:
    return [dict(_SCALE)] if (group, plural) == ("apps", "deployments") else []


class Resource:
    """One parsed request path of a stored kind (not the access review)."""

    def __init__(self, path: str) -> None:
        match = _PATH.match(path)
        if match is None:
            raise ApiError(404, f"the server could not find the requested resource ({path})")
        self.group = match["group"]
        self.version = match["version"]
        self.namespace: str | None = match["namespace"]
        self.plural = match["plural"]
        self.name: str | None = match["name"]
        self.sub: str | None = match["sub"]
        entry = served().get((self.group, self.plural))
        if entry is None or self.version not in entry.versions or self.group == REVIEW_GROUP:
            raise ApiError(404, f"the server could not find the requested resource ({path})")
        if self.name is not None and self.namespace is None:
            raise ApiError(404, f"the server could not find the requested resource ({path})")
        if self.sub is not None and not (self.plural == "deployments" and self.sub == "scale"):
            raise ApiError(404, f"the server could not find the requested resource ({path})")
        self.kind = entry.kind
        self.custom = entry.custom

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    def key(self, name: str | None = None) -> ObjectKey:
        named = name or self.name
        assert named is not None and self.namespace is not None
        return ObjectKey(self.group, self.plural, self.namespace, named)

    def details(self, name: str | None = None) -> dict[str, Any]:
        return {"name": name or self.name, "group": self.group, "kind": self.plural}

    def not_found(self) -> ApiError:
        return ApiError(404, f'{self.plural}.{self.group} "{self.name}" not found', self.details())

    def conflict(self) -> ApiError:
        return ApiError(
            409,
            f'Operation cannot be fulfilled on {self.plural}.{self.group} "{self.name}": '
            "the object has been modified; please apply your changes to the latest version and try again",
            self.details(),
        )

    def present(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The stored object as this request's version shows it (deep-copied by the store already)."""
        return {**obj, "apiVersion": self.api_version}
