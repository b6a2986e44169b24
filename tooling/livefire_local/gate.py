"""The go/no-go gate of a local drill (docs/architecture.md §2, §9, §10).

``livefire run`` keeps its AWS (moto) in its own process, so no other terminal can reach its gate (on a deployed
stack, ``livefire approve|reject`` do: livefire_local/aws_cli.py). The run answers its gate itself (``LocalGate``):
at once with ``--approve``, else by asking on its terminal; with neither (no terminal, no flag) the gate waits out
its timeout and the drill ends CANCELLED.
"""

from __future__ import annotations

import getpass
import select
import time
from typing import Any, TextIO

from livefire.approval import decide
from livefire.errors import ApprovalNotPending, NotAnApprover
from livefire.store import DrillStore

GATE_STATE = "AwaitApproval"
APPROVE_WORDS = frozenset({"y", "yes", "approve"})


def _now_ms() -> int:
    return int(time.time() * 1000)


class LocalGate:
    """Answers the gate of a local run once its token is stored (the AwaitApproval task's ``TaskSubmitted``
    event): ``approve`` at once, or asks on ``terminal`` until the gate's deadline, or (neither) lets it wait."""

    def __init__(self, store: DrillStore, sfn: Any, drill_id: str, *, approve: bool, out: TextIO,
                 terminal: TextIO | None) -> None:
        self._store, self._sfn, self._drill_id = store, sfn, drill_id
        self._approve, self._out, self._terminal = approve, out, terminal
        self._state = ""
        self.decided: str | None = None  # APPROVED / REJECTED once this run answered

    def on_event(self, event: dict[str, Any]) -> None:
        if event["type"].endswith("StateEntered"):
            self._state = event["stateEnteredEventDetails"]["name"]
        elif event["type"] == "TaskSubmitted" and self._state == GATE_STATE and self.decided is None:
            self._answer()

    def _say(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    def _answer(self) -> None:
        record = self._store.get_drill(self._drill_id)
        deadline_ms = record.approval_deadline_ms if record is not None else None
        if self._approve:
            self._decide(True, "approved with --approve")
            return
        if self._terminal is None:
            self._say(f"go/no-go: drill {self._drill_id} waits for approval; this run has no terminal to ask and no "
                      "--approve, so it will be CANCELLED when the gate times out")
            return
        self._say(f"go/no-go: approve drill {self._drill_id}? Type 'yes' to inject, or a reason to reject, then Enter "
                  "(no answer: CANCELLED at the gate's timeout)")
        answer = self._read_line(deadline_ms)
        if answer is None:
            self._say("go/no-go: no answer before the gate's timeout")
            return
        if answer.strip().lower() in APPROVE_WORDS:
            self._decide(True, None)
        else:
            self._decide(False, answer.strip() or "rejected at the terminal")

    def _read_line(self, deadline_ms: int | None) -> str | None:
        """One line from the terminal, or None when the gate's deadline passes (or the terminal closes) first."""
        assert self._terminal is not None
        wait_s = None if deadline_ms is None else max(0.0, (deadline_ms - _now_ms()) / 1000.0)
        ready, _, _ = select.select([self._terminal], [], [], wait_s)
        if not ready:
            return None
        line = self._terminal.readline()
        return line if line else None

    def _decide(self, approved: bool, reason: str | None) -> None:
        try:
            record = decide(self._store, self._sfn, self._drill_id, approved=approved, by=getpass.getuser(),
                            reason=reason, now_ms=_now_ms())
        except (ApprovalNotPending, NotAnApprover) as exc:
            self._say(f"go/no-go: {exc}")
            return
        self.decided = record.approval_status
        self._say(f"go/no-go: {(record.approval_status or '').lower()} by {record.approval_decided_by}")
