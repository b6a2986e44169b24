"""fault.kind webhook: Inject calls one URL to start a fault, every rollback path calls another to end it.

The fault's document (``faults/<fault-id>-webhook.json``) holds both calls as the spec gives them and every call
made, with its send time and answer; it and the PENDING record exist before the inject call is sent. Each call's
bracket is [request sent, answer received]: the injection instant is the inject request's send time. A non-2xx
answer (or no answer) is an injection error: the record is FAILED and the catch path's rollback calls the rollback
URL, since the inject may have started something anyway. A dry run calls neither URL.
Secret headers and query parameters come from a Secrets Manager secret bound to the URL prefixes they may be sent
to (``SecretBox``, livefire/egress.py): they go only over https, only inside those prefixes, and never into a log,
an error or the evidence. A call connects only to an address the egress rules allow, resolved once. Its answer is
kept only when the spec asks (``storeResponse``), with every form of every secret value removed *before* it is cut
to ``RESPONSE_LIMIT`` characters (livefire/redaction.py). Each request names the drill and fault
(``x-livefire-*``) and carries an ``Idempotency-Key``, so the receiver can tell a retried call from a new one.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any
from urllib.parse import urlencode, urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from livefire.clock import now_ms
from livefire.contracts import PlannedFault
from livefire.egress import EgressRefused, SecretBox, connect, current_policy
from livefire.errors import FaultInjectionFailed, RollbackFailed
from livefire.faults.driver import Applied, Bracket, Checkpoint, DryRun, FaultTarget, Restored
from livefire.redaction import Redactor, redact_url
from livefire.spec import Fault, WebhookCall

USER_AGENT = "livefire-webhook"
RESPONSE_LIMIT = 2000  # characters of an answer kept in the evidence (storeResponse), after redaction
# Bytes of an answer read: redaction sees well past the cut, so a secret across it is removed whole.
RESPONSE_READ_LIMIT = 64 * 1024
# The sandbox's DNS override, as the probes read it (probing/window.py): {"host:port": "ip:port"}.
RESOLVE_ENV = "LIVEFIRE_RESOLVE"
DRY_RUN_DETAIL = "dry run: neither webhook was called; nothing was started"


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


def _secret_box(name: str, url: str) -> SecretBox:
    """The call's secret, if it may be sent to ``url`` (https, inside its urlPrefixes); _CallError otherwise."""
    try:
        raw = _secrets().get_secret_value(SecretId=name).get("SecretString")
    except (ClientError, BotoCoreError) as exc:
        code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else type(exc).__name__
        raise _CallError(f"headersSecret {name!r} could not be read ({code})") from None
    try:
        return SecretBox.parse(name, raw).for_url(url)
    except EgressRefused as exc:
        raise _CallError(str(exc)) from None


def _query(call: WebhookCall) -> str:
    """The call's own query parameters (not secret), as a query string."""
    return urlencode(call.query or {})


def shown_url(call: WebhookCall) -> str:
    """The call's URL as the evidence and the records show it (query values redacted, as every URL shown)."""
    query = _query(call)
    return redact_url(f"{call.url}?{query}" if query else call.url)


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


