"""`livefire run SPEC`: one whole drill on this machine.

The real state machine definition runs under moto's Step Functions interpreter and the handlers run in-process
behind the Lambda Invoke API. The parts of the drill that opt into the sandbox by name (sandbox clusters, hosts
under ``.sandbox``) are served by the sandbox mesh seeded from the spec folder's ``mesh/<cluster>.yaml``; every
other target is contacted for real. The runner decides which is which once (``SandboxMesh.resolve``), prints it,
and hands it to Plan, which records it per target in the plan and the evidence (docs/architecture.md §10).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from livefire.config import PROBE_CHUNK_ENV
from livefire.egress import LOCAL_RANGES, RANGES_ENV, EgressPolicy, reach_of
from livefire.planning import probe_targets
from livefire.redaction import redact_urls_in_text
from livefire.spec import DrillSpec, read_spec
from livefire.store import DrillStore
from livefire_local.aws import LocalStack, local_stack
from livefire_local.gate import LocalGate
from livefire_local.guardian_rule import deliver_status_change, deliver_when_ended
from livefire_local.interrupt import Interrupted, abort_drill, interruptible
from livefire_local.lambda_server import Invocation
from livefire_local.live import LiveView, watch_drill
from livefire_local.local_chain import LocalChain
from livefire_local.sandbox.loopback import LOOPBACK
from livefire_local.sandbox.mesh import SandboxMesh
from livefire_local.verdicts import exit_code_for

# Beyond the drill's own phases, how long the steps themselves may take before the runner gives up.
STEP_ALLOWANCE_S = 120.0
# How long a stopped execution may take to end (an in-flight Lambda call finishes first).
STOP_WAIT_S = 60.0


def new_drill_id(spec: DrillSpec) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{spec.metadata.name[:50]}-{stamp}-{secrets.token_hex(2)}"


@dataclass
class DrillRun:
    drill_id: str
    status: str
    verdict: str | None
    rto_seconds: float | None
    evidence_dir: Path | None
    error: str | None
    wall_seconds: float
    interrupted: Interrupted | None = None  # the signal that stopped the drill
    note: str | None = None  # what an interrupted run did about it

    @property
    def exit_code(self) -> int:
        return self.interrupted.exit_code if self.interrupted else exit_code_for(self.verdict)


class Progress:
    """Prints states as they are entered and exited, and each probe window's load and errors."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._t0 = time.monotonic()
        self._entered: dict[str, float] = {}

    def line(self, text: str) -> None:
        shown = redact_urls_in_text(text)  # query values of URLs in error messages are never printed
        print(f"[{time.monotonic() - self._t0:6.2f}s] {shown}", file=self._out, flush=True)

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        at = event["timestamp"].timestamp()
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            self._entered[name] = at
            self.line(f"> {name}")
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            self.line(f"< {name} ({at - self._entered.get(name, at):.2f}s)")
        elif kind in ("TaskFailed", "LambdaFunctionFailed", "ExecutionFailed"):
            details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            self.line(f"! {kind}: {details.get('error', '')} {details.get('cause', '')[:300]}")

    def on_invoke(self, invocation: Invocation, payload: Any) -> None:
        if invocation.error_type:
            message = payload.get("errorMessage", "") if isinstance(payload, dict) else ""
            self.line(f"! {invocation.function} raised {invocation.error_type}: {message[:300]}")
        elif invocation.function.endswith("ProbeFunction") and isinstance(payload, dict):
            took = max(invocation.ended - invocation.started, 1e-6)
            sent = sum(t["sent"] for t in payload.get("targets", []))
            failed = sum(t["failed"] for t in payload.get("targets", []))
            self.line(f"  probed {payload.get('vantage')}/{payload.get('window')}: {sent} probes "
                      f"({sent / took:.1f}/s), {failed} failed")


