"""A fake Kubernetes API server over a ``ClusterStore``: the requests the official client really makes.

Served on loopback: GET one / LIST (equality label selectors) / PATCH (merge, JSON and — on deployments and
their scale only — strategic merge) / PUT (with resourceVersion preconditions) of Istio VirtualServices,
DestinationRules, PeerAuthentications and apps/v1 Deployments with their ``scale`` subresource. Writes take
``dryRun=All`` (validated, answered, not persisted); ``SelfSubjectAccessReview`` and 403s follow the RBAC a test
sets (rbac.py); a test may delay the answers to writes (the write is in effect while the client waits).
Every error is a ``v1 Status`` with the code and reason a real API server gives.
"""

from __future__ import annotations

import copy
import hmac
import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from livefire.mesh.jsonpatch import JsonPatchError, json_patch
from livefire_local.sandbox.kube_wire import ApiError, dry_run, matches, merge_patch, selector_string
from livefire_local.sandbox.rbac import REVIEW_PATH, Access, AccessRules
from livefire_local.sandbox.store import KINDS, ClusterStore, ObjectKey

# (group, plural) -> the versions served
_SERVED: dict[tuple[str, str], tuple[str, ...]] = {
    ("networking.istio.io", "virtualservices"): ("v1", "v1beta1", "v1alpha3"),
    ("networking.istio.io", "destinationrules"): ("v1", "v1beta1", "v1alpha3"),
    ("security.istio.io", "peerauthentications"): ("v1", "v1beta1"),
    ("apps", "deployments"): ("v1",),
}
_KIND_OF = {plural: kind for kind, (_group, plural) in KINDS.items()}
_BUILTIN_GROUPS = {"apps"}
_PATH = re.compile(
    r"^/apis/(?P<group>[^/]+)/(?P<version>[^/]+)/namespaces/(?P<namespace>[^/]+)/(?P<plural>[^/]+)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?$"
)
_WRITES = frozenset({"PATCH", "PUT"})
_VERBS = {"GET": "get", "PATCH": "patch", "PUT": "update", "POST": "create", "DELETE": "delete"}
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    content_type: str | None
    had_bearer: bool


@dataclass
class _FailRule:
    method: str
    path_contains: str
    status: int
    remaining: int
    skip: int


# ---------------------------------------------------------------- the API


class _Resource:
    """One parsed request path."""

    def __init__(self, path: str) -> None:
        match = _PATH.match(path)
        if match is None:
            raise ApiError(404, f"the server could not find the requested resource ({path})")
        self.group = match["group"]
        self.version = match["version"]
        self.namespace = match["namespace"]
        self.plural = match["plural"]
        self.name: str | None = match["name"]
        self.sub: str | None = match["sub"]
        versions = _SERVED.get((self.group, self.plural))
        if versions is None or self.version not in versions:
            raise ApiError(404, f"the server could not find the requested resource ({path})")
        if self.sub is not None and not (self.plural == "deployments" and self.sub == "scale"):
            raise ApiError(404, f"the server could not find the requested resource ({path})")
        self.kind = _KIND_OF[self.plural]
        self.custom = self.group not in _BUILTIN_GROUPS

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    def key(self) -> ObjectKey:
        assert self.name is not None
        return ObjectKey(self.group, self.plural, self.namespace, self.name)

    def not_found(self) -> ApiError:
        return ApiError(
            404,
            f'{self.plural}.{self.group} "{self.name}" not found',
            {"name": self.name, "group": self.group, "kind": self.plural},
        )