def http_connection(url: str, query: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    """A connection to the URL's host (through ``LIVEFIRE_RESOLVE`` in the sandbox), made only to an address the
    egress rules allow (EgressRefused otherwise), and the request target with ``query``."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    host, port = parts.hostname or "", parts.port or (443 if https else 80)
    context = ssl.create_default_context() if https else None
    connection = (http.client.HTTPSConnection(host, port, timeout=timeout, context=context) if https
                  else http.client.HTTPConnection(host, port, timeout=timeout))
    mapped = _resolved(f"{host}:{port}")
    address, _, mapped_port = (mapped or f"{host}:{port}").rpartition(":")
    sock = connect(address.strip("[]"), int(mapped_port), current_policy(), timeout)
    connection.sock = context.wrap_socket(sock, server_hostname=host) if context is not None else sock
    return connection, (parts.path or "/") + (f"?{query}" if query else "")


def call(spec: WebhookCall, *, action: str, drill_id: str, fault_id: str) -> CallResult:
    """Make one call; never raises for the network or the answer (they are in the result)."""
    sent_at_ms: int | None = None
    status: int | None = None
    error: str | None = None
    response: str | None = None
    try:
        headers = {"User-Agent": USER_AGENT, "x-livefire-drill-id": drill_id, "x-livefire-fault-id": fault_id,
                   "Idempotency-Key": f"{drill_id}/{fault_id}/{action}"}
        body, content_type = _encode(spec.body)
        if content_type is not None:
            headers["Content-Type"] = content_type
        query = _query(spec)
        secret_values: list[str] = []
        if spec.headers_secret is not None:
            secret = _secret_box(spec.headers_secret, spec.url)
            headers |= secret.headers
            query = "&".join(part for part in (query, urlencode(secret.query)) if part)
            secret_values = secret.values
        connection, target = http_connection(spec.url, query, spec.timeout)
        try:
            sent_at_ms = now_ms()
            connection.request(spec.method, target, body=body, headers=headers)
            answer = connection.getresponse()
            status = answer.status
            text = answer.read(RESPONSE_READ_LIMIT).decode("utf-8", "replace")
            response = Redactor(secret_values).cut(text, RESPONSE_LIMIT) if spec.store_response else None
        finally:
            connection.close()
    except (_CallError, EgressRefused) as exc:
        error = str(exc)  # names the secret or the host and the rule, never a value
    except (OSError, http.client.HTTPException) as exc:
        error = type(exc).__name__  # the class only: a message may echo what was sent
    return CallResult(action=action, method=spec.method, url=shown_url(spec), sent_at_ms=sent_at_ms,
                      ended_at_ms=now_ms(), status=status, error=error, response=response)


def _call(target: FaultTarget, action: str) -> CallResult:
    doc = target.document.data
    result = call(WebhookCall.model_validate(doc[action]), action=action, drill_id=target.drill_id,
                  fault_id=target.planned.fault_id)
    doc["calls"].append(asdict(result))
    target.document.save()
    return result


class WebhookDriver:
    document_name = "webhook"

    def describe(self, drill_id: str, planned: PlannedFault, fault: Fault) -> dict[str, Any]:
        return new_document(drill_id, planned, fault)

    def apply(self, target: FaultTarget, fault: Fault, checkpoint: Checkpoint) -> Applied:
        result = _call(target, "inject")
        what = f"webhook inject {result.method} {result.url} {result.outcome}"
        if not result.ok or result.sent_at_ms is None:
            rollback_url = target.document.data["rollback"]["url"]
            raise FaultInjectionFailed(f"{target.planned.fault_id}: {what}; the rollback calls {rollback_url}")
        return Applied(bracket=Bracket(result.sent_at_ms, result.ended_at_ms), detail=what)

    def restore(self, target: FaultTarget, actor: str) -> Restored:
        """Call the rollback URL; a non-2xx answer leaves the fault for the next rollback path (RollbackFailed)."""
        result = _call(target, "rollback")
        what = f"webhook rollback {result.method} {result.url} {result.outcome}"
        if not result.ok or result.sent_at_ms is None:
            raise RollbackFailed(f"{target.planned.fault_id}: {what}")
        return Restored(status="RESTORED", wrote=True, detail=what,
                        bracket=Bracket(result.sent_at_ms, result.ended_at_ms))

    def verify(self, drill_id: str, planned: PlannedFault, fault: Fault, expires_at: int) -> DryRun:
        return DryRun(detail=DRY_RUN_DETAIL, problems=[], document=new_document(drill_id, planned, fault))

    def in_flight(self, target: FaultTarget) -> str:
        return "the inject call was in flight"
