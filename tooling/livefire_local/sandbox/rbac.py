"""The sandbox API's RBAC: everything is allowed to its one user unless a test forbids it, and the answers a real
API server gives: a 403 ``Forbidden`` Status for a request, and ``SelfSubjectAccessReview`` (``POST
/apis/authorization.k8s.io/v1/selfsubjectaccessreviews``: "may I do verb X on resource Y in namespace Z?").
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

REVIEW_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
USER = "system:serviceaccount:livefire:drill"


@dataclass(frozen=True)
class Access:
    """One verb on one resource (``deployments/scale`` names a subresource) of a group, in a namespace."""

    verb: str
    group: str
    resource: str
    namespace: str | None = None  # None: cluster-wide


class AccessRules:
    """What the sandbox's user may not do; a rule without a namespace forbids the verb in every namespace."""

    def __init__(self) -> None:
        self._denied: set[Access] = set()
        self._lock = threading.Lock()

    def forbid(self, verb: str, group: str, resource: str, namespace: str | None = None) -> None:
        with self._lock:
            self._denied.add(Access(verb, group, resource, namespace))

    def allow_everything(self) -> None:
        with self._lock:
            self._denied.clear()

    def allows(self, access: Access) -> bool:
        with self._lock:
            return not ({access, Access(access.verb, access.group, access.resource)} & self._denied)

    def denial(self, access: Access, name: str | None) -> str:
        """The message of a real API server's 403."""
        group = access.group or '""'
        what = f'{access.resource.replace("/", ".")}.{access.group} "{name}"' if name else access.resource
        where = f' in the namespace "{access.namespace}"' if access.namespace else " at the cluster scope"
        return (f'{what} is forbidden: User "{USER}" cannot {access.verb} resource "{access.resource}" '
                f'in API group "{group}"{where}')

    def review(self, body: Any) -> dict[str, Any]:
        """The answer to a SelfSubjectAccessReview: the review with its ``status``."""
        spec = body.get("spec") if isinstance(body, dict) else None
        attributes = spec.get("resourceAttributes") if isinstance(spec, dict) else None
        if not isinstance(attributes, dict) or not attributes.get("verb"):
            raise ValueError("spec.resourceAttributes.verb is required")
        resource = str(attributes.get("resource", ""))
        if attributes.get("subresource"):
            resource = f"{resource}/{attributes['subresource']}"
        access = Access(str(attributes["verb"]), str(attributes.get("group", "")), resource,
                        attributes.get("namespace") or None)
        allowed = self.allows(access)
        status: dict[str, Any] = {"allowed": allowed}
        status["reason"] = "allowed by the sandbox" if allowed else "forbidden by the sandbox's RBAC for this test"
        return {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                "metadata": {"creationTimestamp": None}, "spec": {"resourceAttributes": attributes}, "status": status}
