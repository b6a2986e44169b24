"""An HTTPS receiver on loopback for webhook tests: a self-signed certificate for 127.0.0.1, trusted by the
client through ``SSL_CERT_FILE`` (which ``ssl.create_default_context()`` reads), and a handler that records every
request and answers from a callable."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from livefire_local.sandbox.tls import loopback_certificate


@dataclass(frozen=True)
class Received:
    method: str
    path: str  # with the query string
    headers: dict[str, str]
    body: bytes


Answer = Callable[[Received], tuple[int, bytes]]


def self_signed(folder: Path) -> tuple[Path, Path]:
    """(certificate chain, key) PEM files for 127.0.0.1, valid for a day; the chain's CA is what clients trust."""
    certificate = loopback_certificate("livefire webhook receiver")
    cert_path, key_path = folder / "receiver.pem", folder / "receiver.key"
    cert_path.write_bytes(certificate.chain_pem)
    key_path.write_bytes(certificate.key_pem)
    return cert_path, key_path


@dataclass
class HttpsReceiver:
    answer: Answer
    received: list[Received] = field(default_factory=list)
    port: int = 0

    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"


@contextmanager
def https_receiver(folder: Path, answer: Answer, monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpsReceiver]:
    """A running receiver whose certificate this process trusts (``SSL_CERT_FILE``) while the block runs."""
    cert, key = self_signed(folder)
    receiver = HttpsReceiver(answer)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            request = Received(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
            with lock:
                receiver.received.append(request)
            status, body = receiver.answer(request)
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    receiver.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
