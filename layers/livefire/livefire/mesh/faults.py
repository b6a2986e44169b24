"""Mesh faults against a Kubernetes API: read the target, apply its fault, restore it, and check it in a dry run.

Every write is a JSON patch whose first op tests ``metadata.resourceVersion`` (the patches are in patches.py):
a 409/422 means the object moved, and the code re-reads and decides (our own earlier write, an unchanged
object, or a conflict) instead of retrying blindly. Each write that lands returns its bracket: when the request
was sent and when the answer came back (epoch ms), since the fault may take effect in between (docs/architecture.md
§5). Restore always puts back the whole snapshot of spec, labels and annotations, so every kind comes back
byte-identical, and only what this drill faulted: never someone's edit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from kubernetes.client import (
    ApiClient,
    AppsV1Api,
    AuthorizationV1Api,
    CustomObjectsApi,
    V1ResourceAttributes,
    V1SelfSubjectAccessReview,
    V1SelfSubjectAccessReviewSpec,
)
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from livefire.clock import now_ms
from livefire.contracts import PlannedFault
from livefire.errors import FaultConflict, FaultInjectionFailed, MeshAccessError, RollbackFailed
from livefire.mesh.patches import (
    Operations,
    describe,
    edited_since_applied,
    fault_patch,
    held_by,
    matches_applied,
    resource_version,
    restore_patch,
    same_owned,
    scaled_to_zero,
)
from livefire.spec import Fault

JSON_PATCH = "application/json-patch+json"
REQUEST_TIMEOUT = (5.0, 20.0)  # connect, read (seconds)
_APPLY_ATTEMPTS = 2
_RESTORE_ATTEMPTS = 3

# object kind -> (API group, version, plural); a deployment's fault is written through its scale subresource
RESOURCES: dict[str, tuple[str, str, str]] = {
    "VirtualService": ("networking.istio.io", "v1", "virtualservices"),
    "DestinationRule": ("networking.istio.io", "v1", "destinationrules"),
    "Deployment": ("apps", "v1", "deployments"),
}


@dataclass(frozen=True)
class Written:
    """One write the API server accepted: when its request was sent and when the answer came (epoch ms)."""

    sent_at_ms: int
    answered_at_ms: int


@dataclass(frozen=True)
class AppliedFault:
    current: dict[str, Any]  # the object after the fault
    written: Written | None  # None: this call wrote nothing (the object already carried exactly this fault)


@dataclass(frozen=True)
class DryRunCheck:
    target: dict[str, Any] | None  # the object as it is (None: it does not exist or could not be read)
    problems: list[str]  # why the fault or its restore would fail; empty: both would work


@dataclass(frozen=True)
class RestoreOutcome:
    status: Literal["RESTORED", "ALREADY_RESTORED", "CONFLICT"]
    current: dict[str, Any]
    detail: str
    written: Written | None = None  # the write that put the snapshot back (RESTORED only)


# ---------------------------------------------------------------- API calls


def _access_error(planned: PlannedFault, exc: Exception) -> MeshAccessError:
    if isinstance(exc, ApiException):
        return MeshAccessError(f"{describe(planned)}: API answered {exc.status} {exc.reason}")
    return MeshAccessError(f"{describe(planned)}: API unreachable ({type(exc).__name__})")


def _read(api: ApiClient, planned: PlannedFault) -> dict[str, Any] | None:
    """The current object, or None when it does not exist."""
    try:
        if planned.object_kind == "Deployment":
            response: Any = AppsV1Api(api).read_namespaced_deployment(  # raw: the typed model drops fields
                planned.object_name, planned.namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT)
            obj = json.loads(response.data)
        else:
            group, version, plural = RESOURCES[planned.object_kind]
            obj = CustomObjectsApi(api).get_namespaced_custom_object(
                group, version, planned.namespace, plural, planned.object_name, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise _access_error(planned, exc) from None
    except HTTPError as exc:
        raise _access_error(planned, exc) from None
    if not isinstance(obj, dict):
        raise MeshAccessError(f"{describe(planned)}: the API answered something that is not an object")
    return obj


def _send(api: ApiClient, planned: PlannedFault, operations: Operations, *, dry_run: bool = False) -> Written:
    """Send a JSON patch (``dryRun=All``: validated and admitted, not persisted); ApiException for 409/422 (and
    404) propagates for the caller to decide. The send instant is taken immediately before the request."""
    options: dict[str, Any] = {"_content_type": JSON_PATCH, "_request_timeout": REQUEST_TIMEOUT}
    if dry_run:
        options["dry_run"] = "All"
    try:
        if planned.object_kind == "Deployment":
            sent = now_ms()
            AppsV1Api(api).patch_namespaced_deployment_scale(
                planned.object_name, planned.namespace, operations, **options)
        else:
            group, version, plural = RESOURCES[planned.object_kind]
            sent = now_ms()
            CustomObjectsApi(api).patch_namespaced_custom_object(
                group, version, planned.namespace, plural, planned.object_name, operations, **options)
    except ApiException as exc:
        if exc.status in (404, 409, 422) or (dry_run and exc.status in (400, 403)):
            raise
        raise _access_error(planned, exc) from None
    except HTTPError as exc:
        raise _access_error(planned, exc) from None
    return Written(sent_at_ms=sent, answered_at_ms=now_ms())


def read_target(api: ApiClient, planned: PlannedFault) -> dict[str, Any]:
    """The target object as the API serves it (the snapshot a fault is restored to)."""
    obj = _read(api, planned)
    if obj is None:
        raise FaultInjectionFailed(f"{describe(planned)} does not exist")
    return obj


# ---------------------------------------------------------------- apply


def _is_ours(current: dict[str, Any], intended: dict[str, Any], planned: PlannedFault, drill_id: str) -> bool:
    if planned.object_kind == "Deployment":
        return same_owned(current, intended)
    return held_by(current) == drill_id and matches_applied(current, intended)


def apply_fault(api: ApiClient, planned: PlannedFault, fault: Fault, *, drill_id: str, expires_at: datetime,
                before: dict[str, Any]) -> AppliedFault:
    """Fault the object that ``before`` snapshots; returns the object after the write and the write's bracket.

    Idempotent: when the object already carries exactly this drill's fault (a retried invocation whose
    first write succeeded), it is returned unchanged, with no bracket. Raises FaultConflict when the object
    moved away from ``before`` or is held by another drill.
    """
    holder = held_by(before)
    if holder is not None:
        raise FaultConflict(f"{describe(planned)}: the snapshot is already faulted by drill {holder}")
    operations, intended = fault_patch(before, planned, fault, drill_id=drill_id, expires_at=expires_at)
    for attempt in range(_APPLY_ATTEMPTS):
        try:
            written = _send(api, planned, operations)
        except ApiException as exc:
            current = _read(api, planned) if exc.status != 404 else None
            if current is None:
                raise FaultInjectionFailed(f"{describe(planned)} disappeared before the fault") from None
            if _is_ours(current, intended, planned, drill_id):
                return AppliedFault(current, None)
            unchanged = resource_version(current) == resource_version(before) and same_owned(current, before)
            if unchanged and attempt + 1 < _APPLY_ATTEMPTS:
                continue  # a refused write on an object that did not move: the precondition still guards
            raise FaultConflict(
                f"{describe(planned)} changed since its snapshot (API answered {exc.status}); not faulted"
            ) from None
        after = _read(api, planned)
        if after is None:
            raise FaultInjectionFailed(f"{describe(planned)} disappeared right after the fault")
        return AppliedFault(after, written)
    raise FaultConflict(f"{describe(planned)}: the fault write was refused {_APPLY_ATTEMPTS} times")


# ---------------------------------------------------------------- restore


def _refusal(current: dict[str, Any], before: dict[str, Any], planned: PlannedFault, drill_id: str) -> str | None:
    """None when the object is ours to restore; else why not (someone else changed it)."""
    if planned.object_kind == "Deployment":
        if same_owned(current, scaled_to_zero(before)):
            return None
        return "the deployment changed during the drill (not just our scale to zero); left as it is"
    holder = held_by(current)
    if holder != drill_id:
        held = f"is held by drill {holder}" if holder else "no longer carries this drill's annotation"
        return f"{describe(planned)} {held} and differs from the snapshot; left as it is"
    if edited_since_applied(current):
        return f"{describe(planned)} was edited during the drill; left for a human to resolve"
    return None


def restore_fault(api: ApiClient, planned: PlannedFault, before: dict[str, Any], *, drill_id: str) -> RestoreOutcome:
    """Put the object back to ``before``; restores only what this drill faulted, never someone's edit."""
    for _attempt in range(_RESTORE_ATTEMPTS):
        current = _read(api, planned)
        if current is None:
            return RestoreOutcome("CONFLICT", {}, f"{describe(planned)} no longer exists; nothing restored")
        if same_owned(current, before):
            return RestoreOutcome("ALREADY_RESTORED", current, "the object already equals its snapshot")
        refused = _refusal(current, before, planned, drill_id)
        if refused is not None:
            return RestoreOutcome("CONFLICT", current, refused)
        try:
            written = _send(api, planned, restore_patch(current, before, planned))
        except ApiException as exc:
            if exc.status == 404:
                return RestoreOutcome("CONFLICT", {}, f"{describe(planned)} was deleted during the restore")
            continue  # 409/422: the object moved; re-read and decide again
        after = _read(api, planned)
        if after is None or not same_owned(after, before):
            raise RollbackFailed(f"{describe(planned)} does not equal its snapshot after the restore")
        return RestoreOutcome("RESTORED", after, "restored to the snapshot", written)
    raise RollbackFailed(f"{describe(planned)}: the restore write was refused {_RESTORE_ATTEMPTS} times")


