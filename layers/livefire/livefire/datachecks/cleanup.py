"""The data checks' markers are cleaned up like a fault is rolled back (docs/architecture.md §5, §9).

Plan writes, before any marker exists, a PENDING fault record of kind ``data-check`` (``cleanup_fault``) whose
document names the marker prefix and the stores (``cleanup_document``). Inject never applies it (it is not among
the plan's faults); every rollback path (Rollback, EmergencyRollback, the guardian, the sweeper) restores it with
``MarkerCleanupDriver``: it deletes every marker under ``livefire-marker/<drill id>/`` from every store. Since the
drill window keeps writing markers after the fault's Rollback, a restored cleanup record is restored again by each
later rollback (the delete is idempotent), and the window deletes its own markers when it ends
(``marking.py``): so no ending (success, failure, timeout, abort, crash) leaves a marker behind.
"""

from __future__ import annotations

from typing import Any

from livefire.clock import now_ms
from livefire.contracts import PlannedFault
from livefire.datachecks.stores import MarkerError, delete_markers, marker_roles
from livefire.errors import RollbackFailed
from livefire.faults.driver import Applied, Bracket, Checkpoint, DryRun, FaultTarget, Restored
from livefire.spec import DrillSpec, Fault
from livefire.spec.datachecks import DataCheck, marker_prefix

CLEANUP_KIND = "data-check"
CLEANUP_FAULT_ID = "data-check-markers"
CLEANUP_DOCUMENT = "markers"  # faults/data-check-markers-markers.json


def is_cleanup(planned: PlannedFault) -> bool:
    """Whether a fault record is the data checks' marker cleanup, not a fault."""
    return planned.kind == CLEANUP_KIND


def cleanup_fault(spec: DrillSpec, drill_id: str) -> PlannedFault | None:
    """The cleanup record's planned fault; None when the spec has no data checks."""
    if not spec.data_checks:
        return None
    primary = next(r.name for r in spec.regions if r.role == "primary")
    prefix = marker_prefix(drill_id)
    return PlannedFault(fault_id=CLEANUP_FAULT_ID, kind=CLEANUP_KIND, region=primary, object_kind="DataCheckMarkers",
                        object_name=prefix, lease_key=f"markers:{prefix}")


def cleanup_document(spec: DrillSpec, drill_id: str) -> dict[str, Any]:
    """What a rollback needs to delete the markers: their prefix, every data check (its store) and the roles its
    tables' regions are reached through (``roles``, AWS region -> role ARN: stores.py ``marker_roles``)."""
    return {"prefix": marker_prefix(drill_id),
            "dataChecks": [check.model_dump(mode="json", by_alias=True, exclude_none=True)
                           for check in spec.data_checks],
            "roles": marker_roles(spec)}


class MarkerCleanupDriver:
    """Restores the cleanup record: deletes the drill's markers. It is never applied (the window writes them)."""

    document_name = CLEANUP_DOCUMENT

    def describe(self, drill_id: str, planned: PlannedFault, fault: Fault) -> dict[str, Any]:
        raise RollbackFailed(f"{planned.fault_id}: the marker cleanup is opened by Plan, never injected")

    def apply(self, target: FaultTarget, fault: Fault, checkpoint: Checkpoint) -> Applied:
        return Applied(bracket=None, detail="markers are written by the drill window, not by Inject")

    def restore(self, target: FaultTarget, actor: str) -> Restored:
        document = target.document.data
        prefix = str(document["prefix"])
        checks = [DataCheck.model_validate(raw) for raw in document["dataChecks"]]
        roles = {str(region): str(role) for region, role in document.get("roles", {}).items()}
        sent = now_ms()
        failures = []
        for check in checks:
            try:
                delete_markers(check, prefix + f"{check.name}/", roles)
            except MarkerError as exc:
                failures.append(f"{check.name}: {exc}")
        if failures:
            raise RollbackFailed(f"could not delete the markers under {prefix}: {'; '.join(failures)}")
        return Restored(status="RESTORED", wrote=False, bracket=Bracket(sent, now_ms()),
                        detail=f"{actor} deleted the markers under {prefix} from {len(checks)} data check(s)")

    def verify(self, drill_id: str, planned: PlannedFault, fault: Fault, expires_at: int) -> DryRun:
        return DryRun(detail="the marker cleanup runs after every ending; nothing to check", problems=[])

    def in_flight(self, target: FaultTarget) -> str:
        return "the markers were being written"
