"""`livefire start SPEC --stack NAME`, `livefire status DRILL_ID --stack NAME` and `livefire approve|reject DRILL_ID
--stack NAME`: drills on a deployed stack.

The stack's CloudFormation outputs name the state machine, the drill table and the evidence bucket, so nothing
else needs configuring; credentials and region come from the usual AWS configuration (or ``--region``).
``start`` checks the spec on this machine first (an invalid spec starts nothing), starts an execution named like
a local drill, follows it with live progress and prints the verdict. Exit codes as ``livefire run``: 0 PASS,
1 FAIL / INCONCLUSIVE / NOT_STEADY / CANCELLED / ABORTED, 2 error. ``approve`` / ``reject`` answer a drill waiting at
its go/no-go gate (livefire/approval.py): the token is read from the drill's record, the decider is the caller's IAM
identity (needs states:SendTaskSuccess / SendTaskFailure on the drill state machine, and dynamodb:GetItem and
UpdateItem on the drill table).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from livefire.assessment import Assessment
from livefire_local.results import Results, add_result_options
from livefire_local.verdicts import EXIT_ERROR, DrillOutcome, exit_code_for, fetch_assessment

if TYPE_CHECKING:
    from livefire_local.live import LiveView

OUTPUTS = {"state_machine_arn": "StateMachineArn", "table": "DrillTableName", "bucket": "EvidenceBucketName"}
# On AWS the steps also pay for cold starts and retries; past phases + this, the drill is stopped (the guardian
# then restores whatever it left).
AWS_STEP_ALLOWANCE_S = 15 * 60.0
# GetExecutionHistory and DescribeExecution are throttled per account: poll gently.
AWS_POLL_S = 2.0


class StackError(Exception):
    """The stack is missing, or is not a livefire stack."""


@dataclass(frozen=True)
class StackOutputs:
    state_machine_arn: str
    table: str
    bucket: str

    @classmethod
    def of(cls, stack_name: str, cloudformation: Any) -> StackOutputs:
        from botocore.exceptions import ClientError

        try:
            stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
        except ClientError as exc:
            raise StackError(f"stack {stack_name}: {exc.response.get('Error', {}).get('Message', exc)}") from None
        outputs = {o["OutputKey"]: o["OutputValue"] for o in (stacks[0].get("Outputs") or [])}
        missing = sorted(key for key in OUTPUTS.values() if key not in outputs)
        if missing:
            raise StackError(f"stack {stack_name} has no outputs {', '.join(missing)}: is it a livefire stack?")
        return cls(**{field: outputs[key] for field, key in OUTPUTS.items()})


@dataclass(frozen=True)
class StackDrill:
    drill_id: str
    status: str
    verdict: str | None
    rto_seconds: float | None
    error: str | None
    report: str | None
    evidence: str | None = None  # s3://bucket/drills/<service>/<drill id>/
    assessment: Assessment | None = None

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.verdict)


def _session(region: str | None) -> Any:
    import boto3

    return boto3.session.Session(region_name=region)


def _store(session: Any, table: str) -> Any:
    from livefire.store import DrillStore

    return DrillStore(session.resource("dynamodb").Table(table))


def start_on_stack(spec_path: Path, *, stack_name: str, region: str | None = None, out: TextIO | None = None,
                   poll_s: float = AWS_POLL_S, allowance_s: float = AWS_STEP_ALLOWANCE_S,
                   drill_id: str | None = None, live: LiveView | None = None) -> StackDrill:
    """Start one drill on the deployed stack and follow it to its end; InvalidDrillSpec before anything starts.

    With ``live``, progress lines go to the live view, which reads the drill's fault records and probe chunks."""
    from livefire.artifacts import evidence_prefix
    from livefire.spec import read_spec
    from livefire_local.live import watch_drill
    from livefire_local.runner import Progress, follow_execution, new_drill_id

    document, spec = read_spec(spec_path)
    session = _session(region)
    stack = StackOutputs.of(stack_name, session.client("cloudformation"))
    sfn = session.client("stepfunctions")
    drill_id = drill_id or new_drill_id(spec)
    progress = Progress(live.stream if live is not None else out or sys.stdout)
    progress.line(f"drill {drill_id} on stack {stack_name}: {spec.pattern}, fault {spec.fault.kind} on "
                  f"{spec.fault.region}")
    execution_arn = sfn.start_execution(stateMachineArn=stack.state_machine_arn, name=drill_id,
                                        input=json.dumps({"spec": document}))["executionArn"]
    progress.line(f"execution {execution_arn}")
    deadline = spec.phases.baseline + spec.approval_seconds + spec.observe_seconds + allowance_s
    try:
        with watch_drill(live, spec, drill_id, progress.on_event, s3=session.client("s3"), bucket=stack.bucket,
                         store=_store(session, stack.table)) as on_event:
            execution = follow_execution(sfn, execution_arn, deadline, on_event, poll_s=poll_s)
    except KeyboardInterrupt:
        progress.line(f"stopped following; the drill goes on: livefire status {drill_id} --stack {stack_name}")
        return StackDrill(drill_id, "RUNNING", None, None, "not followed to its end", None)
    record = _store(session, stack.table).get_drill(drill_id)
    error = None
    if execution["status"] != "SUCCEEDED":
        error = f"{execution.get('error', '')}: {execution.get('cause', '')}".strip(": ")
    if record is None:
        return StackDrill(drill_id, str(execution["status"]), None, None, error, None)
    report = f"s3://{stack.bucket}/{record.report_key}" if record.report_key else None
    prefix = evidence_prefix(spec.metadata.service, drill_id)
    return StackDrill(drill_id, str(execution["status"]), record.verdict, record.rto_seconds, error, report,
                      f"s3://{stack.bucket}/{prefix}", fetch_assessment(session.client("s3"), stack.bucket, prefix))


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def print_status(drill_id: str, *, stack_name: str, region: str | None = None, out: TextIO | None = None) -> bool:
    """Print the drill record, its faults and (while it runs) its execution; False if there is no such drill."""
    session = _session(region)
    stack = StackOutputs.of(stack_name, session.client("cloudformation"))
    store = _store(session, stack.table)
    record = store.get_drill(drill_id)
    if record is None:
        return False
    rto = record.rto_seconds
    rows = [
        ("drill", drill_id), ("service", record.service or "-"), ("pattern", record.pattern or "-"),
        ("status", record.status), ("verdict", record.verdict or "-"),
        ("RTO", "-" if rto is None else f"{rto:.3f}s"),
        ("started", _when(record.started_at_ms)), ("ended", _when(record.ended_at_ms)),
        ("execution", record.execution_arn),
    ]
    if record.reason:
        rows.append(("reason", record.reason))
    if record.approval_status is not None:  # the go/no-go gate: waiting until, or who decided and why
        decided = f" by {record.approval_decided_by}" if record.approval_decided_by else \
            f" until {_when(record.approval_deadline_ms)}" if record.approval_status == "PENDING" else ""
        why = f" ({record.approval_reason})" if record.approval_reason else ""
        rows.append(("approval", f"{record.approval_status}{decided}{why}"))
    if record.report_key:
        rows.append(("report", f"s3://{stack.bucket}/{record.report_key}"))
    if record.manifest_digest:
        rows.append(("manifest", f"sha256:{record.manifest_digest}"))
    if record.status == "RUNNING":
        execution = session.client("stepfunctions").describe_execution(executionArn=record.execution_arn)
        rows.append(("execution status", execution["status"]))
    for fault in store.faults_of(drill_id):
        rows.append((f"fault {fault.fault_id}", f"{fault.status}{' - ' + fault.detail if fault.detail else ''}"))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}", file=out or sys.stdout)
    return True


