"""fault.kind webhook: Inject calls one URL to start a fault, every rollback path calls another to end it.

The fault's document (``faults/<fault-id>-webhook.json``) holds both calls as the spec gives them and every call
made, with its send time and answer; it and the PENDING record exist before the inject call is sent. The injection
instant is the inject request's send time. A non-2xx answer (or no answer) is an injection error: the record is
FAILED and the catch path's rollback calls the rollback URL, since the inject may have started something anyway.
Headers come from a Secrets Manager secret (a JSON object of header names to values) and are never written to a
log, an error or the evidence (an answer that echoes them is redacted). Each request names the drill and fault
(``x-livefire-*``) and carries an ``Idempotency-Key``, so the receiver can tell a retried call from a new one.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from livefire.contracts import FaultState, PlannedFault
from livefire.errors import FaultInjectionFailed, RollbackFailed
from livefire.runtime import Runtime
from livefire.spec import Fault, WebhookCall
from livefire.store import FaultRecord

USER_AGENT = "livefire-webhook"
RESPONSE_LIMIT = 2000  # characters of an answer kept in the evidence
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# The sandbox's DNS override, as the probes read it (probing/window.py): {"host:port": "ip:port"}.
RESOLVE_ENV = "LIVEFIRE_RESOLVE"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@cache
def _secrets() -> Any:
    return boto3.client("secretsmanager")


def new_document(drill_id: str, planned: PlannedFault, fault: Fault) -> dict[str, Any]:
    """What Inject writes before the inject call: both calls as the spec gives them, and no call made yet."""
    assert fault.webhook is not None  # kind webhook (DrillSpec validation)
    return {
        "kind": "webhook", "drillId": drill_id, "faultId": planned.fault_id,
        "inject": fault.webhook.inject.model_dump(mode="json", by_alias=True, exclude_none=True),
        "rollback": fault.webhook.rollback.model_dump(mode="json", by_alias=True, exclude_none=True),
        "calls": [],
    }


@dataclass(frozen=True)
class CallResult:
    action: str
    method: str
    url: str
    sent_at_ms: int | None
    ended_at_ms: int
    status: int | None
    error: str | None
    response: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def outcome(self) -> str:
        return f"answered {self.status}" if self.status is not None else f"failed ({self.error})"


class _CallError(Exception):
    """A call that could not be made; the message never holds a header value."""


def _secret_headers(name: str) -> dict[str, str]:
    try:
        raw = _secrets().get_secret_value(SecretId=name).get("SecretString")
    except (ClientError, BotoCoreError) as exc:
        code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else type(exc).__name__
        raise _CallError(f"headersSecret {name!r} could not be read ({code})") from None
    try:
        headers = json.loads(raw or "")
    except ValueError:
        headers = None
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise _CallError(f"headersSecret {name!r} must be a JSON object of header names to string values")
    for header, value in headers.items():
        if not _TOKEN.match(str(header)) or "\r" in value or "\n" in value:
            raise _CallError(f"headersSecret {name!r}: header {str(header)[:64]!r} has an invalid name or value")
    return {str(k): v for k, v in headers.items()}


def _redact(text: str, values: Iterable[str]) -> str:
    for value in values:
        if value:
            text = text.replace(value, "[redacted]")
    return text


def _encode(body: Any) -> tuple[bytes | None, str | None]:
    if body is None:
        return None, None
    if isinstance(body, str):
        return body.encode(), "text/plain; charset=utf-8"
    return json.dumps(body).encode(), "application/json"


def _resolved(host_port: str) -> str | None:
    raw = os.environ.get(RESOLVE_ENV, "").strip()
    mapping = json.loads(raw) if raw else {}
    value = mapping.get(host_port) if isinstance(mapping, dict) else None
    return value if isinstance(value, str) else None


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    """A connected HTTP(S) connection to the URL's host (through ``LIVEFIRE_RESOLVE`` in the sandbox) and the
    request target."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    host, port = parts.hostname or "", parts.port or (443 if https else 80)
    context = ssl.create_default_context() if https else None
    connection = (http.client.HTTPSConnection(host, port, timeout=timeout, context=context) if https
                  else http.client.HTTPConnection(host, port, timeout=timeout))
    mapped = _resolved(f"{host}:{port}")
    if mapped is None:
        connection.connect()
    else:
        address, _, mapped_port = mapped.rpartition(":")
        sock = socket.create_connection((address, int(mapped_port)), timeout=timeout)
        connection.sock = context.wrap_socket(sock, server_hostname=host) if context is not None else sock
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return connection, target