def follow_execution(stack: LocalStack | Any, execution_arn: str, deadline_s: float,
                     on_event: Callable[[dict[str, Any]], None], *, poll_s: float = 0.2) -> dict[str, Any]:
    """Poll the execution (bounded by ``deadline_s``) and report every new history event.

    ``stack`` is the local stack or any Step Functions client (``livefire start`` follows a deployed stack).
    """
    sfn = stack.sfn if isinstance(stack, LocalStack) else stack
    seen = 0
    give_up = time.monotonic() + deadline_s
    while True:
        events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        for event in events[seen:]:
            on_event(event)
        seen = len(events)
        execution: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if execution["status"] != "RUNNING":
            for event in sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"][seen:]:
                on_event(event)
            if isinstance(stack, LocalStack):
                deliver_status_change(stack, execution_arn)  # the guardian's EventBridge rule, as in the cloud
            return execution
        if time.monotonic() > give_up:
            sfn.stop_execution(executionArn=execution_arn, error="LocalDeadline", cause="runner gave up")
            if isinstance(stack, LocalStack):
                deliver_when_ended(stack, execution_arn, wait_s=STOP_WAIT_S)
            raise TimeoutError(f"the drill did not end within {deadline_s:.0f}s")
        time.sleep(poll_s)


def copy_evidence(stack: LocalStack, prefix: str, destination: Path) -> Path:
    s3 = stack.s3
    destination.mkdir(parents=True, exist_ok=True)
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=stack.bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            target = destination / obj["Key"][len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=stack.bucket, Key=obj["Key"])["Body"].read())
    return destination


def reach_lines(spec: DrillSpec, served_by_sandbox: frozenset[str]) -> list[str]:
    """One line per probed target and webhook URL: real (contacted as named) or sandbox (the local sandbox)."""
    lines = [f"target {t.name} {t.url}: {t.reach}" for t in probe_targets(spec, served_by_sandbox)]
    webhook = spec.fault.webhook
    if webhook is not None:
        lines += [f"webhook {action} {call.method} {call.url}: {reach_of(call.url, served_by_sandbox)}"
                  for action, call in (("inject", webhook.inject), ("rollback", webhook.rollback))]
    return lines


@contextmanager
def sandbox_session(spec: DrillSpec, mesh_dir: Path, root: Path, *, progress: Progress | None = None,
                    allowed_ranges: str = LOCAL_RANGES) -> Iterator[tuple[SandboxMesh, LocalStack]]:
    """The sandbox mesh for ``spec`` (only what the spec names: none at all for a drill of real targets) plus the
    local stack wired to it: everything a drill runs against.

    ``allowed_ranges`` plays the template parameter AllowedTargetRanges: locally the person running the drill is
    the deployment, so their loopback and private services may be probed and called (livefire/egress.py). The
    sandbox's servers listen on loopback, so a drill that uses them needs loopback allowed (ValueError)."""
    mesh = SandboxMesh.from_spec(spec, mesh_dir)
    if (mesh.regional or mesh.serves_entrypoint or mesh.serves_webhook) and \
            EgressPolicy.from_ranges(allowed_ranges).refusal(LOOPBACK) is not None:
        raise ValueError(f"--allowed-ranges {allowed_ranges!r} refuses loopback, where the sandbox serves this "
                         "drill's .sandbox hosts: allow loopback, or aim the drill at real targets only")
    with mesh:
        env = {**mesh.environment(), "POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true",
               RANGES_ENV: allowed_ranges}
        if PROBE_CHUNK_ENV in os.environ:  # a shorter probe chunk than the template's (tests of the chunk loop)
            env[PROBE_CHUNK_ENV] = os.environ[PROBE_CHUNK_ENV]
        with local_stack(root, extra_env=env, on_invoke=progress.on_invoke if progress else None) as stack, \
                mesh.data_checks.aws():  # the dynamodb data checks' tables live in moto
            yield mesh, stack


def start_drill(stack: LocalStack, drill_id: str, execution_input: Any) -> str:
    response = stack.sfn.start_execution(
        stateMachineArn=stack.state_machine_arn, name=drill_id, input=json.dumps(execution_input),
    )
    return str(response["executionArn"])