def cmd_start(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from livefire.errors import InvalidDrillSpec

    results = Results.of(args)
    try:
        with results.running() as live:
            drill = start_on_stack(Path(args.spec), stack_name=args.stack, region=args.region, live=live)
    except InvalidDrillSpec as exc:
        print(f"invalid drill spec: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (StackError, OSError, ValueError, TimeoutError, BotoCoreError, ClientError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    code = results.publish(DrillOutcome.of(drill, assessment=drill.assessment, evidence=drill.evidence,
                                           report=drill.report))
    print(f"details: livefire status {drill.drill_id} --stack {args.stack}", file=results.human)
    return code


def cmd_status(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        found = print_status(args.drill_id, stack_name=args.stack, region=args.region)
    except (StackError, BotoCoreError, ClientError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if not found:
        print(f"no drill {args.drill_id} in stack {args.stack}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def _decide_on_stack(args: argparse.Namespace, approved: bool) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from livefire.approval import decide
    from livefire.errors import ApprovalNotPending, NotAnApprover
    from livefire.store import DrillStore

    try:
        session = _session(args.region)
        stack = StackOutputs.of(args.stack, session.client("cloudformation"))
        by = session.client("sts").get_caller_identity()["Arn"]
        store = DrillStore(session.resource("dynamodb").Table(stack.table))
        record = decide(store, session.client("stepfunctions"), args.drill_id, approved=approved, by=by,
                        reason=getattr(args, "reason", None), now_ms=int(time.time() * 1000))
    except (ApprovalNotPending, NotAnApprover, StackError, BotoCoreError, ClientError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"drill {args.drill_id}: {(record.approval_status or '').lower()} by {by}")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    return _decide_on_stack(args, True)


def cmd_reject(args: argparse.Namespace) -> int:
    return _decide_on_stack(args, False)


def _add_approval_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, func, help_ in (("approve", cmd_approve, "approve a drill waiting at its go/no-go gate: it injects"),
                              ("reject", cmd_reject, "reject a drill waiting at its go/no-go gate: it ends "
                                                     "CANCELLED, nothing injected")):
        command = commands.add_parser(name, help=help_)
        command.add_argument("drill_id", help="the drill id (the execution name)")
        command.add_argument("--stack", required=True, help="the CloudFormation stack `sam deploy` created (a "
                                                            "local `livefire run` answers its own gate)")
        command.add_argument("--region", default=None, help="the stack's region (default: your AWS configuration)")
        if name == "reject":
            command.add_argument("--reason", required=True, help="why: recorded in the drill's evidence")
        command.set_defaults(func=func)


def add_aws_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    start = commands.add_parser("start", help="start a drill on a deployed stack and follow it to its verdict")
    start.add_argument("spec", help="drill spec (YAML or JSON), e.g. drills/examples/<name>.yaml")
    start.add_argument("--stack", required=True, help="the CloudFormation stack `sam deploy` created")
    start.add_argument("--region", default=None, help="the stack's region (default: your AWS configuration)")
    add_result_options(start)
    start.set_defaults(func=cmd_start)
    status = commands.add_parser("status", help="show a drill of a deployed stack: record, faults, execution")
    status.add_argument("drill_id", help="the drill id (the execution name)")
    status.add_argument("--stack", required=True, help="the CloudFormation stack `sam deploy` created")
    status.add_argument("--region", default=None, help="the stack's region (default: your AWS configuration)")
    status.set_defaults(func=cmd_status)
    _add_approval_commands(commands)
