"""The fault matrix: a failure injected at every task of the real state machine, and after the guardian (on the
execution's status-change event) and the sweeper have run, the sandbox objects equal their pre-drill state, no
lease is held and no data-check marker is left (the markers' cleanup is a rollback like any other). The module
prints the matrix when it ends.
"""

from __future__ import annotations

import inspect
import json
import shlex
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from livefire.datachecks.cleanup import is_cleanup
from livefire.spec import parse_spec
from livefire.store import DrillStore
from livefire_local.aws import LocalStack
from livefire_local.guardian_rule import dead_letters, sweep
from livefire_local.runner import copy_evidence, follow_execution, sandbox_session, start_drill
from livefire_local.sandbox.mesh import SandboxMesh
from tests.completed_events import CompletedEvents
from tests.conftest import MESH_DIR, ROOT, sandbox_spec_document

pytestmark = pytest.mark.slow
PRIMARY = "payments-use1"
VS_PATH = "virtualservices/payments"
PHASES = {"baseline": "1s", "lead": "0s", "fault": "1s", "recovery": "1s"}
Session = tuple[SandboxMesh, LocalStack]
# One http data check: markers written to the sandbox's marker store during every drill of the matrix.
DATA_CHECKS = [{"name": "orders", "kind": "http", "interval": "200ms", "http": {
    "writeUrl": "http://markers.payments.sandbox/markers",
    "readUrls": {"us-west-2": "http://usw2.markers.payments.sandbox/markers"}}}]
ROWS: list[dict[str, Any]] = []


def fn(logical_id: str) -> str:
    return f"livefire-{logical_id}"


def runtime_of(stack: LocalStack, logical_id: str) -> Any:
    """The Runtime a handler module built at load time (its AWS clients), to script AWS errors on them."""
    _function, handler = stack.lambdas.handler_for(fn(logical_id))
    return inspect.unwrap(handler).__globals__["runtime"]