class FakeKubeApi:
    """A loopback HTTP server that answers like a Kubernetes API server for one ``ClusterStore``."""

    def __init__(self, store: ClusterStore, token: str | None = None) -> None:
        self.store = store
        self._token = token
        self.url = ""
        self.requests: list[RecordedRequest] = []
        self._rules: list[_FailRule] = []
        self.rbac = AccessRules()  # what a test forbids; everything else is allowed
        self._answer_delay_s = 0.0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> str:
        if self._server is not None:
            return self.url
        api = self

        class Handler(_Handler):
            owner = api

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
            name=f"fake-kube-api-{self.store.name}",
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeKubeApi:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def fail_next(self, method: str, path_contains: str, status: int, times: int = 1, skip: int = 0) -> None:
        """Let ``skip`` matching requests through, then answer the next ``times`` with a v1 Status of
        ``status``, touching nothing."""
        with self._lock:
            self._rules.append(_FailRule(method.upper(), path_contains, status, times, skip))

    def delay_write_answers(self, seconds: float) -> None:
        """Answer every write (PATCH, PUT) ``seconds`` after it was applied, as a slow API server or network does:
        the change is in effect while the client still waits for the answer. 0 answers at once again."""
        with self._lock:
            self._answer_delay_s = seconds

    def answer_delay(self, method: str) -> float:
        with self._lock:
            return self._answer_delay_s if method in _WRITES else 0.0

    # -- request handling (called from handler threads)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _injected_failure(self, method: str, path: str) -> ApiError | None:
        with self._lock:
            for rule in self._rules:
                if rule.remaining > 0 and rule.method == method and rule.path_contains in path:
                    if rule.skip > 0:
                        rule.skip -= 1
                        continue
                    rule.remaining -= 1
                    return ApiError(rule.status, f"injected failure {rule.status} for {method} {path}")
        return None

    def _authorized(self, header: str | None) -> bool:
        if self._token is None:
            return True
        expected = f"Bearer {self._token}".encode()
        return header is not None and hmac.compare_digest(header.encode(), expected)

    def handle(
        self, method: str, path: str, *, query: dict[str, str], content_type: str | None, body: bytes,
        authorization: str | None,
    ) -> tuple[int, dict[str, Any]]:
        self._record(
            RecordedRequest(
                method, path, dict(query), content_type,
                had_bearer=bool(authorization and authorization.startswith("Bearer ")),
            )
        )
        try:
            if not self._authorized(authorization):
                raise ApiError(401, "Unauthorized")
            injected = self._injected_failure(method, path)
            if injected is not None:
                raise injected
            if method == "POST" and path == REVIEW_PATH:
                return 201, self._review(self._json(body))
            resource = _Resource(path)
            self._check_access(method, resource, query)
            persist = not dry_run(query)
            if method == "GET":
                return 200, self._get(resource, query)
            if method == "PATCH":
                return 200, self._patch(resource, content_type, self._json(body), persist=persist)
            if method == "PUT":
                return 200, self._put(resource, self._json(body), persist=persist)
            raise ApiError(405, f"method {method} is not supported by this fake API server")
        except ApiError as error:
            return error.code, error.status()

    def _check_access(self, method: str, resource: _Resource, query: dict[str, str]) -> None:
        verb = _VERBS.get(method, method.lower())
        if method == "GET" and resource.name is None:
            verb = "watch" if query.get("watch") in ("true", "1") else "list"
        plural = f"{resource.plural}/{resource.sub}" if resource.sub else resource.plural
        access = Access(verb, resource.group, plural, resource.namespace)
        if not self.rbac.allows(access):
            raise ApiError(403, self.rbac.denial(access, resource.name),
                           {"name": resource.name, "group": resource.group, "kind": resource.plural})

    def _review(self, body: Any) -> dict[str, Any]:
        try:
            return self.rbac.review(body)
        except ValueError as exc:
            raise ApiError(400, f"SelfSubjectAccessReview is invalid: {exc}") from None

    @staticmethod
    def _json(body: bytes) -> Any:
        try:
            return json.loads(body or b"null")
        except ValueError as exc:
            raise ApiError(400, f"the request body is not valid JSON: {exc}") from None

    # -- views

    def _present(self, resource: _Resource, obj: dict[str, Any]) -> dict[str, Any]:
        if resource.sub == "scale":
            return self._scale(obj)
        shown = copy.deepcopy(obj)
        shown["apiVersion"] = resource.api_version
        return shown

    @staticmethod
    def _scale(deployment: dict[str, Any]) -> dict[str, Any]:
        meta = deployment["metadata"]
        replicas = int(deployment.get("spec", {}).get("replicas", 1))
        match_labels = deployment.get("spec", {}).get("selector", {}).get("matchLabels", {})
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                key: meta[key]
                for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if key in meta
            },
            "spec": {"replicas": replicas},
            "status": {"replicas": replicas, "selector": selector_string(match_labels)},
        }

    # -- verbs

    def _get(self, resource: _Resource, query: dict[str, str]) -> dict[str, Any]:
        if resource.name is None:
            selector = query.get("labelSelector", "")
            with self.store.lock:
                items = [
                    self._present(resource, obj)
                    for obj in self.store.list(resource.group, resource.plural, resource.namespace)
                    if matches(obj["metadata"].get("labels") or {}, selector)
                ]
                version = self.store.current_version()
            return {
                "apiVersion": resource.api_version,
                "kind": f"{resource.kind}List",
                "metadata": {"resourceVersion": version},
                "items": items,
            }
        obj = self.store.get(resource.key())
        if obj is None:
            raise resource.not_found()
        return self._present(resource, obj)

    def _patch(self, resource: _Resource, content_type: str | None, patch: Any, *, persist: bool) -> dict[str, Any]:
        if resource.name is None:
            raise ApiError(405, "PATCH needs an object name")
        media = (content_type or "").split(";")[0].strip().lower()
        if media == STRATEGIC_PATCH and resource.custom:
            raise ApiError(
                415,
                "the body of the request was in an unknown format - accepted media types include: "
                f"{JSON_PATCH}, {MERGE_PATCH}, application/apply-patch+yaml",
            )
        if media not in (MERGE_PATCH, JSON_PATCH, STRATEGIC_PATCH):
            raise ApiError(415, f"unsupported patch media type {content_type!r}")
        with self.store.lock:
            current = self.store.get(resource.key())
            if current is None:
                raise resource.not_found()
            view = self._present(resource, current)
            if media == JSON_PATCH:
                try:
                    patched = json_patch(view, patch)
                except JsonPatchError as exc:
                    raise ApiError(422, f"the server rejected our request due to an error: {exc}") from None
            else:
                if not isinstance(patch, dict):
                    raise ApiError(400, "a merge patch must be a JSON object")
                patched = merge_patch(view, patch)
            wanted = patched.get("metadata", {}).get("resourceVersion") if isinstance(patched, dict) else None
            if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
                raise self._conflict(resource)
            return self._store(resource, current, patched, persist=persist)

    def _put(self, resource: _Resource, body: Any, *, persist: bool) -> dict[str, Any]:
        if resource.name is None:
            raise ApiError(405, "PUT needs an object name")
        if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
            raise ApiError(400, "the body must be an object with metadata")
        if body["metadata"].get("name") not in (None, resource.name):
            raise ApiError(400, "the name of the object does not match the name on the URL")
        with self.store.lock:
            current = self.store.get(resource.key())
            if current is None:
                raise resource.not_found()
            wanted = body["metadata"].get("resourceVersion")
            if wanted is None and resource.custom:
                raise ApiError(
                    422,
                    f'{resource.kind}.{resource.group} "{resource.name}" is invalid: '
                    "metadata.resourceVersion: Invalid value: 0: must be specified for an update",
                )
            if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
                raise self._conflict(resource)
            return self._store(resource, current, body, persist=persist)

    def _conflict(self, resource: _Resource) -> ApiError:
        return ApiError(
            409,
            f'Operation cannot be fulfilled on {resource.plural}.{resource.group} "{resource.name}": '
            "the object has been modified; please apply your changes to the latest version and try again",
            {"name": resource.name, "group": resource.group, "kind": resource.plural},
        )

    def _store(self, resource: _Resource, current: dict[str, Any], new: Any, *, persist: bool) -> dict[str, Any]:
        """Validate ``new`` (the client's view of the object after the write) and store it; with ``persist`` False
        (``dryRun=All``) answer what would be stored and store nothing."""
        if not isinstance(new, dict):
            raise ApiError(422, "the object must be a JSON object")
        if resource.sub == "scale":
            replicas = new.get("spec", {}).get("replicas") if isinstance(new.get("spec"), dict) else None
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise ApiError(
                    422, f'Scale.autoscaling "{resource.name}" is invalid: spec.replicas: must be >= 0'
                )
            updated = copy.deepcopy(current)
            updated.setdefault("spec", {})["replicas"] = replicas
            return self._present(resource, self.store.replace(resource.key(), updated) if persist else updated)
        meta = new.get("metadata")
        if not isinstance(meta, dict) or meta.get("name", resource.name) != resource.name:
            raise ApiError(422, f"metadata.name: Invalid value: the name must stay {resource.name!r}")
        if meta.get("namespace", resource.namespace) != resource.namespace:
            raise ApiError(422, "metadata.namespace: Invalid value: the namespace cannot change")
        if new.get("kind", resource.kind) != resource.kind:
            raise ApiError(400, f"kind must be {resource.kind}")
        for field in ("labels", "annotations"):
            value = meta.get(field)
            if value is not None and not (
                isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
            ):
                raise ApiError(422, f"metadata.{field}: Invalid value: values must be strings")
        stored = copy.deepcopy(new)
        stored["kind"] = resource.kind
        stored["apiVersion"] = current["apiVersion"]
        server_meta = current["metadata"]
        stored_meta = stored["metadata"]
        stored_meta["name"] = resource.name
        stored_meta["namespace"] = resource.namespace
        for key in ("uid", "creationTimestamp", "generation"):
            if key in server_meta:
                stored_meta[key] = server_meta[key]
            else:
                stored_meta.pop(key, None)
        if "status" in current:
            stored["status"] = current["status"]
        else:
            stored.pop("status", None)
        return self._present(resource, self.store.replace(resource.key(), stored) if persist else stored)


class _Handler(BaseHTTPRequestHandler):
    owner: FakeKubeApi
    protocol_version = "HTTP/1.1"
    timeout = 10
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid the delayed-ACK stall

    def _serve(self) -> None:
        split = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(split.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        code, payload = self.owner.handle(
            self.command, split.path, query=query, content_type=self.headers.get("Content-Type"),
            body=body, authorization=self.headers.get("Authorization"),
        )
        time.sleep(self.owner.answer_delay(self.command))  # after the write was applied: it is already in effect
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PATCH = do_PUT = do_POST = do_DELETE = _serve  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines are in ``FakeKubeApi.requests``."""
