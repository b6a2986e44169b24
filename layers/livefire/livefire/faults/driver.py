"""The driver protocol: what one fault kind does, with no say in how a fault is kept safe (docs/architecture.md §5).

A driver describes the fault's target before anything is touched (the document every rollback path restores
from), applies the fault, restores it, and checks in a dry run that it would work. It sees only a ``FaultTarget``:
the planned fault, its document and how to save it. Never the drill table and never the Runtime: the lifecycle
(lifecycle.py) owns the records, the fencing and the late undo.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from livefire.contracts import PlannedFault
from livefire.records import RestoreRefusal
from livefire.spec import Fault

# Records an id the fault is known by outside livefire (an FIS experiment) on the fault record as soon as it
# exists; raises Fenced when a rollback closed the record meanwhile.
Checkpoint = Callable[[str], None]


class Fenced(Exception):
    """A rollback closed the fault's record while the driver was starting the fault: the lifecycle undoes it."""


@dataclass(frozen=True)
class Bracket:
    """When a request that started or ended a fault was sent and when its answer came back (UTC epoch ms).

    The fault may take effect anywhere in between, so a sample inside the bracket is neither before nor after.
    """

    sent_at_ms: int
    answered_at_ms: int


@dataclass
class FaultDocument:
    """The fault's document in the evidence (``faults/<fault-id>-<name>.json``): the target's snapshot for a mesh
    fault; for FIS and webhook faults what was started and every call made, updated as they happen."""

    key: str
    data: dict[str, Any]
    _save: Callable[[str, Any], object]

    def save(self) -> None:
        self._save(self.key, self.data)


@dataclass
class FaultTarget:
    """All a driver knows of one fault."""

    drill_id: str
    planned: PlannedFault
    document: FaultDocument
    expires_at: int  # epoch seconds: when the sweeper may take the fault back
    external_id: str | None = None
    injected_at_ms: int | None = None


@dataclass(frozen=True)
class Applied:
    bracket: Bracket | None  # None: this call wrote nothing, the fault was already in place (a retried Inject)
    detail: str | None = None
    after: dict[str, Any] | None = None  # the target after the write, kept as the ``after`` snapshot
    external_id: str | None = None


@dataclass(frozen=True)
class Restored:
    status: Literal["RESTORED", "CONFLICT"]  # CONFLICT: refused, someone else changed the target since the snapshot
    wrote: bool  # whether this call changed anything (False: it was already back)
    detail: str
    bracket: Bracket | None = None  # the request that ended the fault; None when nothing was sent
    current: dict[str, Any] | None = None  # the target as the restore left it, kept as the ``restored`` snapshot
    external_id: str | None = None
    refusal: RestoreRefusal | None = None  # CONFLICT: the target, what differs, the command to restore it by hand


@dataclass(frozen=True)
class DryRun:
    """What a dry run found: the problems that would stop the drill (none: it would work) and one line saying what
    was checked and that nothing was changed."""

    detail: str
    problems: list[str]
    document: dict[str, Any] | None = None  # the fault's document as it would be written (a mesh snapshot)


class FaultDriver(Protocol):
    """One fault kind. ``document_name`` names its document (``before`` for a mesh snapshot)."""

    document_name: str

    def describe(self, drill_id: str, planned: PlannedFault, fault: Fault) -> dict[str, Any]:
        """The fault's document before anything is touched (the target's snapshot, or what will be started)."""
        ...

    def apply(self, target: FaultTarget, fault: Fault, checkpoint: Checkpoint) -> Applied:
        """Start the fault. Raises FaultInjectionFailed when it definitely failed (the record is marked FAILED);
        any other error leaves the record PENDING for a retry or a rollback."""
        ...

    def restore(self, target: FaultTarget, actor: str) -> Restored:
        """End the fault (idempotent). Raises RollbackFailed when it could not, leaving it to the next path."""
        ...

    def verify(self, drill_id: str, planned: PlannedFault, fault: Fault, expires_at: int) -> DryRun:
        """A dry run: check, changing nothing, that the fault and its restore would work."""
        ...

    def in_flight(self, target: FaultTarget) -> str:
        """What was in flight when a rollback overtook the apply ("the fault was being applied")."""
        ...
