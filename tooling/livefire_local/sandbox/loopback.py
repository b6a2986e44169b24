"""The loopback HTTP server every HTTP-facing part of the sandbox answers on (docs/architecture.md §10): a threading
server on 127.0.0.1 with an ephemeral port, the plain ``Request`` and ``Response`` it hands to a handler, and the
lifecycle (start, stop, a context manager) the regional services, the entrypoint, the outage control and the
marker tables share.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self, cast

LOOPBACK = "127.0.0.1"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: Mapping[str, str]  # names in lower case
    body: bytes = b""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def text_response(status: int, body: bytes) -> Response:
    return Response(status, {"content-type": "text/plain"}, body)


def json_response(status: int, document: object) -> Response:
    return Response(status, {"content-type": "application/json"}, json.dumps(document).encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many probes open fresh connections at once

    def __init__(self, respond: Callable[[Request], Response]) -> None:
        self.respond = respond
        super().__init__((LOOPBACK, 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "istio-envoy"
    sys_version = ""

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        try:
            response = cast(_Server, self.server).respond(request)
        except Exception:
            _log.exception("sandbox service failed on %s %s", self.command, self.path)
            response = text_response(500, b"internal error")
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except OSError:  # the client gave up (probe timeout); nothing left to answer
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a drill sends thousands of probes."""


class LoopbackServer:
    """A threading HTTP server on 127.0.0.1 (ephemeral port) answering every request with ``respond``."""

    def __init__(self, respond: Callable[[Request], Response]) -> None:
        self._respond = respond
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        if self._server is None:
            self._server = _Server(self._respond)
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=f"sandbox-http-{self._server.server_address[1]}", daemon=True)
            self._thread.start()
        return self.url

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


class LoopbackServed:
    """The lifecycle every HTTP-facing part of the sandbox shares: one LoopbackServer answering ``handle``."""

    _server: LoopbackServer

    def start(self) -> str:
        return self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return self._server.url
