"""A fake Kubernetes API server over a ``ClusterStore`` that real clients (the official Python client, kubectl)
accept, on loopback: plain HTTP, or TLS with a generated CA (tls.py) as ``livefire sandbox up`` serves it.

Discovery and OpenAPI (discovery.py); get, list (namespaced and cluster-wide, label and field selectors), create,
update, patch, delete with ``dryRun=All`` and schema admission (kube_verbs.py); ``?watch=true`` streams
(watch.py); ``SelfSubjectAccessReview`` and 403s from the RBAC a test sets (rbac.py); a bearer token (401
without it). A test may script failures and delay the answers to writes (the write is in effect while the client
waits). Every error is a ``v1 Status`` with the code and reason a real API server gives.
"""

from __future__ import annotations

import hmac
import json
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from livefire_local.sandbox.discovery import discovery
from livefire_local.sandbox.kube_verbs import Verbs
from livefire_local.sandbox.kube_wire import ApiError, Reply, dry_run
from livefire_local.sandbox.rbac import REVIEW_PATH, Access, AccessRules
from livefire_local.sandbox.resources import Resource
from livefire_local.sandbox.store import ClusterStore
from livefire_local.sandbox.tls import ServerCertificate
from livefire_local.sandbox.watch import WatchRequest, watch_events

_DELAYED = frozenset({"PATCH", "PUT"})
_VERBS = {"GET": "get", "PATCH": "patch", "PUT": "update", "POST": "create", "DELETE": "delete"}


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that fails the TLS handshake (it does not trust the CA) or hangs up is not the server's error."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class FakeKubeApi:
    """A loopback server that answers like a Kubernetes API server for one ``ClusterStore``."""

    bookmark_s = 1.0  # how often a watch that allows bookmarks gets one (a real server: about a minute)

    def __init__(self, store: ClusterStore, token: str | None = None, tls: ServerCertificate | None = None) -> None:
        self.store = store
        self._token = token
        self._tls = tls
        self.url = ""
        self.requests: list[RecordedRequest] = []
        self._rules: list[_FailRule] = []
        self.rbac = AccessRules()  # what a test forbids; everything else is allowed
        self._verbs = Verbs(store)
        self._answer_delay_s = 0.0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> str:
        if self._server is not None:
            return self.url
        api = self

        class Handler(_Handler):
            owner = api

        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), Handler)
        if self._tls is not None:  # the handshake runs in the handler's thread, never in the accept loop
            self._server.socket = self._tls.server_context().wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False)
        port = self._server.server_address[1]
        self.url = f"{'https' if self._tls else 'http'}://127.0.0.1:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
            name=f"fake-kube-api-{self.store.name}",
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving; open watches end within a tenth of a second."""
        if self._server is None:
            return
        self._stopping.set()
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

    def clear_failures(self) -> None:
        """Forget every failure ``fail_next`` arranged, answered or not."""
        with self._lock:
            self._rules.clear()

    def delay_write_answers(self, seconds: float) -> None:
        """Answer every PATCH and PUT ``seconds`` after it was applied, as a slow API server or network does:
        the change is in effect while the client still waits for the answer. 0 answers at once again."""
        with self._lock:
            self._answer_delay_s = seconds

    def answer_delay(self, method: str) -> float:
        with self._lock:
            return self._answer_delay_s if method in _DELAYED else 0.0

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
        authorization: str | None, accept: str = "",
    ) -> Reply:
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
            if method == "GET":
                found = discovery(path, accept)
                if found is not None:
                    return found
            if method == "POST" and path == REVIEW_PATH:
                return Reply(201, self._review(self._json(body)))
            return self._serve_resource(method, Resource(path), query, content_type, body)
        except ApiError as error:
            return Reply(error.code, error.status())

    def _serve_resource(self, method: str, resource: Resource, query: dict[str, str], content_type: str | None,
                        body: bytes) -> Reply:
        watching = method == "GET" and query.get("watch") in ("true", "1")
        self._check_access(method, resource, watching)
        if watching:
            if resource.name is not None:
                raise ApiError(405, "watch a collection, with fieldSelector=metadata.name=NAME for one object")
            request = WatchRequest.of(resource, query)
            return Reply(200, stream=watch_events(self.store, request, self._stopping.is_set, self.bookmark_s))
        if method == "GET":
            return self._verbs.get(resource, query)
        persist = not dry_run(query)
        if method == "POST":
            return self._verbs.create(resource, self._json(body), query, persist=persist)
        if method == "PATCH":
            return self._verbs.patch(resource, content_type, self._json(body), query, persist=persist)
        if method == "PUT":
            return self._verbs.put(resource, self._json(body), query, persist=persist)
        if method == "DELETE":
            return self._verbs.delete(resource, persist=persist)
        raise ApiError(405, f"method {method} is not supported by this fake API server")

    def _check_access(self, method: str, resource: Resource, watching: bool) -> None:
        verb = _VERBS.get(method, method.lower())
        if method == "GET" and resource.name is None:
            verb = "watch" if watching else "list"
        plural = f"{resource.plural}/{resource.sub}" if resource.sub else resource.plural
        access = Access(verb, resource.group, plural, resource.namespace)
        if not self.rbac.allows(access):
            raise ApiError(403, self.rbac.denial(access, resource.name), resource.details())

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
        reply = self.owner.handle(
            self.command, split.path, query=query, content_type=self.headers.get("Content-Type"),
            body=body, authorization=self.headers.get("Authorization"), accept=self.headers.get("Accept") or "",
        )
        time.sleep(self.owner.answer_delay(self.command))  # after the write was applied: it is already in effect
        self.send_response(reply.code)
        self.send_header("Content-Type", reply.content_type)
        for warning in reply.warnings:
            quoted = warning.replace("\\", "\\\\").replace('"', '\\"')
            self.send_header("Warning", f'299 - "{quoted}"')  # RFC 7234 warn-text: a quoted string
        if reply.stream is not None:
            self._stream(reply)
            return
        data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, reply: Reply) -> None:
        """One event per chunk; the connection closes when the stream ends (or the client goes away)."""
        assert reply.stream is not None
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            self.wfile.flush()
            for event in reply.stream:
                line = json.dumps(event).encode() + b"\n"
                self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client went away (a broken pipe, a reset, a TLS connection cut short)
            return

    do_GET = do_PATCH = do_PUT = do_POST = do_DELETE = _serve  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines are in ``FakeKubeApi.requests``."""
