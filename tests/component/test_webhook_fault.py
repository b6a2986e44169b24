"""fault.kind webhook against loopback servers (and Secrets Manager under moto): the inject call, its headers from
the secret (never written anywhere), the injection instant, non-2xx answers, every rollback path calling the
rollback URL; and the sandbox's outage control, which a webhook drill calls to start and end an outage."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.error import HTTPError

import boto3
import pytest

from livefire.contracts import InjectRequest, Plan, PlanRequest, RollbackRequest
from livefire.egress import RANGES_ENV
from livefire.errors import FaultInjectionFailed, RollbackFailed
from livefire.faults import webhook
from livefire.faults.lifecycle import inject_faults, restore_drill, rollback_drill, rollback_faults
from livefire.faults.webhook import call
from livefire.guardian import GuardianEvent, guard
from livefire.planning import plan_drill
from livefire.probing.window import RESOLVE_ENV
from livefire.spec import WebhookCall, parse_spec
from livefire.store import FaultRecord
from livefire_local.sandbox.control import OutageControl
from livefire_local.sandbox.loopback import LoopbackServer, Request, Response
from livefire_local.sandbox.mesh import SandboxMesh, host_port, plain_store
from livefire_local.sandbox.services import RegionalService
from tests.component.evidence_stack import REGION, EvidenceStack, evidence_stack
from tests.conftest import MESH_DIR, sandbox_spec_document
from tests.tls import Received, https_receiver

__all__ = ["evidence_stack"]  # the fixture, imported for pytest
SECRET_VALUE = "Bearer s3cr3t-do-not-leak"
QUERY_TOKEN = "q-s3cr3t-token"
LATER = 4_000_000_000  # the sweeper's clock (epoch s)


@dataclass
class Receiver:
    """A loopback webhook receiver: records every request and answers from a script (default 200)."""

    answers: dict[str, list[int]] = field(default_factory=dict)  # path -> statuses to answer, in order
    during: dict[str, Callable[[], object]] = field(default_factory=dict)  # path -> run once before answering
    seen: list[tuple[str, str, dict[str, str], float]] = field(default_factory=list)
    server: LoopbackServer = field(init=False)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.server = LoopbackServer(self.respond)

    def respond(self, request: Request) -> Response:
        with self._lock:
            self.seen.append((request.method, request.path, dict(request.headers), time.time() * 1000.0))
            scripted = self.answers.get(request.path) or []
            status = scripted.pop(0) if scripted else 200
            hook = self.during.pop(request.path, None)
        if hook is not None:
            hook()
        echo = {"path": request.path, "headers": dict(request.headers)}  # like httpbin: the headers come back
        return Response(status, {"content-type": "application/json"}, json.dumps(echo).encode())

    def paths(self) -> list[str]:
        return [path for _, path, _, _ in self.seen]


@pytest.fixture
def stack(evidence_stack: EvidenceStack) -> EvidenceStack:
    webhook._secrets.cache_clear()
    return evidence_stack


def bound_secret(name: str, prefix: str) -> str:
    """A webhook secret bound to ``prefix``: two headers and a query token."""
    boto3.client("secretsmanager", region_name=REGION).create_secret(Name=name, SecretString=json.dumps({
        "headers": {"Authorization": SECRET_VALUE, "X-Api-Key": "key-1"}, "query": {"token": QUERY_TOKEN},
        "urlPrefixes": [prefix]}))
    return name


def echo_everything(request: Received) -> tuple[int, bytes]:
    """Like httpbin: the request (headers, query) comes back, and again after 1,990 characters of padding."""
    echoed = {"path": request.path, "headers": request.headers}
    return 200, json.dumps({**echoed, "pad": "." * 1990, "again": echoed}).encode()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.server.start()
    yield server
    server.server.stop()


def webhook_document(base: str, *, secret: str | None = None) -> dict[str, Any]:
    document = sandbox_spec_document()
    inject: dict[str, Any] = {"url": f"{base}/start", "method": "POST", "body": {"region": "us-east-1"}}
    if secret is not None:
        inject["headersSecret"] = secret
    document["fault"] = {"kind": "webhook", "region": "us-east-1",
                         "webhook": {"inject": inject, "rollback": {"url": f"{base}/stop", "method": "DELETE"}}}
    for region in document["regions"]:
        region.pop("cluster")
    return document


def plan(stack: EvidenceStack, drill_id: str, document: dict[str, Any]) -> Plan:
    arn = f"arn:aws:states:{REGION}:123456789012:execution:livefire-local-DrillStateMachine:{drill_id}"
    return plan_drill(PlanRequest(drill_id=drill_id, execution_arn=arn, execution_input={"spec": document}),
                      stack.runtime)


def record(stack: EvidenceStack, drill_id: str) -> FaultRecord:
    [fault] = stack.store.faults_of(drill_id)
    return fault


def every_object(stack: EvidenceStack) -> bytes:
    listed = stack.s3.list_objects_v2(Bucket=stack.bucket).get("Contents", [])
    return b"".join(stack.s3.get_object(Bucket=stack.bucket, Key=o["Key"])["Body"].read() for o in listed)


# ---------------------------------------------------------------- inject


def test_inject_sends_the_secret_headers_and_injects_at_the_send_time_without_writing_them_anywhere(
        stack: EvidenceStack, unique_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    with https_receiver(tmp_path, echo_everything, monkeypatch) as https:
        secret = bound_secret(f"livefire/webhook/{unique_id}", f"{https.base()}/")
        document = webhook_document(https.base(), secret=secret)
        document["fault"]["webhook"]["inject"]["storeResponse"] = True
        drill = plan(stack, unique_id, document)
        caplog.set_level(logging.DEBUG, logger="livefire")
        before_ms = time.time() * 1000

        [state] = inject_faults(InjectRequest(plan=drill), stack.runtime).faults

    [request] = https.received
    assert (request.method, request.path) == ("POST", f"/start?token={QUERY_TOKEN}")
    assert request.headers["Authorization"] == SECRET_VALUE and request.headers["X-Api-Key"] == "key-1"
    assert request.headers["x-livefire-drill-id"] == unique_id
    assert request.headers["Idempotency-Key"] == f"{unique_id}/webhook-us-east-1/inject"
    fault = record(stack, unique_id)
    doc = stack.runtime.get_json(fault.snapshot_key)
    [inject] = doc["calls"]
    assert state.status == fault.status == "INJECTED"
    assert fault.injected_at_ms == inject["sent_at_ms"] == state.injected_at_ms
    assert fault.injection_answered_at_ms == inject["ended_at_ms"] == state.injection_answered_at_ms
    assert before_ms - 1 <= inject["sent_at_ms"] <= inject["ended_at_ms"]
    assert inject["status"] == 200 and inject["url"] == f"{https.base()}/start"
    assert "[redacted]" in inject["response"] and len(inject["response"]) == 2000  # redacted, then cut
    assert b"s3cr3t" not in every_object(stack)
    assert "s3cr3t" not in caplog.text


def test_an_answer_is_not_kept_unless_the_spec_asks(stack: EvidenceStack, receiver: Receiver,
                                                    unique_id: str) -> None:
    drill = plan(stack, unique_id, webhook_document(receiver.server.url))

    inject_faults(InjectRequest(plan=drill), stack.runtime)

    [inject] = stack.runtime.get_json(record(stack, unique_id).snapshot_key)["calls"]
    assert inject["status"] == 200 and inject["response"] is None


def test_a_secret_is_never_sent_outside_its_prefixes(stack: EvidenceStack, unique_id: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with https_receiver(tmp_path, echo_everything, monkeypatch) as https:
        secret = bound_secret(f"livefire/webhook/{unique_id}", f"{https.base()}/runbooks/")
        drill = plan(stack, unique_id, webhook_document(https.base(), secret=secret))  # calls /start

        with pytest.raises(FaultInjectionFailed, match="may not be sent to this URL: it is bound to") as failed:
            inject_faults(InjectRequest(plan=drill), stack.runtime)

    assert https.received == []  # refused before any connection
    assert "s3cr3t" not in str(failed.value) and record(stack, unique_id).status == "FAILED"


def test_a_call_to_a_refused_address_is_never_made(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RANGES_ENV, "")  # the template's default on AWS: public addresses only

    result = call(WebhookCall(url=f"{receiver.server.url}/start"), action="inject", drill_id="d", fault_id="f")

    assert result.status is None and result.error is not None and "loopback address" in result.error
    assert receiver.seen == []


def test_a_non_2xx_inject_fails_and_the_emergency_rollback_calls_the_rollback_url(
        stack: EvidenceStack, receiver: Receiver, unique_id: str) -> None:
    receiver.answers["/start"] = [500]
    drill = plan(stack, unique_id, webhook_document(receiver.server.url))

    with pytest.raises(FaultInjectionFailed, match="answered 500"):
        inject_faults(InjectRequest(plan=drill), stack.runtime)
    assert record(stack, unique_id).status == "FAILED"
    [state] = rollback_faults(RollbackRequest(plan=drill, emergency=True), stack.runtime).faults

    assert receiver.paths() == ["/start", "/stop"]
    fault = record(stack, unique_id)
    assert (state.status, fault.restored_by) == ("RESTORED", "emergency-rollback")
    assert fault.injected_at_ms is None


def test_an_unreachable_inject_url_fails_and_is_still_rolled_back(stack: EvidenceStack, receiver: Receiver,
                                                                  unique_id: str) -> None:
    closed = LoopbackServer(lambda _request: Response(200, {}, b""))
    dead = closed.start()
    closed.stop()  # nothing listens there any more
    document = webhook_document(receiver.server.url)
    document["fault"]["webhook"]["inject"]["url"] = f"{dead}/start"
    drill = plan(stack, unique_id, document)

    with pytest.raises(FaultInjectionFailed, match="ConnectionRefusedError"):
        inject_faults(InjectRequest(plan=drill), stack.runtime)
    rollback_faults(RollbackRequest(plan=drill, emergency=True), stack.runtime)

    assert receiver.paths() == ["/stop"]
    assert record(stack, unique_id).status == "RESTORED"


def test_an_unreadable_headers_secret_fails_the_inject_before_anything_is_sent(
        stack: EvidenceStack, receiver: Receiver, unique_id: str) -> None:
    name = f"livefire/{unique_id}"
    boto3.client("secretsmanager", region_name=REGION).create_secret(Name=name, SecretString="s3cr3t, not json")
    drill = plan(stack, unique_id, webhook_document(receiver.server.url.replace("http:", "https:"), secret=name))

    with pytest.raises(FaultInjectionFailed, match="must be a JSON object") as failed:
        inject_faults(InjectRequest(plan=drill), stack.runtime)

    assert "s3cr3t" not in str(failed.value)
    assert receiver.seen == []


def test_an_inject_whose_record_a_rollback_closed_meanwhile_calls_the_rollback_url_again(
        stack: EvidenceStack, receiver: Receiver, unique_id: str) -> None:
    drill = plan(stack, unique_id, webhook_document(receiver.server.url))
    # The emergency rollback runs while the inject call is in flight: its rollback call lands first.
    receiver.during["/start"] = lambda: restore_drill(unique_id, stack.runtime, actor="emergency-rollback")

    with pytest.raises(FaultInjectionFailed, match="rolled back while the inject call was in flight"):
        inject_faults(InjectRequest(plan=drill), stack.runtime)

    assert receiver.paths() == ["/start", "/stop", "/stop"]
    fault = record(stack, unique_id)
    assert (fault.status, fault.restored_by) == ("RESTORED", "inject")


def test_a_dry_run_calls_nothing_and_skips_the_fault(stack: EvidenceStack, receiver: Receiver,
                                                   unique_id: str) -> None:
    drill = plan(stack, unique_id, {**webhook_document(receiver.server.url), "mode": "dry-run"})

    [state] = inject_faults(InjectRequest(plan=drill), stack.runtime).faults
    rollback_faults(RollbackRequest(plan=drill), stack.runtime)

    assert state.status == "SKIPPED" and receiver.seen == []
    fault = record(stack, unique_id)
    assert fault.status == "SKIPPED" and fault.dry_run_problems == []
    assert fault.detail == "dry run: neither webhook was called; nothing was started"


# ---------------------------------------------------------------- rollback paths


def test_the_rollback_url_is_called_once_however_many_rollback_paths_run(stack: EvidenceStack,
                                                                         receiver: Receiver, unique_id: str) -> None:
    drill = plan(stack, unique_id, webhook_document(receiver.server.url))
    inject_faults(InjectRequest(plan=drill), stack.runtime)

    rollback_faults(RollbackRequest(plan=drill), stack.runtime)
    rollback_faults(RollbackRequest(plan=drill, emergency=True), stack.runtime)
    guard(GuardianEvent.from_event({
        "detail-type": "Step Functions Execution Status Change", "source": "aws.states",
        "detail": {"executionArn": drill.execution_arn, "name": unique_id, "status": "FAILED"},
    }), stack.runtime)

    assert receiver.paths() == ["/start", "/stop"]
    fault = record(stack, unique_id)
    doc = stack.runtime.get_json(fault.snapshot_key)
    assert [c["action"] for c in doc["calls"]] == ["inject", "rollback"]
    assert fault.restored_by == "rollback" and fault.restored_at_ms == doc["calls"][1]["ended_at_ms"]
    assert fault.restore_requested_at_ms == doc["calls"][1]["sent_at_ms"]


def test_a_failing_rollback_call_leaves_the_fault_to_the_sweeper_which_calls_again(
        stack: EvidenceStack, receiver: Receiver, unique_id: str) -> None:
    receiver.answers["/stop"] = [503, 503]
    drill = plan(stack, unique_id, webhook_document(receiver.server.url))
    inject_faults(InjectRequest(plan=drill), stack.runtime)

    with pytest.raises(RollbackFailed, match="answered 503"):
        rollback_drill(unique_id, stack.runtime, planned=drill.faults)
    with pytest.raises(RollbackFailed, match="answered 503"):
        rollback_drill(unique_id, stack.runtime, planned=drill.faults, actor="emergency-rollback")
    assert [f.status for f in stack.store.active_faults()] == ["FAILED"]
    swept = guard(GuardianEvent.from_event({"sweep": True}), stack.runtime, now=LATER,
                  status_of=lambda _arn: "FAILED")

    assert swept.faults_restored == 1 and swept.failures == []
    assert receiver.paths() == ["/start", "/stop", "/stop", "/stop"]
    assert record(stack, unique_id).restored_by == "sweeper"


# ---------------------------------------------------------------- the sandbox's outage control


@pytest.fixture
def regional() -> Iterator[RegionalService]:
    service = RegionalService("us-east-1", plain_store("us-east-1", "payments"), "payments")
    service.start()
    yield service
    service.stop()


def status_of(target: str | urllib.request.Request) -> int:
    try:
        with urllib.request.urlopen(target, timeout=2) as answer:
            return int(answer.status)
    except HTTPError as error:
        return int(error.code)


def test_the_outage_control_starts_an_outage_of_known_length_and_ends_one_on_delete(
        regional: RegionalService, monkeypatch: pytest.MonkeyPatch) -> None:
    with OutageControl({"us-east-1": regional}, token="t0k3n") as control:
        # the webhook reaches the control server through the sandbox's DNS override, as a drill's would
        monkeypatch.setenv(RESOLVE_ENV, json.dumps({"control.sandbox:80": f"127.0.0.1:{control.port}"}))
        secretless = WebhookCall(url="http://control.sandbox/outages/us-east-1", query={"seconds": 0.3}, method="POST")
        denied = call(secretless, action="inject", drill_id="d", fault_id="f")
        assert denied.status == 401 and control.outages == []

        request = urllib.request.Request(f"{control.url}/outages/us-east-1?seconds=0.3", method="POST",
                                         headers={"Authorization": "Bearer t0k3n"})
        with urllib.request.urlopen(request, timeout=2) as answer:
            started = json.loads(answer.read())
        assert status_of(f"{regional.url}/healthz") == 503
        give_up = time.monotonic() + 5
        while status_of(f"{regional.url}/healthz") != 200:
            assert time.monotonic() < give_up, "the outage never ended"
            time.sleep(0.02)
        ended_ms = time.time() * 1000.0
        [outage] = control.outages
        assert outage.end_ms - outage.start_ms == pytest.approx(300.0)
        assert started["startMs"] == outage.start_ms and outage.end_ms <= ended_ms

        open_ended = urllib.request.Request(f"{control.url}/outages/us-east-1", method="POST",
                                            headers={"Authorization": "Bearer t0k3n"})
        urllib.request.urlopen(open_ended, timeout=2).close()
        assert status_of(f"{regional.url}/healthz") == 503
        stop = urllib.request.Request(f"{control.url}/outages/us-east-1", method="DELETE",
                                      headers={"Authorization": "Bearer t0k3n"})
        with urllib.request.urlopen(stop, timeout=2) as answer:
            assert json.loads(answer.read())["ended"] == 1
        assert status_of(f"{regional.url}/healthz") == 200
        assert control.outages[1].end_ms <= time.time() * 1000.0
        unknown = urllib.request.Request(f"{control.url}/outages/eu-west-1", method="POST",
                                         headers={"Authorization": "Bearer t0k3n"})
        assert status_of(unknown) == 404


def test_a_sandbox_region_without_a_cluster_gets_a_plain_service_and_the_webhook_host_the_control() -> None:
    document = webhook_document("http://control.payments.sandbox")
    document["regions"][1]["cluster"] = {"sandbox": "payments-usw2"}  # one region with a mesh, one without
    spec = parse_spec(document)

    with SandboxMesh.from_spec(spec, MESH_DIR) as mesh:
        resolve = mesh.resolve()
        assert status_of(f"{mesh.regional['us-east-1'].url}/healthz") == 200
        assert list(mesh.stores) == ["payments-usw2"] and list(mesh.apis) == ["payments-usw2"]
        assert resolve["control.payments.sandbox:80"] == f"127.0.0.1:{mesh.control.port}"
        assert resolve[host_port(spec.entrypoint)] == f"127.0.0.1:{mesh.entrypoint.port}"
        assert status_of(f"{mesh.entrypoint.url}/healthz") == 200