@contextmanager
def aws_error(client: Any, operation: str, code: str, status: int, *, skip: int = 0,
              path_endswith: str = "") -> Iterator[None]:
    """The client's next ``operation`` call (after ``skip``) answers ``code``/``status``, as AWS would: botocore's
    before-call hook short-circuits the request and botocore raises the ClientError itself."""
    service = client.meta.service_model.service_id.hyphenize()
    event = f"before-call.{service}.{operation}"
    state = {"skip": skip, "left": 1}

    def fail(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if state["left"] == 0 or not str(params.get("url_path", "")).endswith(path_endswith):
            return None
        if state["skip"] > 0:
            state["skip"] -= 1
            return None
        state["left"] -= 1
        response = AWSResponse(params.get("url", ""), status, {}, None)
        response._content = b""
        parsed = {"Error": {"Code": code, "Message": f"injected {code}"},
                  "ResponseMetadata": {"HTTPStatusCode": status}}
        return response, parsed

    client.meta.events.register_first(event, fail, unique_id=f"fault-matrix-{operation}")
    try:
        yield
        assert state["left"] == 0, f"the scripted {operation} error never fired"
    finally:
        client.meta.events.unregister(event, unique_id=f"fault-matrix-{operation}")


Arrange = Callable[[SandboxMesh, LocalStack], AbstractContextManager[Any] | None]


@dataclass(frozen=True)
class Scenario:
    name: str
    arrange: Arrange
    error: str | tuple[str, ...]  # the execution's error name (what the status-change event carries)
    restored_by: str | None  # who closed the fault record (None: the drill never wrote one)
    guardian_releases: bool = False  # the lease outlived the execution and only the guardian released it
    stop_mid_fault: bool = False
    guardian_fails: bool = False  # the guardian never got to mark the drill record
    dead_letters: int = 0  # guardian events that failed every retry: in its dead-letter queue (GuardianFailedAlarm)

    @property
    def id(self) -> str:
        return self.name.split(":")[0].replace(" ", "-")


def lambda_failure(logical_id: str, error_type: str, times: int = 1, *, skip: int = 0, after: bool = False) -> Arrange:
    def arrange(_mesh: SandboxMesh, stack: LocalStack) -> None:
        stack.lambdas.inject_failure(fn(logical_id), error_type, times, skip=skip, after=after)

    return arrange


def kube_failure(status: int, times: int, skip: int = 0) -> Arrange:
    def arrange(mesh: SandboxMesh, _stack: LocalStack) -> None:
        mesh.apis[PRIMARY].fail_next("PATCH", VS_PATH, status, times=times, skip=skip)

    return arrange


def both(*arrangements: Arrange) -> Arrange:
    def arrange(mesh: SandboxMesh, stack: LocalStack) -> AbstractContextManager[Any]:
        scope = ExitStack()
        for each in arrangements:
            context = each(mesh, stack)
            if context is not None:
                scope.enter_context(context)
        return scope

    return arrange


def evidence_s3_error(_mesh: SandboxMesh, stack: LocalStack) -> AbstractContextManager[None]:
    return aws_error(runtime_of(stack, "EvidenceFunction").s3, "PutObject", "InternalError", 500,
                     path_endswith="report.html")


def evidence_dynamodb_error(_mesh: SandboxMesh, stack: LocalStack) -> AbstractContextManager[None]:
    client = runtime_of(stack, "EvidenceFunction").store._table.meta.client
    return aws_error(client, "UpdateItem", "InternalServerError", 500)  # the drill record, after the chain moved


def nothing(_mesh: SandboxMesh, _stack: LocalStack) -> None:
    return None


DRILL_ERROR = "DrillError"
GUARDIAN_ATTEMPTS = 3  # an asynchronous invocation and Lambda's two retries (guardian_rule.py)
EVIDENCE_FAILED = "EvidenceFailed"  # the Catch on Evidence: the execution fails, so the guardian runs
SCENARIOS = [
    Scenario("plan: times out after taking the lease", lambda_failure("PlanFunction", "Sandbox.Timedout", after=True),
             "Sandbox.Timedout", "guardian", guardian_releases=True),
    Scenario("baseline: probe error", lambda_failure("ProbeFunction", "RuntimeError"), DRILL_ERROR,
             "emergency-rollback"),
    Scenario("inject: error before patching", lambda_failure("InjectFunction", "MeshAccessError"), DRILL_ERROR,
             "emergency-rollback"),
    Scenario("inject: times out once after patching; the retry does not re-apply",
             lambda_failure("InjectFunction", "Sandbox.Timedout", after=True), "DrillVerdictFail", "rollback"),
    Scenario("inject: times out after patching on every retry",
             lambda_failure("InjectFunction", "Sandbox.Timedout", times=4, after=True), DRILL_ERROR,
             "emergency-rollback"),
    Scenario("rollback: planned and emergency rollback both fail", lambda_failure("RollbackFunction", "RollbackFailed",
             times=2), DRILL_ERROR, "guardian"),
    Scenario("assess: error", lambda_failure("AssessFunction", "ValueError", skip=1), DRILL_ERROR, "rollback"),
    Scenario("evidence: error", lambda_failure("EvidenceFunction", "EvidenceError"), EVIDENCE_FAILED, "rollback",
             guardian_releases=True),
    Scenario("kube apply: 500", kube_failure(500, times=1), DRILL_ERROR, "emergency-rollback"),
    Scenario("kube apply: 409 twice", kube_failure(409, times=2), DRILL_ERROR, "emergency-rollback"),
    Scenario("kube restore: 500 in rollback and emergency rollback", kube_failure(500, times=2, skip=1), DRILL_ERROR,
             "guardian"),
    Scenario("kube restore: 409 three times", kube_failure(409, times=3, skip=1), DRILL_ERROR, "emergency-rollback"),
    Scenario("stopped: execution stopped mid-fault", nothing, ("States.Runtime", ""), "guardian",
             guardian_releases=True, stop_mid_fault=True),
    Scenario("evidence s3: PutObject 500", evidence_s3_error, EVIDENCE_FAILED, "rollback", guardian_releases=True),
    Scenario("evidence dynamodb: UpdateItem 500", evidence_dynamodb_error, EVIDENCE_FAILED, "rollback",
             guardian_releases=True),
    Scenario("guardian down: rollbacks and every guardian attempt fail, the sweeper restores",
             both(lambda_failure("RollbackFunction", "RollbackFailed", times=2),
                  lambda_failure("GuardianFunction", "Sandbox.Timedout", times=GUARDIAN_ATTEMPTS)), DRILL_ERROR,
             "sweeper", guardian_fails=True, dead_letters=1),
    Scenario("guardian restore: fails on every retry (rollbacks too), dead-lettered; the sweeper restores",
             kube_failure(500, times=2 + GUARDIAN_ATTEMPTS, skip=1), DRILL_ERROR, "sweeper", dead_letters=1),
]


@pytest.fixture(scope="module")
def session(request: pytest.FixtureRequest) -> Iterator[Session]:
    spec = parse_spec(sandbox_spec_document(phases=PHASES, objectives={}, dataChecks=DATA_CHECKS))
    with sandbox_session(spec, MESH_DIR, ROOT) as (mesh, stack):
        yield mesh, stack
        # a drill that failed early leaves its Observe probe running to the end of its window: let it finish
        assert stack.lambdas.wait_idle(15.0)
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else nullcontext():
        print("\n" + "\n".join(matrix_lines(ROWS)), flush=True)


def matrix_lines(rows: list[dict[str, Any]]) -> list[str]:
    header = ["scenario", "execution", "fault closed by", "guardian", "sweeper", "leaked faults", "leases left",
              "markers left"]
    table = [[str(row[column]) for column in header] for row in rows]
    widths = [max([len(header[i]), *(len(r[i]) for r in table)]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    return ["fault matrix", line, "-" * len(line),
            *["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]]


def store_of(stack: LocalStack) -> DrillStore:
    return DrillStore(boto3.resource("dynamodb").Table(stack.table))


def wait_until_injected(stack: LocalStack, drill_id: str) -> None:
    store = store_of(stack)
    give_up = time.monotonic() + 30
    while not any(f.status == "INJECTED" for f in store.faults_of(drill_id)):
        assert time.monotonic() < give_up, "the fault was never injected"
        time.sleep(0.05)


def stop_once_injected(stack: LocalStack, execution_arn: str, drill_id: str) -> None:
    wait_until_injected(stack, drill_id)
    stack.sfn.stop_execution(executionArn=execution_arn, error="Operator", cause="stopped mid-fault")


def leaked(before: dict[str, dict[Any, bytes]], after: dict[str, dict[Any, bytes]]) -> int:
    keys = {(cluster, key) for cluster, objects in [*before.items(), *after.items()] for key in objects}
    return sum(1 for cluster, key in keys if before.get(cluster, {}).get(key) != after.get(cluster, {}).get(key))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_no_failure_at_any_task_leaves_a_fault_or_a_lease_behind(session: Session, scenario: Scenario,
                                                                 unique_id: str) -> None:
    mesh, stack = session
    store = store_of(stack)
    mesh.apis[PRIMARY].clear_failures()  # failures a drill that never injected left unanswered are not the next's
    before = mesh.snapshot()
    phases = {**PHASES, "fault": "2s"} if scenario.stop_mid_fault else PHASES
    document = sandbox_spec_document(phases=phases, objectives={}, dataChecks=DATA_CHECKS)

    with ExitStack() as scope:
        scope.enter_context(scenario.arrange(mesh, stack) or nullcontext())
        arn = start_drill(stack, unique_id, {"spec": document})
        if scenario.stop_mid_fault:
            stop_once_injected(stack, arn, unique_id)
        execution = follow_execution(stack, arn, 90.0, lambda _event: None)  # + the guardian's status-change rule
    swept = sweep(stack)

    assert execution["status"] in ("FAILED", "ABORTED")
    expected = scenario.error if isinstance(scenario.error, tuple) else (scenario.error,)
    assert execution.get("error", "") in expected, execution.get("cause")
    assert stack.lambdas.pending_failures() == 0
    assert all(rule.remaining == 0 for rule in mesh.apis[PRIMARY]._rules)
    faults = [f for f in store.faults_of(unique_id) if not is_cleanup(f.planned)]
    cleanups = [f for f in store.faults_of(unique_id) if is_cleanup(f.planned)]
    record = store.get_drill(unique_id)
    assert record is not None
    assert stack.lambdas.wait_idle(15.0)  # a window still running after the ending deletes its own markers
    markers_left = mesh.data_checks.markers_left()
    if scenario.guardian_fails:
        assert record.execution_status is None and record.sweeper_restored == 1
    else:
        assert record.execution_status == execution["status"], "the guardian never ran"
    assert [f.restored_by for f in faults] == ([scenario.restored_by] if scenario.restored_by else [])
    assert all(f.status in ("RESTORED", "SKIPPED") for f in faults)
    assert bool(record.guardian_released) is scenario.guardian_releases  # the service lease and the object lease
    leaked_faults, leases_left = leaked(before, mesh.snapshot()), len(store.active_leases())
    ROWS.append({
        "scenario": scenario.name, "execution": f"{execution['status']} {execution.get('error', '')}".strip(),
        "fault closed by": ", ".join(f"{f.status} by {f.restored_by}" for f in faults) or "(no fault record)",
        "guardian": f"restored {record.guardian_restored}, released {record.guardian_released}",
        "sweeper": f"restored {swept['faultsRestored']}, released {swept['leasesReleased']}",
        "leaked faults": leaked_faults, "leases left": leases_left, "markers left": markers_left,
    })
    assert leaked_faults == 0
    assert leases_left == 0
    assert [f.status for f in cleanups] == ["RESTORED"] and markers_left == 0
    letters = [letter for letter in dead_letters(stack) if unique_id in json.dumps(letter["event"])]
    assert len(letters) == scenario.dead_letters
    if letters:
        assert guardian_alarm_fires(stack, len(letters))
        assert scenario.guardian_fails or letters[0]["ErrorCode"] == "GuardianRestoreFailed"


def guardian_alarm_fires(stack: LocalStack, visible: int) -> bool:
    """GuardianFailedAlarm (template.yaml) on the dead-letter queue's ApproximateNumberOfMessagesVisible, as
    CloudWatch would judge it with ``visible`` messages in the queue."""
    alarm = stack.template.resources["GuardianFailedAlarm"]["Properties"]
    [dimension] = alarm["Dimensions"]
    queue = stack.template.resolve(dimension["Value"])
    dead_letter_arn = stack.template.resolve(
        stack.template.resources["GuardianFunction"]["Properties"]["DeadLetterQueue"]["TargetArn"])
    return (alarm["Namespace"], alarm["MetricName"], dimension["Name"], alarm["ComparisonOperator"]) == (
        "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "GreaterThanOrEqualToThreshold",
    ) and dead_letter_arn.endswith(f":{queue}") and visible >= float(alarm["Threshold"])


def edit_once_injected(stack: LocalStack, mesh: SandboxMesh, drill_id: str) -> None:
    """An operator's change to the faulted VirtualService while the fault is live."""
    wait_until_injected(stack, drill_id)
    objects = mesh.stores[PRIMARY]
    with objects.lock:
        [key] = [k for k in objects.snapshot() if k.plural == "virtualservices" and k.name == "payments"]
        edited = objects.get(key)
        assert edited is not None
        edited["spec"]["http"][0]["timeout"] = "3s"
        objects.replace(key, edited)


def restore_by_hand(mesh: SandboxMesh, command: str) -> None:
    """Run the JSON patch of the report's kubectl command against the sandbox API, as kubectl would send it."""
    from kubernetes.client import CustomObjectsApi

    from livefire.mesh.kube import api_client_for
    from livefire.spec import ClusterRef

    operations = json.loads(shlex.split(command)[-1])
    CustomObjectsApi(api_client_for(ClusterRef(sandbox=PRIMARY))).patch_namespaced_custom_object(
        "networking.istio.io", "v1", "payments", "virtualservices", "payments", operations,
        _content_type="application/json-patch+json")


def test_an_object_changed_during_the_fault_is_left_alone_and_the_drill_says_so_first(
        session: Session, unique_id: str, tmp_path: Path) -> None:
    mesh, stack = session
    store = store_of(stack)
    before = mesh.snapshot()
    completed = CompletedEvents()

    document = sandbox_spec_document(phases={**PHASES, "fault": "2s"}, objectives={}, dataChecks=DATA_CHECKS)
    arn = start_drill(stack, unique_id, {"spec": document})
    edit_once_injected(stack, mesh, unique_id)
    execution = follow_execution(stack, arn, 90.0, lambda _event: None)
    swept = sweep(stack)

    [fault] = [f for f in store.faults_of(unique_id) if not is_cleanup(f.planned)]
    record = store.get_drill(unique_id)
    assert execution["status"] == "FAILED" and record is not None
    assert execution.get("error") == "DrillRestoreRefused"
    assert (fault.status, record.verdict) == ("CONFLICT", "RESTORE_REFUSED")
    assert fault.refusal is not None and fault.refusal.differs == ["spec.http"]
    assert "VirtualService payments/payments" in fault.refusal.target
    [event] = completed.of(unique_id)
    assert event["detail"]["verdict"] == "RESTORE_REFUSED" and len(event["detail"]["restoreRefused"]) == 1
    report = copy_evidence(stack, f"drills/payments/{unique_id}/", tmp_path) / "report.md"
    first_line = report.read_text().splitlines()[0]
    assert "RESTORE REFUSED: VirtualService payments/payments" in first_line and "spec.http" in first_line
    assert fault.refusal.command in first_line and " patch virtualservices.networking.istio.io " in first_line
    assert leaked(before, mesh.snapshot()) == 1  # left as it is: only a person may decide
    ROWS.append({
        "scenario": "edited mid-fault: the restore is refused, never a PASS", "execution":
        f"{execution['status']} {execution.get('error', '')} {record.verdict}",
        "fault closed by": f"{fault.status} (left for a person)",
        "guardian": f"restored {record.guardian_restored}, released {record.guardian_released}",
        "sweeper": f"restored {swept['faultsRestored']}, released {swept['leasesReleased']}",
        "leaked faults": "1 (refused, announced)", "leases left": len(store.active_leases()),
        "markers left": mesh.data_checks.markers_left(),
    })

    restore_by_hand(mesh, fault.refusal.command)

    assert leaked(before, mesh.snapshot()) == 0  # the report's command puts the snapshot back exactly
    assert store.active_leases() == []
