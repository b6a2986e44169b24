"""Stop conditions (the entrypoint's error rate, CloudWatch alarms) abort a drill at once, and a dry run patches
nothing; both through the real state machine on the sandbox, measured from the samples and the history."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from livefire.egress import LOCAL_RANGES, RANGES_ENV
from livefire.guardrails import ALARM_POLL_S, AlarmWatch, first_breach
from livefire.probing.chunks import load_samples
from livefire.probing.window import ErrorRateGuard
from livefire.spec import parse_spec
from livefire.store import DrillStore
from livefire_local.aws import REGION, LocalStack, local_stack
from livefire_local.runner import follow_execution, sandbox_session, start_drill
from livefire_local.sandbox.mesh import SandboxMesh
from tests.conftest import MESH_DIR, ROOT, sandbox_spec_document

PRIMARY = "payments-use1"
ALARM = "payments-entrypoint-5xx"
PHASES = {"baseline": "1s", "lead": "1s", "fault": "3s", "recovery": "1s"}
# Allowance for "one state transition": the probe function returns, the Map and the Parallel fail, MarkAborted starts.
TRANSITION_S = 1.0
# How late the alarm watch's thread may run on a loaded machine, beyond its poll period.
POLL_LAG_S = 1.0  # a busy 2-core machine delays the poll thread: a second of margin


class Drill:
    def __init__(self, mesh: SandboxMesh, stack: LocalStack) -> None:
        self.mesh = mesh
        self.stack = stack
        self.store = DrillStore(boto3.resource("dynamodb").Table(stack.table))

    def start(self, drill_id: str, document: dict[str, Any]) -> str:
        return start_drill(self.stack, drill_id, {"spec": document})

    def follow(self, execution_arn: str) -> dict[str, Any]:
        return follow_execution(self.stack, execution_arn, 60.0, lambda _event: None)

    def wait_injected(self, drill_id: str) -> None:
        give_up = time.monotonic() + 30
        while not any(f.status == "INJECTED" for f in self.store.faults_of(drill_id)):
            assert time.monotonic() < give_up, "the fault was never injected"
            time.sleep(0.02)

    def entered(self, execution_arn: str) -> dict[str, datetime]:
        events = self.stack.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        return {e["stateEnteredEventDetails"]["name"]: e["timestamp"] for e in events if e["type"].endswith("Entered")}

    def text(self, drill_id: str, name: str) -> str:
        key = f"drills/payments/{drill_id}/{name}"
        body: bytes = self.stack.s3.get_object(Bucket=self.stack.bucket, Key=key)["Body"].read()
        return body.decode()

    def samples(self, drill_id: str, window: str) -> list[Any]:
        listed = self.stack.s3.list_objects_v2(Bucket=self.stack.bucket, Prefix=f"drills/payments/{drill_id}/samples/")
        keys = [o["Key"] for o in listed.get("Contents", []) if f"/{window}-" in o["Key"]]
        return load_samples(self.stack.s3, self.stack.bucket, keys)

    def patches(self) -> int:
        """PATCH requests that change the primary's objects (a server-side dry run, dryRun=All, changes nothing)."""
        return sum(1 for r in self.mesh.apis[PRIMARY].requests
                   if r.method == "PATCH" and r.query.get("dryRun") != "All")


def session_of(name: str) -> Iterator[Drill]:
    spec = parse_spec(sandbox_spec_document(name, phases=PHASES))
    with sandbox_session(spec, MESH_DIR, ROOT) as (mesh, stack):
        yield Drill(mesh, stack)


@pytest.fixture
def drill() -> Iterator[Drill]:
    yield from session_of("active-passive")


@pytest.fixture
def broken_drill() -> Iterator[Drill]:
    """The mesh that never fails over: the entrypoint fails for the whole fault phase, so an error-rate guard
    breaches for certain (the healthy mesh fails over in about one base interval, which a guard may miss)."""
    yield from session_of("broken-failover")


def assert_aborted_and_restored(drill: Drill, drill_id: str, execution: dict[str, Any], before: Any) -> None:
    assert execution["status"] == "FAILED"
    assert execution.get("error") == "DrillAborted", execution.get("cause")
    record = drill.store.get_drill(drill_id)
    assert record is not None and record.verdict == "ABORTED"
    assert [f.status for f in drill.store.faults_of(drill_id)] == ["RESTORED"]
    assert drill.store.active_leases() == []
    assert drill.mesh.snapshot() == before


STALL_MS = 2000.0


