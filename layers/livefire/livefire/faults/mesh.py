"""The mesh driver: http-abort, http-delay, traffic-shift, circuit-break and scale-to-zero, an adapter over
``livefire.mesh.faults`` (the patches and their API calls). Its document is the target's snapshot.

The mesh modules load the kubernetes client (~190 ms at import): they are imported on first use, so FIS,
webhook and observe-only drills, and a guardian sweep with nothing to restore, never pay for it.
"""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from livefire.errors import FaultInjectionFailed
from livefire.faults.driver import Applied, Bracket, Checkpoint, DryRun, FaultTarget, Restored
from livefire.mesh.patches import OBJECT_KIND, describe, differences, restore_patch
from livefire.records import RestoreRefusal

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from livefire.contracts import PlannedFault
    from livefire.spec import Fault

KINDS = frozenset(OBJECT_KIND)
_KUBECTL_RESOURCE = {"VirtualService": "virtualservices.networking.istio.io",
                     "DestinationRule": "destinationrules.networking.istio.io", "Deployment": "deployment"}
# What a snapshot holds that the API server sets: dropped before the snapshot is created again by hand.
_SERVER_FIELDS = (".metadata.resourceVersion, .metadata.uid, .metadata.generation, .metadata.creationTimestamp, "
                  ".metadata.managedFields, .status")
DRY_RUN_DETAIL = "dry run: nothing was patched"


def _api(planned: PlannedFault) -> ApiClient:
    if planned.cluster is None:
        raise FaultInjectionFailed(f"{planned.fault_id}: a {planned.kind} fault has no cluster")
    from livefire.mesh.kube import api_client_for

    return api_client_for(planned.cluster)


class MeshDriver:
    document_name = "before"

    def describe(self, drill_id: str, planned: PlannedFault, fault: Fault) -> dict[str, Any]:
        from livefire.mesh.faults import read_target

        return read_target(_api(planned), planned)

    def apply(self, target: FaultTarget, fault: Fault, checkpoint: Checkpoint) -> Applied:
        from livefire.mesh.faults import apply_fault

        applied = apply_fault(_api(target.planned), target.planned, fault, drill_id=target.drill_id,
                              expires_at=datetime.fromtimestamp(target.expires_at, UTC), before=target.document.data)
        written = applied.written
        bracket = Bracket(written.sent_at_ms, written.answered_at_ms) if written is not None else None
        return Applied(bracket=bracket, after=applied.current)

    def restore(self, target: FaultTarget, actor: str) -> Restored:
        from livefire.mesh.faults import restore_fault

        outcome = restore_fault(_api(target.planned), target.planned, target.document.data, drill_id=target.drill_id)
        written = outcome.written
        bracket = Bracket(written.sent_at_ms, written.answered_at_ms) if written is not None else None
        if outcome.status == "CONFLICT":
            return Restored(status="CONFLICT", wrote=False, detail=outcome.detail, current=outcome.current,
                            refusal=refusal(target, outcome.current))
        return Restored(status="RESTORED", wrote=outcome.status == "RESTORED", detail=outcome.detail,
                        bracket=bracket, current=outcome.current)

    def verify(self, drill_id: str, planned: PlannedFault, fault: Fault, expires_at: int) -> DryRun:
        from livefire.mesh.faults import check_fault

        check = check_fault(_api(planned), planned, fault, drill_id=drill_id,
                            expires_at=datetime.fromtimestamp(expires_at, UTC))
        if check.problems:
            detail = f"{DRY_RUN_DETAIL}; the fault would fail: {'; '.join(check.problems)}"
        else:
            detail = (f"{DRY_RUN_DETAIL}; the API server accepted the exact patch (dryRun=All) and "
                      "SelfSubjectAccessReview allows every verb the fault and its restore need (get, patch)")
        return DryRun(detail=detail, problems=check.problems, document=check.target)

    def in_flight(self, target: FaultTarget) -> str:
        return "the fault was being applied"


def _kubectl(planned: PlannedFault) -> str:
    """kubectl aimed at the fault's cluster, as a person at a terminal would run it."""
    cluster = planned.cluster
    assert cluster is not None
    if cluster.kubeconfig:
        context = f" --context {shlex.quote(cluster.context)}" if cluster.context else ""
        return f"kubectl --kubeconfig {shlex.quote(cluster.kubeconfig)}{context}"
    if cluster.eks:
        return (f"aws eks update-kubeconfig --name {shlex.quote(cluster.eks)} --region {shlex.quote(planned.region)} "
                "&& kubectl")
    return f"kubectl --server {shlex.quote(str(_api(planned).configuration.host))}"  # the sandbox's API


def refusal(target: FaultTarget, current: dict[str, Any]) -> RestoreRefusal:
    """What the report says of a refused restore: the object, what differs from the snapshot, and the command that
    puts the snapshot back (it overwrites the other change: run it only once a person has looked at that)."""
    planned, before = target.planned, target.document.data
    kubectl, namespace = _kubectl(planned), shlex.quote(planned.namespace)
    name, resource = shlex.quote(planned.object_name), _KUBECTL_RESOURCE[planned.object_kind]
    snapshot = target.document.key.rpartition("/faults/")[2]
    if not current:
        return RestoreRefusal(target=describe(planned), differs=["the object was deleted"], command=(
            f"jq 'del({_SERVER_FIELDS})' faults/{snapshot} | {kubectl} create -f -"))
    if planned.object_kind == "Deployment":
        replicas = (before.get("spec") or {}).get("replicas", 1)
        command = f"{kubectl} -n {namespace} scale {resource} {name} --replicas={replicas}"
    else:
        operations = json.dumps(restore_patch(current, before, planned)[1:], separators=(",", ":"))
        command = f"{kubectl} -n {namespace} patch {resource} {name} --type=json -p {shlex.quote(operations)}"
    return RestoreRefusal(target=describe(planned), differs=differences(current, before) or ["metadata"],
                          command=command)
