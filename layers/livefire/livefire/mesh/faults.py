"""Faults as apply/restore pairs on Istio ``networking.istio.io/v1`` objects and deployment scale.

Every write is a JSON patch whose first op tests ``metadata.resourceVersion``: a 409/422 means the object
moved, and the code re-reads and decides (our own earlier write, an unchanged object, or a conflict) instead
of retrying blindly. Faulted objects carry ``livefire.dev/drill-id``, ``livefire.dev/expires-at`` and
``livefire.dev/applied-digest`` (the digest of what the drill wrote), so a restore can tell its own fault
from someone else's edit and never clobbers the latter.

Kinds: http-abort / http-delay (``spec.http[i].fault`` of the matched routes), traffic-shift (``weight`` of the
matched routes' destinations, by subset; each route's weights must still add up to 100), circuit-break
(the DestinationRule's ``trafficPolicy.connectionPool`` limits, other pool settings kept) and scale-to-zero
(the ``deployments/{name}/scale`` subresource). Restore always puts back the whole snapshot of spec, labels
and annotations, so every kind comes back byte-identical.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from kubernetes.client import ApiClient, AppsV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from livefire.contracts import PlannedFault
from livefire.errors import FaultConflict, FaultInjectionFailed, MeshAccessError, RollbackFailed
from livefire.spec import Fault

DRILL_ID = "livefire.dev/drill-id"
EXPIRES_AT = "livefire.dev/expires-at"
APPLIED_DIGEST = "livefire.dev/applied-digest"
OWNERSHIP_ANNOTATIONS = (DRILL_ID, EXPIRES_AT, APPLIED_DIGEST)
JSON_PATCH = "application/json-patch+json"
REQUEST_TIMEOUT = (5.0, 20.0)  # connect, read (seconds)
_APPLY_ATTEMPTS = 2
_RESTORE_ATTEMPTS = 3

_ISTIO: dict[str, tuple[str, str, str]] = {
    "VirtualService": ("networking.istio.io", "v1", "virtualservices"),
    "DestinationRule": ("networking.istio.io", "v1", "destinationrules"),
}


@dataclass(frozen=True)
class RestoreOutcome:
    status: Literal["RESTORED", "ALREADY_RESTORED", "CONFLICT"]
    current: dict[str, Any]
    detail: str


# ---------------------------------------------------------------- object helpers


def owned_content(obj: dict[str, Any]) -> dict[str, Any]:
    """What a user owns in an object: spec, labels, annotations (server-managed fields left out)."""
    meta = obj.get("metadata") or {}
    return {
        "labels": meta.get("labels") or {},
        "annotations": meta.get("annotations") or {},
        "spec": obj.get("spec"),
    }


def _json_number(value: float) -> float | int:
    """JSON has one number type: 100.0 and 100 are the same value (a Go API server answers 100)."""
    return int(value) if float(value).is_integer() else value


def _normalized(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalized(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    if isinstance(value, float):
        return _json_number(value)
    return value


def _canonical_json(value: Any) -> bytes:
    return json.dumps(_normalized(value), sort_keys=True, separators=(",", ":")).encode()


def canonical(obj: dict[str, Any]) -> bytes:
    """Byte-exact, order-independent rendering of ``owned_content``."""
    return _canonical_json(owned_content(obj))


def _applied_digest(obj: dict[str, Any]) -> str:
    """Digest of an object's owned content without livefire's own annotations."""
    content = owned_content(obj)
    content["annotations"] = {
        k: v for k, v in content["annotations"].items() if k not in OWNERSHIP_ANNOTATIONS
    }
    return hashlib.sha256(_canonical_json(content)).hexdigest()


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def _rv(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["resourceVersion"])


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def format_istio_duration(seconds: float) -> str:
    """Seconds as an Istio duration string: 1.5 -> "1.5s", 0.25 -> "0.25s", 2 -> "2s"."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def _describe(planned: PlannedFault) -> str:
    cluster = planned.cluster.key if planned.cluster is not None else "no cluster"
    return f"{planned.object_kind} {planned.namespace}/{planned.object_name} on {cluster}"