# ---------------------------------------------------------------- dry run


def _verbs(planned: PlannedFault) -> list[tuple[str, str, str, str]]:
    """(verb, group, resource, subresource) of every request the fault and its restore make: both read the object
    and patch it (a deployment through its scale subresource)."""
    group, _version, plural = RESOURCES[planned.object_kind]
    subresource = "scale" if planned.object_kind == "Deployment" else ""
    return [("get", group, plural, ""), ("patch", group, plural, subresource)]


def _may(api: ApiClient, planned: PlannedFault, verb: str, group: str, resource: str, subresource: str) -> bool:
    """A SelfSubjectAccessReview: may this client make that request on the target?"""
    review = V1SelfSubjectAccessReview(
        api_version="authorization.k8s.io/v1", kind="SelfSubjectAccessReview",
        spec=V1SelfSubjectAccessReviewSpec(resource_attributes=V1ResourceAttributes(
            verb=verb, group=group, resource=resource, subresource=subresource or None,
            namespace=planned.namespace, name=planned.object_name)))
    try:
        response: Any = AuthorizationV1Api(api).create_self_subject_access_review(
            review, _preload_content=False, _request_timeout=REQUEST_TIMEOUT)
        answer = json.loads(response.data)
    except (ApiException, HTTPError, ValueError) as exc:
        raise _access_error(planned, exc) from None
    return bool((answer.get("status") or {}).get("allowed"))