def run_drill(spec_path: Path, *, root: Path, evidence_root: Path, out: TextIO = sys.stdout,
              drill_id: str | None = None, mesh_dir: Path | None = None,
              before_start: Callable[[SandboxMesh], None] | None = None,
              after_end: Callable[[SandboxMesh], None] | None = None, live: LiveView | None = None,
              allowed_ranges: str = LOCAL_RANGES, approve: bool = False, terminal: TextIO | None = None) -> DrillRun:
    """Run one drill end to end; raises InvalidDrillSpec before anything starts if the spec is invalid.

    With ``live``, progress lines go to the live view, which shows the drill while it runs. A drill with a go/no-go
    gate is approved at once with ``approve``, else asked on ``terminal`` (none: it waits out the gate's timeout)."""
    document, spec = read_spec(spec_path)
    drill_id = drill_id or new_drill_id(spec)
    progress = Progress(live.stream if live is not None else out)
    started = time.monotonic()
    progress.line(f"drill {drill_id}: {spec.pattern}, fault {spec.fault.kind} on {spec.fault.region}")
    mesh_dir = mesh_dir or spec_path.parent / "mesh"
    with interruptible(out) as guard, sandbox_session(spec, mesh_dir, root, progress=progress,
                                                      allowed_ranges=allowed_ranges) as (mesh, stack):
        served_by_sandbox = frozenset(mesh.resolve())
        for line in reach_lines(spec, served_by_sandbox):
            progress.line(line)
        if before_start is not None:
            before_start(mesh)
        LocalChain(evidence_root).seed(DrillStore(stack.dynamodb.Table(stack.table)), spec.metadata.service)
        execution_arn = start_drill(stack, drill_id, {"spec": document})
        deadline = spec.phases.baseline + spec.approval_seconds + spec.observe_seconds + STEP_ALLOWANCE_S
        on_event: Callable[[dict[str, Any]], None] = progress.on_event
        if spec.gate is not None:
            gate = LocalGate(DrillStore(stack.dynamodb.Table(stack.table)), stack.sfn, drill_id, approve=approve,
                             out=live.stream if live is not None else out, terminal=terminal)

            def on_event(event: dict[str, Any]) -> None:
                progress.on_event(event)
                gate.on_event(event)
        try:
            with watch_drill(live, spec, drill_id, on_event, s3=stack.s3, bucket=stack.bucket,
                             store=DrillStore(stack.dynamodb.Table(stack.table)),
                             served_by_sandbox=served_by_sandbox) as on_event:
                execution = follow_execution(stack, execution_arn, deadline, on_event)
        except Interrupted as interrupted:
            return _interrupted(stack, spec, drill_id, execution_arn, interrupted, evidence_root, started, out)
        guard.shield()  # the drill has ended: a signal now must not cut the evidence copy short
        if after_end is not None:
            after_end(mesh)
        return _conclude(stack, spec, drill_id, execution, evidence_root, started)


def _interrupted(stack: LocalStack, spec: DrillSpec, drill_id: str, execution_arn: str, interrupted: Interrupted,
                 evidence_root: Path, started: float, out: TextIO) -> DrillRun:
    aborted = abort_drill(stack, execution_arn, interrupted, wait_s=spec.observe_seconds + STOP_WAIT_S, out=out)
    execution = {"status": "ABORTED", "error": "Interrupted", "cause": str(interrupted)}
    run = _conclude(stack, spec, drill_id, execution, evidence_root, started)
    note = f"{aborted.restored} fault(s) rolled back; {aborted.detail}"
    return replace(run, interrupted=interrupted, note=note)


def _conclude(stack: LocalStack, spec: DrillSpec, drill_id: str, execution: dict[str, Any],
              evidence_root: Path, started: float) -> DrillRun:
    prefix = f"drills/{spec.metadata.service}/{drill_id}/"
    listed = stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=prefix).get("KeyCount", 0)
    evidence_dir = copy_evidence(stack, prefix, evidence_root / drill_id) if listed else None
    store = DrillStore(stack.dynamodb.Table(stack.table))
    LocalChain(evidence_root).save(store, drill_id)  # the next run links to this drill
    record = store.get_drill(drill_id)
    verdict = record.verdict if record is not None else None
    rto = record.rto_seconds if record is not None else None
    error = None
    if execution["status"] != "SUCCEEDED":
        error = f"{execution.get('error', '')}: {execution.get('cause', '')}".strip(": ")
    return DrillRun(drill_id, execution["status"], verdict, rto, evidence_dir, error, time.monotonic() - started)
