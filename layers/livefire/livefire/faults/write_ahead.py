"""The write-ahead half of the fault lifecycle (docs/architecture.md §5): a fault's document, then its PENDING
record, before anything is touched; every later rollback path then knows what to restore.

Split from ``lifecycle.py`` (which calls it for each fault it injects) so that Plan, which opens the data checks'
marker cleanup before any marker exists (livefire/datachecks/cleanup.py), does not load the fault drivers and the
Kubernetes client it never uses. These two modules are the only writers of fault records.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from livefire.artifacts import snapshot_key
from livefire.contracts import Plan, PlannedFault
from livefire.errors import FaultInjectionFailed
from livefire.records import FaultRecord


class PendingRecords(Protocol):
    """What the write-ahead needs of the drill table (``livefire.store.DrillStore``)."""

    def put_fault_pending(self, drill_id: str, planned: PlannedFault, *, snapshot_key: str, expires_at: int,
                          pending_at_ms: int) -> bool: ...

    def fault(self, drill_id: str, fault_id: str) -> FaultRecord | None: ...


class PutJson(Protocol):
    def put_json(self, key: str, document: Any) -> object: ...


def write_ahead(store: PendingRecords, documents: PutJson, clock: Callable[[], int], plan: Plan,
                planned: PlannedFault, document: dict[str, Any] | None, name: str,
                expires_at: int) -> tuple[FaultRecord, bool]:
    """The fault's document, then its PENDING record; (the record, whether this call wrote it)."""
    key = snapshot_key(plan.evidence_prefix, planned.fault_id, name)
    if document is not None:
        documents.put_json(key, document)
    written = store.put_fault_pending(plan.drill_id, planned, snapshot_key=key, expires_at=expires_at,
                                      pending_at_ms=clock())
    record = store.fault(plan.drill_id, planned.fault_id)
    if record is None:
        raise FaultInjectionFailed(f"{planned.fault_id}: its fault record vanished; nothing was changed")
    return record, written  # not written: a rollback fenced it, or a concurrent Inject got there first