def check_fault(api: ApiClient, planned: PlannedFault, fault: Fault, *, drill_id: str,
                expires_at: datetime) -> DryRunCheck:
    """A dry run, changing nothing: the object exists, the exact patch of the fault is accepted by the API server
    with ``dryRun=All`` (validation and admission, not persisted), and a SelfSubjectAccessReview allows every verb
    the fault and its restore need."""
    problems: list[str] = []
    try:
        before = _read(api, planned)
        if before is None:
            problems.append(f"{describe(planned)} does not exist")
        elif (holder := held_by(before)) is not None:
            problems.append(f"{describe(planned)} already carries the fault of drill {holder}")
        else:
            try:
                operations, _after = fault_patch(before, planned, fault, drill_id=drill_id, expires_at=expires_at)
                _send(api, planned, operations, dry_run=True)
            except FaultInjectionFailed as exc:
                problems.append(str(exc))
            except ApiException as exc:
                problems.append(f"{describe(planned)}: the API server refused the patch (dryRun=All): "
                                f"{exc.status} {exc.reason}")
        for verb, group, resource, subresource in _verbs(planned):
            if not _may(api, planned, verb, group, resource, subresource):
                what = f"{resource}/{subresource}" if subresource else resource
                problems.append(f"RBAC: this function may not {verb} {what}.{group} {planned.object_name!r} in "
                                f"namespace {planned.namespace!r} (SelfSubjectAccessReview)")
    except MeshAccessError as exc:
        return DryRunCheck(target=None, problems=[*problems, str(exc)])
    return DryRunCheck(target=before, problems=problems)
