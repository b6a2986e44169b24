"""A fake Kubernetes API server over a ``ClusterStore``: the requests the official client really makes.

Served on loopback: GET one / LIST (equality label selectors) / PATCH (merge, JSON and — on deployments and
their scale only — strategic merge) / PUT (with resourceVersion preconditions) of Istio VirtualServices,
DestinationRules, PeerAuthentications and apps/v1 Deployments with their ``scale`` subresource.
Every error is a ``v1 Status`` with the code and reason a real API server gives.
"""

from __future__ import annotations

import copy
import hmac
import json
import re
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"


class ApiError(Exception):
    """Answered to the client as a v1 Status."""

    def __init__(self, code: int, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": _REASONS.get(self.code, HTTPStatus(self.code).phrase.replace(" ", "")),
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


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


# ---------------------------------------------------------------- patches


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class JsonPatchError(Exception):
    """A JSON patch could not be applied; ``test_failed`` tells a failed ``test`` op apart."""

    def __init__(self, message: str, *, test_failed: bool = False) -> None:
        super().__init__(message)
        self.test_failed = test_failed


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise JsonPatchError(f"invalid JSON pointer {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _index(container: list[Any], token: str, *, for_add: bool) -> int:
    if for_add and token == "-":
        return len(container)
    if not re.fullmatch(r"0|[1-9][0-9]*", token):
        raise JsonPatchError(f"invalid array index {token!r}")
    index = int(token)
    if index > len(container) or (not for_add and index == len(container)):
        raise JsonPatchError(f"array index {index} out of range")
    return index


def _parent(doc: Any, parts: list[str]) -> Any:
    node = doc
    for token in parts[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise JsonPatchError(f"path segment {token!r} does not exist")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, for_add=False)]
        else:
            raise JsonPatchError(f"cannot traverse into {type(node).__name__} at {token!r}")
    return node


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts)
    token = parts[-1]
    if isinstance(parent, dict):
        if token not in parent:
            raise JsonPatchError(f"path {path!r} does not exist")
        return parent[token]
    if isinstance(parent, list):
        return parent[_index(parent, token, for_add=False)]
    raise JsonPatchError(f"path {path!r} does not exist")


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _parent(doc, parts)
    token = parts[-1]
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, token, for_add=True), value)
    else:
        raise JsonPatchError(f"cannot add at {path!r}")
    return doc


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        raise JsonPatchError("cannot remove the whole document")
    parent = _parent(doc, parts)
    token = parts[-1]
    if isinstance(parent, dict):
        if token not in parent:
            raise JsonPatchError(f"path {path!r} does not exist")
        del parent[token]
    elif isinstance(parent, list):
        del parent[_index(parent, token, for_add=False)]
    else:
        raise JsonPatchError(f"cannot remove at {path!r}")
    return doc


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 equals 1.0, but true does not equal 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)


def json_patch(document: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test); all or nothing."""
    if not isinstance(operations, list):
        raise JsonPatchError("a JSON patch must be an array of operations")
    doc = copy.deepcopy(document)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise JsonPatchError("every operation needs op and path")
        op, path = operation["op"], operation["path"]
        if not isinstance(path, str):
            raise JsonPatchError("path must be a string")
        if op in ("add", "replace", "test") and "value" not in operation:
            raise JsonPatchError(f"{op} needs a value")
        if op == "add":
            doc = _add(doc, path, copy.deepcopy(operation["value"]))
        elif op == "remove":
            doc = _remove(doc, path)
        elif op == "replace":
            _get(doc, path)
            if _pointer(path):
                doc = _remove(doc, path)
            doc = _add(doc, path, copy.deepcopy(operation["value"]))
        elif op in ("move", "copy"):
            source = operation.get("from")
            if not isinstance(source, str):
                raise JsonPatchError(f"{op} needs from")
            if op == "move" and (path + "/").startswith(source + "/") and path != source:
                raise JsonPatchError("cannot move a value into one of its children")
            value = copy.deepcopy(_get(doc, source))
            if op == "move":
                doc = _remove(doc, source)
            doc = _add(doc, path, value)
        elif op == "test":
            try:
                actual = _get(doc, path)
            except JsonPatchError as exc:
                raise JsonPatchError(f"test failed: {exc}", test_failed=True) from None
            if not _json_equal(actual, operation["value"]):
                raise JsonPatchError(f"test failed: value at {path!r} differs", test_failed=True)
        else:
            raise JsonPatchError(f"unknown op {op!r}")
    return doc


# ---------------------------------------------------------------- the API


def _matches(labels: dict[str, str], selector: str) -> bool:
    for raw in filter(None, (part.strip() for part in selector.split(","))):
        if "!=" in raw:
            key, value = (s.strip() for s in raw.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in raw:
            key, value = (s.strip() for s in raw.replace("==", "=").split("=", 1))
            if labels.get(key) != value:
                return False
        elif raw.startswith("!"):
            if raw[1:].strip() in labels:
                return False
        elif raw not in labels:
            return False
    return True


def _selector_string(match_labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))


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
            resource = _Resource(path)
            if method == "GET":
                return 200, self._get(resource, query)
            if method == "PATCH":
                return 200, self._patch(resource, content_type, self._json(body))
            if method == "PUT":
                return 200, self._put(resource, self._json(body))
            raise ApiError(405, f"method {method} is not supported by this fake API server")
        except ApiError as error:
            return error.code, error.status()

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
            "status": {"replicas": replicas, "selector": _selector_string(match_labels)},
        }

    # -- verbs

    def _get(self, resource: _Resource, query: dict[str, str]) -> dict[str, Any]:
        if resource.name is None:
            selector = query.get("labelSelector", "")
            with self.store.lock:
                items = [
                    self._present(resource, obj)
                    for obj in self.store.list(resource.group, resource.plural, resource.namespace)
                    if _matches(obj["metadata"].get("labels") or {}, selector)
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

    def _patch(self, resource: _Resource, content_type: str | None, patch: Any) -> dict[str, Any]:
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
            return self._store(resource, current, patched)

    def _put(self, resource: _Resource, body: Any) -> dict[str, Any]:
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
            return self._store(resource, current, body)

    def _conflict(self, resource: _Resource) -> ApiError:
        return ApiError(
            409,
            f'Operation cannot be fulfilled on {resource.plural}.{resource.group} "{resource.name}": '
            "the object has been modified; please apply your changes to the latest version and try again",
            {"name": resource.name, "group": resource.group, "kind": resource.plural},
        )

    def _store(self, resource: _Resource, current: dict[str, Any], new: Any) -> dict[str, Any]:
        """Validate ``new`` (the client's view of the object after the write) and store it."""
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
            return self._present(resource, self.store.replace(resource.key(), updated))
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
        return self._present(resource, self.store.replace(resource.key(), stored))


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
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PATCH = do_PUT = do_POST = do_DELETE = _serve  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines are in ``FakeKubeApi.requests``."""