def call(spec: WebhookCall, *, action: str, drill_id: str, fault_id: str) -> CallResult:
    """Make one call; never raises for the network or the answer (they are in the result)."""
    sent_at_ms: int | None = None
    status: int | None = None
    error: str | None = None
    response: str | None = None
    secret: dict[str, str] = {}
    try:
        headers = {"User-Agent": USER_AGENT, "x-livefire-drill-id": drill_id, "x-livefire-fault-id": fault_id,
                   "Idempotency-Key": f"{drill_id}/{fault_id}/{action}"}
        body, content_type = _encode(spec.body)
        if content_type is not None:
            headers["Content-Type"] = content_type
        if spec.headers_secret is not None:
            secret = _secret_headers(spec.headers_secret)
            headers |= secret
        connection, target = _connection(spec.url, spec.timeout)
        try:
            sent_at_ms = _now_ms()
            connection.request(spec.method, target, body=body, headers=headers)
            answer = connection.getresponse()
            status = answer.status
            response = _redact(answer.read(RESPONSE_LIMIT).decode("utf-8", "replace"), secret.values())
        finally:
            connection.close()
    except _CallError as exc:
        error = str(exc)
    except (OSError, http.client.HTTPException) as exc:
        error = type(exc).__name__  # the class only: a message may echo what was sent
    return CallResult(action=action, method=spec.method, url=spec.url, sent_at_ms=sent_at_ms,
                      ended_at_ms=_now_ms(), status=status, error=error, response=response)


def _call(record: FaultRecord, doc: dict[str, Any], action: str) -> CallResult:
    result = call(WebhookCall.model_validate(doc[action]), action=action, drill_id=record.drill_id,
                  fault_id=record.fault_id)
    doc["calls"].append(asdict(result))
    return result


# ---------------------------------------------------------------- inject / restore


def inject(record: FaultRecord, runtime: Runtime) -> FaultState:
    store = runtime.store
    doc: dict[str, Any] = runtime.get_json(record.snapshot_key)
    result = _call(record, doc, "inject")
    runtime.put_json(record.snapshot_key, doc)
    what = f"webhook inject {result.method} {result.url} {result.outcome}"
    if result.ok:
        marked = store.mark_fault(record.drill_id, record.fault_id, "INJECTED", expect="PENDING",
                                  injectedAtMs=result.sent_at_ms, detail=what)
    else:
        marked = store.mark_fault(record.drill_id, record.fault_id, "FAILED", expect="PENDING", detail=what)
    if not marked:
        _undo_late_inject(record, doc, runtime)
    if not result.ok:
        raise FaultInjectionFailed(f"{record.fault_id}: {what}; the rollback calls {doc['rollback']['url']}")
    return FaultState(fault_id=record.fault_id, status="INJECTED", injected_at_ms=result.sent_at_ms,
                      snapshot_key=record.snapshot_key, detail=what)


def _undo_late_inject(record: FaultRecord, doc: dict[str, Any], runtime: Runtime) -> None:
    """A rollback closed the record while the inject call was in flight (its rollback call may have come first):
    call the rollback URL again ourselves."""
    store = runtime.store
    late = f"{record.fault_id}: the drill was rolled back while the inject call was in flight"
    result = _call(record, doc, "rollback")
    runtime.put_json(record.snapshot_key, doc)
    if not result.ok:
        store.reopen_fault(record, f"{late}; the rollback call {result.outcome}")
        raise RollbackFailed(f"{late}; the rollback call {result.outcome}")
    store.mark_fault(record.drill_id, record.fault_id, "RESTORED", restoredAtMs=result.ended_at_ms,
                     restoredBy="inject", detail=f"{late}; the rollback call {result.outcome}")
    raise FaultInjectionFailed(f"{late}; the rollback URL was called again")


def restore(record: FaultRecord, runtime: Runtime, actor: str) -> tuple[FaultState, bool]:
    """Call the rollback URL; a non-2xx answer leaves the fault for the next rollback path (RollbackFailed)."""
    doc: dict[str, Any] = runtime.get_json(record.snapshot_key)
    result = _call(record, doc, "rollback")
    runtime.put_json(record.snapshot_key, doc)
    what = f"webhook rollback {result.method} {result.url} {result.outcome}"
    if not result.ok:
        raise RollbackFailed(f"{record.fault_id}: {what}")
    runtime.store.mark_fault(record.drill_id, record.fault_id, "RESTORED", restoredAtMs=result.ended_at_ms,
                             restoredBy=actor, detail=what)
    state = FaultState(fault_id=record.fault_id, status="RESTORED", injected_at_ms=record.injected_at_ms,
                       restored_at_ms=result.ended_at_ms, snapshot_key=record.snapshot_key, detail=what)
    return state, True
