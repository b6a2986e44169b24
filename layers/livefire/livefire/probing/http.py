"""A minimal HTTP/1.1 client on asyncio streams: one fresh connection per probe, every failure classified.

A kept-alive connection can hide a DNS or load-balancer failover, so each probe opens its own connection,
sends ``Connection: close`` and reads the answer to the end (or 64 KiB of body, whichever comes first).
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from livefire.egress import EgressPolicy, EgressRefused, check_addresses, current_policy, ip_literal
from livefire.spec import Expect, ServedBy

BODY_LIMIT = 64 * 1024
_HEADER_LINE_LIMIT = 16 * 1024
_MAX_HEADERS = 200
USER_AGENT = "livefire-probe"
_URL_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))  # keep printable ASCII, percent-encode the rest

# The error classes a sample can carry.
TIMEOUT = "timeout"
CONNECT_REFUSED = "connect_refused"
DNS = "dns"
TLS = "tls"
RESET = "reset"
PROTOCOL = "protocol"
EGRESS = "egress_refused"  # the target resolved to an address the egress rules refuse (livefire/egress.py)
HTTP_5XX = "http_5xx"
STATUS = "status"
BODY = "body"


@dataclass(frozen=True)
class ProbeOutcome:
    ok: bool
    status: int | None = None
    error: str | None = None
    served_by: str | None = None
    version: str | None = None


class _ProtocolError(Exception):
    """The peer answered something that is not an HTTP/1.x response."""


class _ConnectError(Exception):
    def __init__(self, error_class: str) -> None:
        super().__init__(error_class)
        self.error_class = error_class


@dataclass(frozen=True)
class ParsedUrl:
    scheme: str
    host: str
    port: int
    target: str

    @property
    def authority(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def parse_url(url: str) -> ParsedUrl:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    try:
        host = parts.hostname.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"not a valid host name: {parts.hostname!r}") from None
    return ParsedUrl(parts.scheme, host, port, quote(target, safe=_URL_SAFE))


def _connect_address(url: ParsedUrl, resolve: Mapping[str, str]) -> tuple[str, int]:
    """Where to connect: ``resolve["host:port"] = "ip:port"`` overrides DNS, like curl --resolve."""
    override = resolve.get(f"{url.host}:{url.port}")
    if override is None:
        return url.host, url.port
    host, _, port = override.rpartition(":")
    return host.strip("[]"), int(port)


async def probe_once(
    url: str,
    *,
    timeout: float,
    resolve: Mapping[str, str],
    served_by: ServedBy,
    expect: Expect,
    ssl_context: ssl.SSLContext | None,
) -> ProbeOutcome:
    """GET ``url`` once on a fresh connection; never raises for a network or HTTP failure."""
    parsed = parse_url(url)
    try:
        async with asyncio.timeout(timeout):
            status, headers, body = await _exchange(parsed, resolve, ssl_context)
    except TimeoutError:
        return ProbeOutcome(ok=False, error=TIMEOUT)
    except _ConnectError as exc:
        return ProbeOutcome(ok=False, error=exc.error_class)
    except _ProtocolError:
        return ProbeOutcome(ok=False, error=PROTOCOL)
    except ssl.SSLError:
        return ProbeOutcome(ok=False, error=TLS)
    except (asyncio.IncompleteReadError, OSError):
        return ProbeOutcome(ok=False, error=RESET)
    return judge(status, headers, body, served_by=served_by, expect=expect)


def judge(status: int, headers: Mapping[str, str], body: bytes, *, served_by: ServedBy, expect: Expect) -> ProbeOutcome:
    """Classify a complete answer and read who served it."""
    region, version = _served_by(headers, body, served_by)
    error: str | None = None
    if status not in expect.status:
        error = HTTP_5XX if status >= 500 else STATUS
    elif expect.body_contains is not None and expect.body_contains.encode() not in body:
        error = BODY
    return ProbeOutcome(ok=error is None, status=status, error=error, served_by=region, version=version)


def _served_by(headers: Mapping[str, str], body: bytes, spec: ServedBy) -> tuple[str | None, str | None]:
    version = headers.get(spec.version_header.lower()) if spec.version_header else None
    if spec.json_field:
        return _json_field(body, spec.json_field), version
    region = headers.get(spec.header.lower()) if spec.header else None
    return region, version


def _json_field(body: bytes, path: str) -> str | None:
    try:
        value: Any = json.loads(body)
    except ValueError:
        return None
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)


async def _open(
    url: ParsedUrl, resolve: Mapping[str, str], ssl_context: ssl.SSLContext | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = _connect_address(url, resolve)
    tls: dict[str, Any] = {}
    if url.scheme == "https":
        tls = {"ssl": ssl_context or ssl.create_default_context(), "server_hostname": url.host}
    try:
        policy = current_policy()
        if policy.unrestricted:
            return await asyncio.open_connection(host, port, limit=_HEADER_LINE_LIMIT, **tls)
        # Resolved once and checked here: the address connected to is the address the egress rules allowed.
        addresses = await _allowed_addresses(host, port, policy)
        for address in addresses[:-1]:
            try:
                return await asyncio.open_connection(address, port, limit=_HEADER_LINE_LIMIT, **tls)
            except OSError:
                continue  # the next address of the name, as a resolving connect would try it
        return await asyncio.open_connection(addresses[-1], port, limit=_HEADER_LINE_LIMIT, **tls)
    except EgressRefused:
        raise _ConnectError(EGRESS) from None
    except socket.gaierror:
        raise _ConnectError(DNS) from None
    except TimeoutError:
        raise _ConnectError(TIMEOUT) from None
    except ssl.SSLError:
        raise _ConnectError(TLS) from None
    except (ConnectionResetError, ConnectionAbortedError, asyncio.IncompleteReadError):
        # The TCP connection was accepted and then dropped (during the TLS handshake).
        raise _ConnectError(RESET) from None
    except OSError:
        raise _ConnectError(CONNECT_REFUSED) from None


async def _allowed_addresses(host: str, port: int, policy: EgressPolicy) -> list[str]:
    literal = ip_literal(host)
    if literal is not None:
        return check_addresses(host, [literal], policy)
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return check_addresses(host, list(dict.fromkeys(str(info[4][0]) for info in infos)), policy)


async def _exchange(
    url: ParsedUrl, resolve: Mapping[str, str], ssl_context: ssl.SSLContext | None
) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await _open(url, resolve, ssl_context)
    try:
        request = (
            f"GET {url.target} HTTP/1.1\r\n"
            f"Host: {url.authority}\r\n"
            f"User-Agent: {USER_AGENT}\r\n"
            "Accept: */*\r\n"
            "Connection: close\r\n\r\n"
        )
        writer.write(request.encode("ascii"))
        await writer.drain()
        status, headers = await _read_head(reader)
        while 100 <= status < 200:  # interim answers (100 Continue, 103 Early Hints) precede the real one
            status, headers = await _read_head(reader)
        body = b"" if status in (204, 304) else await _read_body(reader, headers)
        return status, headers, body
    finally:
        writer.close()


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise _ProtocolError("header line too long") from None
    return line.rstrip(b"\r\n")


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status_line = await _read_line(reader)
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise _ProtocolError("bad status line")
    status = int(parts[1])
    if not 100 <= status <= 599:
        raise _ProtocolError("bad status code")
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADERS):
        line = await _read_line(reader)
        if not line:
            return status, headers
        name, sep, value = line.partition(b":")
        if not sep or not name.strip():
            raise _ProtocolError("bad header line")
        key = name.strip().decode("latin-1").lower()
        text = value.strip().decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    raise _ProtocolError("too many headers")


async def _read_body(reader: asyncio.StreamReader, headers: Mapping[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return await _read_chunked(reader)
    length = headers.get("content-length")
    if length is not None:
        try:
            size = int(length.split(",")[0])
        except ValueError:
            raise _ProtocolError("bad content-length") from None
        if size < 0:
            raise _ProtocolError("bad content-length")
        return await reader.readexactly(min(size, BODY_LIMIT))
    body = bytearray()
    while len(body) < BODY_LIMIT:
        data = await reader.read(BODY_LIMIT - len(body))
        if not data:
            break
        body += data
    return bytes(body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while len(body) < BODY_LIMIT:
        size_line = await _read_line(reader)
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _ProtocolError("bad chunk size") from None
        if size == 0:
            break
        if size > BODY_LIMIT - len(body):
            body += await reader.readexactly(BODY_LIMIT - len(body))
            break
        body += await reader.readexactly(size)
        if await _read_line(reader):
            raise _ProtocolError("chunk not terminated by CRLF")
    return bytes(body)