# ---------------------------------------------------------------- API calls


def _access_error(planned: PlannedFault, exc: Exception) -> MeshAccessError:
    if isinstance(exc, ApiException):
        return MeshAccessError(f"{_describe(planned)}: API answered {exc.status} {exc.reason}")
    return MeshAccessError(f"{_describe(planned)}: API unreachable ({type(exc).__name__})")


def _raw_json(response: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(response.data)
    return data


def _read(api: ApiClient, planned: PlannedFault) -> dict[str, Any] | None:
    """The current object, or None when it does not exist."""
    try:
        if planned.object_kind == "Deployment":
            response = AppsV1Api(api).read_namespaced_deployment(
                planned.object_name, planned.namespace,
                _preload_content=False, _request_timeout=REQUEST_TIMEOUT,
            )
            return _raw_json(response)
        group, version, plural = _ISTIO[planned.object_kind]
        obj = CustomObjectsApi(api).get_namespaced_custom_object(
            group, version, planned.namespace, plural, planned.object_name,
            _request_timeout=REQUEST_TIMEOUT,
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise _access_error(planned, exc) from None
    except HTTPError as exc:
        raise _access_error(planned, exc) from None
    if not isinstance(obj, dict):
        raise MeshAccessError(f"{_describe(planned)}: the API answered something that is not an object")
    return obj


def _json_patch(api: ApiClient, planned: PlannedFault, operations: list[dict[str, Any]]) -> None:
    """Send a JSON patch; ApiException for 409/422 (and 404) propagates for the caller to decide."""
    try:
        if planned.object_kind == "Deployment":
            AppsV1Api(api).patch_namespaced_deployment_scale(
                planned.object_name, planned.namespace, operations,
                _content_type=JSON_PATCH, _request_timeout=REQUEST_TIMEOUT,
            )
            return
        group, version, plural = _ISTIO[planned.object_kind]
        CustomObjectsApi(api).patch_namespaced_custom_object(
            group, version, planned.namespace, plural, planned.object_name, operations,
            _content_type=JSON_PATCH, _request_timeout=REQUEST_TIMEOUT,
        )
    except ApiException as exc:
        if exc.status in (404, 409, 422):
            raise
        raise _access_error(planned, exc) from None
    except HTTPError as exc:
        raise _access_error(planned, exc) from None


def read_target(api: ApiClient, planned: PlannedFault) -> dict[str, Any]:
    """The target object as the API serves it (the snapshot a fault is restored to)."""
    obj = _read(api, planned)
    if obj is None:
        raise FaultInjectionFailed(f"{_describe(planned)} does not exist")
    return obj


# ---------------------------------------------------------------- the faulted state


def _http_fault(fault: Fault) -> dict[str, Any]:
    if fault.kind == "http-abort" and fault.abort is not None:
        return {
            "abort": {
                "httpStatus": fault.abort.http_status,
                "percentage": {"value": _json_number(fault.abort.percent)},
            }
        }
    if fault.kind == "http-delay" and fault.delay is not None:
        return {
            "delay": {
                "fixedDelay": format_istio_duration(fault.delay.fixed_delay),
                "percentage": {"value": _json_number(fault.delay.percent)},
            }
        }
    raise FaultInjectionFailed(f"fault kind {fault.kind} has no http fault payload")


def _matched_routes(obj: dict[str, Any], fault: Fault, planned: PlannedFault) -> list[int]:
    routes = (obj.get("spec") or {}).get("http") or []
    wanted = fault.target.route if fault.target is not None else None
    matched = [i for i, route in enumerate(routes) if wanted is None or route.get("name") == wanted]
    if not matched:
        which = f"an http route named {wanted!r}" if wanted else "any http route"
        raise FaultInjectionFailed(f"{_describe(planned)} has no {which}")
    return matched


def _route_weight(destinations: list[dict[str, Any]], index: int) -> int:
    """Istio's effective weight: unset is 100 for a lone destination and 0 beside others."""
    weight = destinations[index].get("weight")
    if weight is None:
        return 100 if len(destinations) == 1 else 0
    return int(weight)


def _shift_operations(
    before: dict[str, Any], spec: dict[str, Any], planned: PlannedFault, fault: Fault
) -> list[dict[str, Any]]:
    weights = fault.weights or {}
    ops: list[dict[str, Any]] = []
    for index in _matched_routes(before, fault, planned):
        route = spec["http"][index]
        label = f"http route {route.get('name') or index}"
        destinations: list[dict[str, Any]] = route.get("route") or []
        subsets = [(d.get("destination") or {}).get("subset") for d in destinations]
        missing = sorted(set(weights) - set(subsets))
        if missing:
            raise FaultInjectionFailed(
                f"{_describe(planned)}: {label} has no destination with subset {', '.join(missing)}"
            )
        for position, subset in enumerate(subsets):
            if subset in weights:
                destinations[position]["weight"] = weights[subset]
                ops.append({"op": "add", "path": f"/spec/http/{index}/route/{position}/weight",
                            "value": weights[subset]})
        total = sum(_route_weight(destinations, i) for i in range(len(destinations)))
        if total != 100:
            raise FaultInjectionFailed(
                f"{_describe(planned)}: the weights of {label} would add up to {total}, not 100 "
                "(name every destination that keeps a weight)"
            )
    return ops


def _squeeze_operations(spec: dict[str, Any], planned: PlannedFault, fault: Fault) -> list[dict[str, Any]]:
    if "host" not in spec:
        raise FaultInjectionFailed(f"{_describe(planned)} has no spec.host")
    squeeze = fault.squeeze
    policy = spec.get("trafficPolicy")
    pool = copy.deepcopy((policy or {}).get("connectionPool") or {})
    if squeeze.max_connections is not None:
        pool.setdefault("tcp", {})["maxConnections"] = squeeze.max_connections
    http_limits = {
        "http1MaxPendingRequests": squeeze.http1_max_pending_requests,
        "http2MaxRequests": squeeze.http2_max_requests,
        "maxRequestsPerConnection": squeeze.max_requests_per_connection,
    }
    for key, value in http_limits.items():
        if value is not None:
            pool.setdefault("http", {})[key] = value
    if policy is None:
        spec["trafficPolicy"] = {"connectionPool": pool}
        return [{"op": "add", "path": "/spec/trafficPolicy", "value": {"connectionPool": copy.deepcopy(pool)}}]
    policy["connectionPool"] = pool
    return [{"op": "add", "path": "/spec/trafficPolicy/connectionPool", "value": copy.deepcopy(pool)}]


_OBJECT_KIND = {
    "http-abort": "VirtualService",
    "http-delay": "VirtualService",
    "traffic-shift": "VirtualService",
    "circuit-break": "DestinationRule",
    "scale-to-zero": "Deployment",
}


def _spec_operations(
    before: dict[str, Any], planned: PlannedFault, fault: Fault
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The JSON patch ops that fault ``before``, and the spec they produce."""
    spec = copy.deepcopy(before.get("spec") or {})
    if planned.object_kind != _OBJECT_KIND[fault.kind]:
        raise FaultInjectionFailed(f"{fault.kind} needs a {_OBJECT_KIND[fault.kind]}, not {planned.object_kind}")
    if fault.kind in ("http-abort", "http-delay"):
        payload = _http_fault(fault)
        ops = []
        for index in _matched_routes(before, fault, planned):
            spec["http"][index]["fault"] = copy.deepcopy(payload)
            ops.append({"op": "add", "path": f"/spec/http/{index}/fault", "value": copy.deepcopy(payload)})
        return ops, spec
    if fault.kind == "traffic-shift":
        return _shift_operations(before, spec, planned, fault), spec
    if fault.kind == "circuit-break":
        return _squeeze_operations(spec, planned, fault), spec
    spec["replicas"] = 0
    return [{"op": "replace", "path": "/spec/replicas", "value": 0}], spec


def _annotation_operations(obj: dict[str, Any], values: dict[str, str]) -> list[dict[str, Any]]:
    """Ops that set annotations, creating the map when the object has none."""
    if not _annotations(obj):
        return [{"op": "add", "path": "/metadata/annotations", "value": dict(values)}]
    return [
        {"op": "add", "path": f"/metadata/annotations/{_escape(key)}", "value": value}
        for key, value in values.items()
    ]


def _faulted(
    before: dict[str, Any], planned: PlannedFault, fault: Fault, drill_id: str, expires_at: datetime
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The full JSON patch (after the resourceVersion test) and the object it leads to."""
    spec_ops, spec = _spec_operations(before, planned, fault)
    after = copy.deepcopy(before)
    after["spec"] = spec
    if planned.object_kind == "Deployment":
        # the scale subresource carries no annotations (and RBAC grants no patch on deployments)
        return spec_ops, after
    stamp = expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ownership = {DRILL_ID: drill_id, EXPIRES_AT: stamp, APPLIED_DIGEST: _applied_digest(after)}
    ann_ops = _annotation_operations(before, ownership)
    after.setdefault("metadata", {}).setdefault("annotations", {}).update(ownership)
    return spec_ops + ann_ops, after


def _held_by(obj: dict[str, Any]) -> str | None:
    return _annotations(obj).get(DRILL_ID)


def _same_owned(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return canonical(a) == canonical(b)


def _matches_applied(current: dict[str, Any], intended: dict[str, Any]) -> bool:
    """Whether ``current`` is exactly the faulted state (the expiry stamp may differ between retries)."""

    def without_expiry(obj: dict[str, Any]) -> bytes:
        content = owned_content(obj)
        content["annotations"] = {k: v for k, v in content["annotations"].items() if k != EXPIRES_AT}
        return _canonical_json(content)

    return without_expiry(current) == without_expiry(intended)


# ---------------------------------------------------------------- apply


def apply_fault(
    api: ApiClient,
    planned: PlannedFault,
    fault: Fault,
    *,
    drill_id: str,
    expires_at: datetime,
    before: dict[str, Any],
) -> dict[str, Any]:
    """Fault the object that ``before`` snapshots; returns the object after the write.

    Idempotent: when the object already carries exactly this drill's fault (a retried invocation whose
    first write succeeded), it is returned unchanged. Raises FaultConflict when the object moved away from
    ``before`` or is held by another drill.
    """
    holder = _held_by(before)
    if holder is not None:
        raise FaultConflict(f"{_describe(planned)}: the snapshot is already faulted by drill {holder}")
    operations, intended = _faulted(before, planned, fault, drill_id, expires_at)
    for attempt in range(_APPLY_ATTEMPTS):
        try:
            _json_patch(
                api, planned,
                [{"op": "test", "path": "/metadata/resourceVersion", "value": _rv(before)}, *operations],
            )
        except ApiException as exc:
            if exc.status == 404:
                raise FaultInjectionFailed(f"{_describe(planned)} disappeared before the fault") from None
            current = _read(api, planned)
            if current is None:
                raise FaultInjectionFailed(f"{_describe(planned)} disappeared before the fault") from None
            if _is_ours(current, intended, planned, drill_id):
                return current
            unchanged = _rv(current) == _rv(before) and _same_owned(current, before)
            if unchanged and attempt + 1 < _APPLY_ATTEMPTS:
                continue  # a refused write on an object that did not move: the precondition still guards
            raise FaultConflict(
                f"{_describe(planned)} changed since its snapshot (API answered {exc.status}); not faulted"
            ) from None
        after = _read(api, planned)
        if after is None:
            raise FaultInjectionFailed(f"{_describe(planned)} disappeared right after the fault")
        return after
    raise FaultConflict(f"{_describe(planned)}: the fault write was refused {_APPLY_ATTEMPTS} times")


def _is_ours(current: dict[str, Any], intended: dict[str, Any], planned: PlannedFault, drill_id: str) -> bool:
    if planned.object_kind == "Deployment":
        return _same_owned(current, intended)
    return _held_by(current) == drill_id and _matches_applied(current, intended)


# ---------------------------------------------------------------- restore


def _restore_operations(current: dict[str, Any], before: dict[str, Any]) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": _rv(current)},
    ]
    if "spec" in before:
        ops.append({"op": "add", "path": "/spec", "value": copy.deepcopy(before["spec"])})
    elif "spec" in current:
        ops.append({"op": "remove", "path": "/spec"})
    for field in ("labels", "annotations"):
        wanted = (before.get("metadata") or {}).get(field)
        if wanted is not None:
            ops.append({"op": "add", "path": f"/metadata/{field}", "value": copy.deepcopy(wanted)})
        elif field in current["metadata"]:
            ops.append({"op": "remove", "path": f"/metadata/{field}"})
    return ops


def _deployment_restore_decision(current: dict[str, Any], before: dict[str, Any]) -> str | None:
    """None when the deployment is ours to restore; else why not."""
    expected = copy.deepcopy(before)
    expected.setdefault("spec", {})["replicas"] = 0
    if _same_owned(current, expected):
        return None
    return "the deployment changed during the drill (not just our scale to zero)"


def restore_fault(
    api: ApiClient, planned: PlannedFault, before: dict[str, Any], *, drill_id: str
) -> RestoreOutcome:
    """Put the object back to ``before``; restores only what this drill faulted, never someone's edit."""
    for _attempt in range(_RESTORE_ATTEMPTS):
        current = _read(api, planned)
        if current is None:
            return RestoreOutcome("CONFLICT", {}, f"{_describe(planned)} no longer exists; nothing restored")
        if _same_owned(current, before):
            return RestoreOutcome("ALREADY_RESTORED", current, "the object already equals its snapshot")
        if planned.object_kind == "Deployment":
            reason = _deployment_restore_decision(current, before)
            if reason is not None:
                return RestoreOutcome("CONFLICT", current, f"{reason}; left as it is")
            replicas = (before.get("spec") or {}).get("replicas", 1)
            operations = [
                {"op": "test", "path": "/metadata/resourceVersion", "value": _rv(current)},
                {"op": "replace", "path": "/spec/replicas", "value": replicas},
            ]
        else:
            holder = _held_by(current)
            if holder != drill_id:
                held = f"is held by drill {holder}" if holder else "no longer carries this drill's annotation"
                return RestoreOutcome(
                    "CONFLICT", current,
                    f"{_describe(planned)} {held} and differs from the snapshot; left as it is",
                )
            if _annotations(current).get(APPLIED_DIGEST) != _applied_digest(current):
                return RestoreOutcome(
                    "CONFLICT", current,
                    f"{_describe(planned)} was edited during the drill; left for a human to resolve",
                )
            operations = _restore_operations(current, before)
        try:
            _json_patch(api, planned, operations)
        except ApiException as exc:
            if exc.status == 404:
                return RestoreOutcome("CONFLICT", {}, f"{_describe(planned)} was deleted during the restore")
            continue  # 409/422: the object moved; re-read and decide again
        after = _read(api, planned)
        if after is None or not _same_owned(after, before):
            raise RollbackFailed(f"{_describe(planned)} does not equal its snapshot after the restore")
        return RestoreOutcome("RESTORED", after, "restored to the snapshot")
    raise RollbackFailed(f"{_describe(planned)}: the restore write was refused {_RESTORE_ATTEMPTS} times")