@pytest.mark.slow
def test_an_error_rate_breach_in_the_fault_phase_aborts_promptly_and_is_reported(
    broken_drill: Drill, unique_id: str
) -> None:
    drill = broken_drill
    document = sandbox_spec_document("broken-failover", phases=PHASES)
    document["guardrails"]["abortIf"] = {"errorRateOver": 1, "for": "300ms"}
    spec = parse_spec(document)
    interval_ms = spec.probes.interval * 1000
    before = drill.mesh.snapshot()

    arn = drill.start(unique_id, document)
    execution = drill.follow(arn)

    assert_aborted_and_restored(drill, unique_id, execution, before)
    samples = drill.samples(unique_id, "drill")
    guard = ErrorRateGuard("entrypoint", spec.guardrails.abort_if)  # type: ignore[arg-type]
    breach_ms = None
    for sample in sorted(samples, key=lambda s: s.ended_ms):  # as the guard saw them: in order of completion
        guard.add(sample)
        if guard.check():
            breach_ms = sample.ended_ms
            break
    assert breach_ms is not None, "the samples show no breach"
    injected = drill.store.faults_of(unique_id)[0].injected_at_ms
    assert injected is not None and breach_ms >= injected  # the breach was in the fault phase
    last_sent = max(s.scheduled_ms for s in samples if not s.burst)
    # The guard is checked every base interval, so on a quiet machine the last probe is scheduled within one
    # interval of the breach; a stalled process (a first drill's cold imports) sends its overdue probes late, so
    # the bound here allows a stall of STALL_MS.
    assert last_sent <= breach_ms + interval_ms + STALL_MS
    entered = drill.entered(arn)
    assert "Assess" not in entered
    assert entered["MarkAborted"].timestamp() * 1000 - breach_ms <= interval_ms + TRANSITION_S * 1000
    report = drill.text(unique_id, "report.md")
    assert "GuardrailBreached" in report and "guardrail abortIf breached: error rate of entrypoint" in report


@pytest.mark.slow
def test_a_named_cloudwatch_alarm_going_into_alarm_aborts_the_drill_and_is_reported(
    drill: Drill, unique_id: str
) -> None:
    cloudwatch = boto3.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=ALARM, Namespace="Payments", MetricName="Entrypoint5xx", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    document = sandbox_spec_document(phases=PHASES)
    document["guardrails"]["alarms"] = [ALARM]
    interval_ms = parse_spec(document).probes.interval * 1000
    before = drill.mesh.snapshot()

    arn = drill.start(unique_id, document)
    drill.wait_injected(unique_id)
    alarm_ms = time.time() * 1000
    cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="5xx at the entrypoint")
    execution = drill.follow(arn)

    assert_aborted_and_restored(drill, unique_id, execution, before)
    last_sent = max(s.scheduled_ms for s in drill.samples(unique_id, "drill") if not s.burst)
    assert last_sent <= alarm_ms + (ALARM_POLL_S + POLL_LAG_S) * 1000 + interval_ms
    entered = drill.entered(arn)
    assert "Assess" not in entered
    seen_by = alarm_ms + (ALARM_POLL_S + POLL_LAG_S) * 1000 + interval_ms
    assert entered["MarkAborted"].timestamp() * 1000 <= seen_by + TRANSITION_S * 1000
    report = drill.text(unique_id, "report.md")
    assert f"CloudWatch alarm {ALARM} is in ALARM" in report and "5xx at the entrypoint" in report


@pytest.mark.slow
def test_a_dry_run_plans_snapshots_and_probes_but_patches_nothing_and_says_so(drill: Drill, unique_id: str) -> None:
    document = sandbox_spec_document(phases={"baseline": "1s", "lead": "0s", "fault": "1s", "recovery": "1s"})
    document["mode"] = "dry-run"
    before = drill.mesh.snapshot()

    execution = drill.follow(drill.start(unique_id, document))

    assert drill.patches() == 0
    assert drill.mesh.snapshot() == before
    faults = drill.store.faults_of(unique_id)
    assert [f.status for f in faults] == ["SKIPPED"]
    assert (faults[0].detail or "").startswith("dry run: nothing was patched; the API server accepted the exact patch")
    assert drill.text(unique_id, "faults/http-abort-us-east-1-before.json")  # the snapshot was taken
    assert drill.samples(unique_id, "baseline") and drill.samples(unique_id, "drill")  # and the probes ran
    record = drill.store.get_drill(unique_id)
    assert record is not None and record.mode == "dry-run" and record.verdict == "INCONCLUSIVE"
    assert execution.get("error") == "DrillVerdictFail"
    report = drill.text(unique_id, "report.md")
    assert "**INCONCLUSIVE**" in report and "dry run: nothing was patched" in report and "mode: dry-run" in report
    assert drill.store.active_leases() == []


