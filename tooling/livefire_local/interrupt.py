"""Ctrl-C and SIGTERM during `livefire run`: stop the drill, restore what it changed, keep the evidence.

A signal raises ``Interrupted`` in the main thread (where the runner follows the execution). From then on the
runner is *shielded*: further signals only print that the rollback is still running, so a second Ctrl-C can never
skip it. The abort itself stops the execution, runs the guardian on its status change (the same restore the
guardian runs on AWS), and has the Evidence function write the drill's evidence with outcome ABORTED.
See docs/architecture.md §9 and §10.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any, TextIO

import boto3

from livefire_local.aws import REGION, LocalStack
from livefire_local.guardian_rule import deliver_when_ended

HANDLED = (signal.SIGINT, signal.SIGTERM)
EVIDENCE = "EvidenceFunction"
ROLLBACK = "RollbackFunction"


class Interrupted(Exception):
    """The person running the drill sent SIGINT or SIGTERM."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


class InterruptGuard:
    """Turns the first signal into ``Interrupted``; once ``shield()`` is called, later signals are only noted."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self.shielded = False

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.shielded:
            print(f"{signal.Signals(signum).name}: the rollback is still running; livefire exits when it is done",
                  file=self._out, flush=True)
            return
        self.shielded = True
        raise Interrupted(signum)

    def shield(self) -> None:
        self.shielded = True


@contextmanager
def interruptible(out: TextIO = sys.stderr) -> Iterator[InterruptGuard]:
    """Install the handlers for the duration of a drill (main thread only; elsewhere signals stay as they were)."""
    guard = InterruptGuard(out)
    try:
        previous = {signum: signal.signal(signum, guard.handle) for signum in HANDLED}
    except ValueError:  # not the main thread: the caller handles interruption itself
        yield guard
        return
    try:
        yield guard
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@dataclass(frozen=True)
class AbortOutcome:
    restored: int  # faults the rollback closed as RESTORED
    evidence_written: bool
    detail: str


def _plan_of(stack: LocalStack, execution_arn: str) -> dict[str, Any] | None:
    """The Plan step's output, from the execution history (None when the drill was stopped before Plan ended)."""
    events = stack.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    for event in events:
        details = event.get("stateExitedEventDetails") or {}
        if details.get("name") == "Plan":
            plan: dict[str, Any] | None = json.loads(details.get("output") or "{}").get("plan")
            return plan
    return None


def _invoke(stack: LocalStack, logical_id: str, payload: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    response = boto3.client("lambda", region_name=REGION).invoke(
        FunctionName=stack.template.physical_names[logical_id], Payload=json.dumps(payload).encode(),
    )
    answer: dict[str, Any] = json.loads(response["Payload"].read() or b"{}")
    return not response.get("FunctionError"), answer


def abort_drill(stack: LocalStack, execution_arn: str, interrupted: Interrupted, *, wait_s: float,
                out: TextIO = sys.stderr) -> AbortOutcome:
    """Stop the execution and roll its faults back at once (the emergency rollback), let the guardian run on its
    status change (it releases the leases and restores anything still left), then write the evidence, outcome
    ABORTED. A probe invocation in flight is not cancelled (neither is one on AWS): the evidence waits for it,
    at most ``wait_s``, so that its samples are part of the record."""
    logging.getLogger("moto").setLevel(logging.CRITICAL)  # a stopped execution logs its own cancellation as errors
    sfn = stack.sfn
    if sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING":
        sfn.stop_execution(executionArn=execution_arn, error="Interrupted", cause=str(interrupted))
    plan = _plan_of(stack, execution_arn)
    restored = 0
    if plan is not None:
        ok, answer = _invoke(stack, ROLLBACK, {"plan": plan, "emergency": True})
        restored = sum(1 for fault in answer.get("faults", []) if fault.get("status") == "RESTORED") if ok else 0
        state = "rolled back" if ok else f"the rollback failed ({answer.get('errorType')}); the guardian retries it"
        print(f"{interrupted}: fault {state}; waiting up to {wait_s:.0f}s for the probes in flight, to write the "
              "evidence", file=out, flush=True)
    deliver_when_ended(stack, execution_arn, wait_s=wait_s)
    if plan is None:
        return AbortOutcome(restored, False, "stopped before Plan ended: nothing was injected, no evidence to write")
    request = {"plan": plan, "outcome": "ABORTED",
               "error": {"error": "Interrupted", "cause": f"{interrupted} from the person running the drill"}}
    ok, answer = _invoke(stack, EVIDENCE, request)
    if not ok:
        return AbortOutcome(restored, False, f"writing the evidence failed: {answer.get('errorType')}")
    return AbortOutcome(restored, True, "evidence written with outcome ABORTED")
