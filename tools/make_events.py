"""Regenerate events/*.json: the payloads the drill state machine really sends each function, from sandbox drills.

Runs two drills of drills/sandbox/active-passive.yaml (short phases) through the real ASL under moto: one that
passes (through its go/no-go gate, approved as ``livefire run --approve`` does), and one whose planned Rollback gets
a 500 from the Kubernetes API (so EmergencyRollback and an ERROR evidence run, and the execution FAILS). Every
Lambda task's ``Payload`` is taken from the execution history (``TaskScheduled`` parameters) and written as
``events/<function>_<case>.json``; the guardian's events are what EventBridge and Scheduler deliver.
tests/component/test_events.py invokes each file against its handler.

Usage: .venv/bin/python tools/make_events.py
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from datetime import UTC
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers" / "livefire"))

from livefire.spec import parse_spec  # noqa: E402
from livefire.store import DrillStore  # noqa: E402
from livefire_local.aws import LocalStack  # noqa: E402
from livefire_local.gate import LocalGate  # noqa: E402
from livefire_local.runner import follow_execution, new_drill_id, sandbox_session, start_drill  # noqa: E402
from livefire_local.template import ACCOUNT  # noqa: E402

EVENTS = ROOT / "events"
SANDBOX = ROOT / "drills" / "sandbox"
# Short enough to replay quickly, long enough for the sandbox to fail over and back (the drill passes).
PHASES = {"baseline": "1s", "lead": "1s", "fault": "3s", "recovery": "4s"}

# state name in the ASL -> file, per drill
PASSING = {
    "Plan": "plan_active_passive.json",
    "ProbeBaseline": "probe_baseline.json",
    "CheckSteady": "assess_steady.json",
    "AwaitApproval": "approval_gate.json",
    "Inject": "inject_http_abort.json",
    "ProbeDrill": "probe_drill.json",
    "Rollback": "rollback_planned.json",
    "Assess": "assess_recovery.json",
    "Evidence": "evidence_completed.json",
}
FAILING = {
    "Plan": "plan_rollback_fails.json",
    "Inject": "inject_rollback_fails.json",
    "EmergencyRollback": "rollback_emergency.json",
    "RecordFailure": "evidence_error.json",
}


def spec_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((SANDBOX / "active-passive.yaml").read_text())
    document["phases"] = dict(PHASES)
    return document


def task_payloads(stack: LocalStack, execution_arn: str) -> dict[str, Any]:
    """The Payload each Lambda task state was scheduled with, by state name (the first one of each)."""
    events = stack.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    payloads: dict[str, Any] = {}
    entered: dict[int, str] = {}  # a task is scheduled right after its state is entered (lanes interleave)
    state = ""
    for event in events:
        if event["type"].endswith("StateEntered"):
            state = entered[event["id"]] = event["stateEnteredEventDetails"]["name"]
        elif event["type"] == "TaskScheduled":
            state = entered.get(event.get("previousEventId", -1), state)
            if state in payloads:
                continue
            parameters = json.loads(event["taskScheduledEventDetails"]["parameters"])
            payloads[state] = parameters["Payload"]
    return payloads


def status_change_event(execution: dict[str, Any]) -> dict[str, Any]:
    """The "Step Functions Execution Status Change" event EventBridge delivers for the ended execution."""
    stop = execution["stopDate"].astimezone(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": ACCOUNT,
        "time": stop.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": execution["executionArn"].split(":")[3],
        "resources": [execution["executionArn"]],
        "detail": {
            "executionArn": execution["executionArn"],
            "stateMachineArn": execution["stateMachineArn"],
            "name": execution["name"],
            "status": execution["status"],
            "startDate": int(execution["startDate"].timestamp() * 1000),
            "stopDate": int(stop.timestamp() * 1000),
            "input": execution["input"],
            "inputDetails": {"included": True},
            "output": None,
            "outputDetails": None,
        },
    }


def write(name: str, document: Any) -> None:
    """The file, with this machine's paths in stack traces as Lambda shows them (layer in /opt/python)."""
    text = json.dumps(document, indent=2).replace(f"{ROOT}/layers/livefire/", "/opt/python/")
    text = re.sub(re.escape(f"{ROOT}/functions/") + r"[a-z]+/", "/var/task/", text)
    (EVENTS / name).write_text(text + "\n")
    print(f"wrote events/{name}")


def pick(payloads: dict[str, Any], files: dict[str, str], drill: str) -> None:
    missing = sorted(set(files) - set(payloads))
    if missing:
        raise SystemExit(f"the {drill} drill never scheduled {missing}: did the state machine change?")
    for state, name in files.items():
        write(name, payloads[state])


def main() -> int:
    logging.getLogger("moto").setLevel(logging.CRITICAL)  # it logs every failed state, and one drill fails
    document = spec_document()
    spec = parse_spec(document)
    EVENTS.mkdir(exist_ok=True)
    with sandbox_session(spec, SANDBOX / "mesh", ROOT) as (mesh, stack):
        passing = new_drill_id(spec)
        gate = LocalGate(DrillStore(stack.dynamodb.Table(stack.table)), stack.sfn, passing, approve=True,
                         out=sys.stdout, terminal=None)
        gated = {**document, "approval": {"timeout": "1m"}}
        execution = follow_execution(stack, start_drill(stack, passing, {"spec": gated}), 150, gate.on_event)
        if execution["status"] != "SUCCEEDED":
            raise SystemExit(f"the passing drill ended {execution['status']}: {execution.get('cause')}")
        pick(task_payloads(stack, execution["executionArn"]), PASSING, "passing")

        # the inject PATCH goes through, the planned rollback's PATCH gets a 500
        mesh.apis["payments-use1"].fail_next("PATCH", "virtualservices/payments", 500, times=1, skip=1)
        failing = new_drill_id(spec)
        execution = follow_execution(stack, start_drill(stack, failing, {"spec": document}), 90, lambda _: None)
        if execution["status"] != "FAILED":
            raise SystemExit(f"the failing drill ended {execution['status']}, expected FAILED")
        pick(task_payloads(stack, execution["executionArn"]), FAILING, "failing")
        write("guardian_execution_failed.json", status_change_event(execution))
    write("guardian_sweep.json", {"sweep": True})  # the Sweep schedule's Input, delivered as the event
    write("schedule_input.json", {"spec": document})  # what a ScheduledDrill schedule sends the state machine
    return 0


if __name__ == "__main__":
    sys.exit(main())