@pytest.mark.slow
def test_an_eks_cluster_outside_a_region_qualified_allowed_clusters_ends_the_execution_at_plan(unique_id: str) -> None:
    sandbox = parse_spec(sandbox_spec_document(phases=PHASES))
    document = sandbox_spec_document(phases=PHASES)
    document["regions"][0]["cluster"] = {"eks": "payments-use1", "region": "us-east-1"}
    with SandboxMesh.from_spec(sandbox, MESH_DIR) as mesh:
        before = mesh.snapshot()
        # the deployment lists a cluster of that name, but in another region
        env = {**mesh.environment(), RANGES_ENV: LOCAL_RANGES, "ALLOWED_CLUSTERS": "us-west-2/payments-use1"}
        with local_stack(ROOT, extra_env=env) as stack:
            drill = Drill(mesh, stack)

            arn = drill.start(unique_id, document)
            execution = drill.follow(arn)

            assert (execution["status"], execution.get("error")) == ("FAILED", "GuardrailViolation")
            assert list(drill.entered(arn)) == ["Plan"]
            record = drill.store.get_drill(unique_id)
            assert record is not None and record.status == "REJECTED" and (record.reason or "").startswith(
                "GuardrailViolation: regions.0.cluster: EKS cluster 'us-east-1/payments-use1' of region us-east-1 "
                "is outside this deployment's allowed clusters ['us-west-2/payments-use1']")
            assert drill.store.faults_of(unique_id) == [] and drill.store.active_leases() == []
            assert stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix="drills/").get("KeyCount") == 0
        assert mesh.snapshot() == before and drill.patches() == 0


# ---------------------------------------------------------------- the alarm watch on its own (moto)


@pytest.fixture
def cloudwatch() -> Iterator[Any]:
    with local_stack(ROOT):
        client = boto3.client("cloudwatch")
        for name in ("a-ok", "b-firing"):
            client.put_metric_alarm(AlarmName=name, Namespace="N", MetricName=name, Statistic="Sum", Period=60,
                                    EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
        yield client


def watch(names: list[str], client: Any, period_s: float = ALARM_POLL_S) -> AlarmWatch:
    """A watch of plain alarm names, all in the local stack's region, read with ``client``."""
    return AlarmWatch(names, home_region=REGION, clients=lambda _region: client, period_s=period_s)


def test_the_alarm_watch_reports_nothing_while_every_alarm_is_ok(cloudwatch: Any) -> None:
    assert watch(["a-ok", "b-firing"], cloudwatch).poll() is None


def test_the_alarm_watch_names_the_alarm_in_alarm_and_keeps_it(cloudwatch: Any) -> None:
    watching = watch(["a-ok", "b-firing"], cloudwatch)
    cloudwatch.set_alarm_state(AlarmName="b-firing", StateValue="ALARM", StateReason="too many errors")

    reason = watching.poll()
    cloudwatch.set_alarm_state(AlarmName="b-firing", StateValue="OK", StateReason="fine again")

    assert reason is not None and "CloudWatch alarm b-firing is in ALARM" in reason and "too many errors" in reason
    assert watching.poll() == reason and watching.check() == reason


def test_an_alarm_that_does_not_exist_fails_closed(cloudwatch: Any) -> None:
    reason = watch(["a-ok", "no-such-alarm"], cloudwatch).poll()

    assert reason is not None and "no CloudWatch alarm named no-such-alarm" in reason


class _Throttled:
    def __init__(self) -> None:
        self.calls = 0

    def describe_alarms(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "DescribeAlarms")


def test_alarms_that_cannot_be_read_for_several_polls_count_as_a_breach() -> None:
    client = _Throttled()
    watching = watch(["a"], client)

    results = [watching.poll() for _ in range(3)]

    assert results[:2] == [None, None]
    assert results[2] is not None and "could not be evaluated" in results[2] and "Throttling" in results[2]
    assert client.calls == 3


def test_the_watch_polls_in_the_background_until_the_block_ends(cloudwatch: Any) -> None:
    with watch(["b-firing"], cloudwatch, period_s=0.02) as watching:
        assert watching.check() is None
        cloudwatch.set_alarm_state(AlarmName="b-firing", StateValue="ALARM", StateReason="now")
        give_up = time.monotonic() + 5
        while watching.check() is None and time.monotonic() < give_up:
            time.sleep(0.01)
        assert watching.check() is not None


def test_the_first_breach_of_several_stop_conditions_wins() -> None:
    combined = first_breach(None, lambda: None, lambda: "second", lambda: "third")

    assert combined is not None and combined() == "second"
    assert first_breach(None, None) is None
