"""The JSON patches of the mesh faults, computed from a snapshot: no API call here (docs/architecture.md §5).

Kinds: http-abort / http-delay (``spec.http[i].fault`` of the matched routes), traffic-shift (``weight`` of the
matched routes' destinations, by subset; each route's weights must still add up to 100), circuit-break (the
DestinationRule's ``trafficPolicy.connectionPool`` limits, other pool settings kept) and scale-to-zero
(``spec.replicas`` of the ``deployments/{name}/scale`` subresource). Faulted Istio objects carry
``livefire.dev/drill-id``, ``livefire.dev/expires-at`` and ``livefire.dev/applied-digest`` (the digest of what the
drill wrote), so a restore can tell its own fault from someone else's edit. The object an Istio patch leads to is
computed by applying the patch (the same RFC 6902 code the sandbox API server runs), not rebuilt by hand.
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from livefire.contracts import PlannedFault
from livefire.errors import FaultInjectionFailed
from livefire.mesh.jsonpatch import JsonPatchError, escape, json_patch
from livefire.spec import Fault

DRILL_ID = "livefire.dev/drill-id"
EXPIRES_AT = "livefire.dev/expires-at"
APPLIED_DIGEST = "livefire.dev/applied-digest"
OWNERSHIP_ANNOTATIONS = (DRILL_ID, EXPIRES_AT, APPLIED_DIGEST)

Operations = list[dict[str, Any]]

OBJECT_KIND = {
    "http-abort": "VirtualService",
    "http-delay": "VirtualService",
    "traffic-shift": "VirtualService",
    "circuit-break": "DestinationRule",
    "scale-to-zero": "Deployment",
}


def describe(planned: PlannedFault) -> str:
    cluster = planned.cluster.key if planned.cluster is not None else "no cluster"
    return f"{planned.object_kind} {planned.namespace}/{planned.object_name} on {cluster}"


# ---------------------------------------------------------------- what a user owns in an object


def owned_content(obj: dict[str, Any]) -> dict[str, Any]:
    """What a user owns in an object: spec, labels, annotations (server-managed fields left out)."""
    meta = obj.get("metadata") or {}
    return {"labels": meta.get("labels") or {}, "annotations": meta.get("annotations") or {}, "spec": obj.get("spec")}


def json_number(value: float) -> float | int:
    """JSON has one number type: 100.0 and 100 are the same value (a Go API server answers 100)."""
    return int(value) if float(value).is_integer() else value


def _normalized(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalized(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    if isinstance(value, float):
        return json_number(value)
    return value


def _canonical_json(value: Any) -> bytes:
    return json.dumps(_normalized(value), sort_keys=True, separators=(",", ":")).encode()


def canonical(obj: dict[str, Any]) -> bytes:
    """Byte-exact, order-independent rendering of ``owned_content``."""
    return _canonical_json(owned_content(obj))


def same_owned(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return canonical(a) == canonical(b)


def annotations_of(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def held_by(obj: dict[str, Any]) -> str | None:
    """The drill whose fault the object carries, if any."""
    return annotations_of(obj).get(DRILL_ID)


def applied_digest(obj: dict[str, Any]) -> str:
    """Digest of an object's owned content without livefire's own annotations."""
    content = owned_content(obj)
    content["annotations"] = {k: v for k, v in content["annotations"].items() if k not in OWNERSHIP_ANNOTATIONS}
    return hashlib.sha256(_canonical_json(content)).hexdigest()


def edited_since_applied(current: dict[str, Any]) -> bool:
    """Whether someone changed an object after the drill faulted it (its content no longer matches the digest)."""
    return annotations_of(current).get(APPLIED_DIGEST) != applied_digest(current)


def matches_applied(current: dict[str, Any], intended: dict[str, Any]) -> bool:
    """Whether ``current`` is exactly the faulted state (the expiry stamp may differ between retries)."""

    def without_expiry(obj: dict[str, Any]) -> bytes:
        content = owned_content(obj)
        content["annotations"] = {k: v for k, v in content["annotations"].items() if k != EXPIRES_AT}
        return _canonical_json(content)

    return without_expiry(current) == without_expiry(intended)


def resource_version(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["resourceVersion"])


def format_istio_duration(seconds: float) -> str:
    """Seconds as an Istio duration string: 1.5 -> "1.5s", 0.25 -> "0.25s", 2 -> "2s"."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


# ---------------------------------------------------------------- the fault of each kind


def _http_fault(fault: Fault) -> dict[str, Any]:
    if fault.kind == "http-abort" and fault.abort is not None:
        return {"abort": {"httpStatus": fault.abort.http_status,
                          "percentage": {"value": json_number(fault.abort.percent)}}}
    if fault.kind == "http-delay" and fault.delay is not None:
        return {"delay": {"fixedDelay": format_istio_duration(fault.delay.fixed_delay),
                          "percentage": {"value": json_number(fault.delay.percent)}}}
    raise FaultInjectionFailed(f"fault kind {fault.kind} has no http fault payload")


def _matched_routes(obj: dict[str, Any], fault: Fault, planned: PlannedFault) -> list[int]:
    routes = (obj.get("spec") or {}).get("http") or []
    wanted = fault.target.route if fault.target is not None else None
    matched = [i for i, route in enumerate(routes) if wanted is None or route.get("name") == wanted]
    if not matched:
        which = f"http route named {wanted!r}" if wanted else "http route"
        raise FaultInjectionFailed(f"{describe(planned)} has no {which}")
    return matched


def _route_weight(destinations: list[dict[str, Any]], index: int) -> int:
    """Istio's effective weight: unset is 100 for a lone destination and 0 beside others."""
    weight = destinations[index].get("weight")
    if weight is None:
        return 100 if len(destinations) == 1 else 0
    return int(weight)


def _shift_operations(before: dict[str, Any], planned: PlannedFault, fault: Fault) -> Operations:
    weights = fault.weights or {}
    ops: Operations = []
    for index in _matched_routes(before, fault, planned):
        route = before["spec"]["http"][index]
        label = f"http route {route.get('name') or index}"
        destinations: list[dict[str, Any]] = copy.deepcopy(route.get("route") or [])
        subsets = [(d.get("destination") or {}).get("subset") for d in destinations]
        missing = sorted(set(weights) - set(subsets))
        if missing:
            raise FaultInjectionFailed(f"{describe(planned)}: {label} has no destination with subset "
                                       f"{', '.join(missing)}")
        for position, subset in enumerate(subsets):
            if subset in weights:
                destinations[position]["weight"] = weights[subset]
                ops.append({"op": "add", "path": f"/spec/http/{index}/route/{position}/weight",
                            "value": weights[subset]})
        total = sum(_route_weight(destinations, i) for i in range(len(destinations)))
        if total != 100:
            raise FaultInjectionFailed(f"{describe(planned)}: the weights of {label} would add up to {total}, "
                                       "not 100 (name every destination that keeps a weight)")
    return ops


def _squeeze_operations(before: dict[str, Any], planned: PlannedFault, fault: Fault) -> Operations:
    spec = before.get("spec") or {}
    if "host" not in spec:
        raise FaultInjectionFailed(f"{describe(planned)} has no spec.host")
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
        return [{"op": "add", "path": "/spec/trafficPolicy", "value": {"connectionPool": pool}}]
    return [{"op": "add", "path": "/spec/trafficPolicy/connectionPool", "value": pool}]


def _spec_operations(before: dict[str, Any], planned: PlannedFault, fault: Fault) -> Operations:
    """The JSON patch ops that fault ``before``'s spec."""
    if planned.object_kind != OBJECT_KIND[fault.kind]:
        raise FaultInjectionFailed(f"{fault.kind} needs a {OBJECT_KIND[fault.kind]}, not {planned.object_kind}")
    if fault.kind in ("http-abort", "http-delay"):
        payload = _http_fault(fault)
        return [{"op": "add", "path": f"/spec/http/{index}/fault", "value": copy.deepcopy(payload)}
                for index in _matched_routes(before, fault, planned)]
    if fault.kind == "traffic-shift":
        return _shift_operations(before, planned, fault)
    if fault.kind == "circuit-break":
        return _squeeze_operations(before, planned, fault)
    return [{"op": "replace", "path": "/spec/replicas", "value": 0}]


def _annotation_operations(obj: dict[str, Any], values: dict[str, str]) -> Operations:
    """Ops that set annotations, creating the map when the object has none."""
    if not annotations_of(obj):
        return [{"op": "add", "path": "/metadata/annotations", "value": dict(values)}]
    return [{"op": "add", "path": f"/metadata/annotations/{escape(key)}", "value": value}
            for key, value in values.items()]


def _patched(obj: dict[str, Any], operations: Operations, planned: PlannedFault) -> dict[str, Any]:
    try:
        patched: dict[str, Any] = json_patch(obj, operations)
    except JsonPatchError as exc:
        raise FaultInjectionFailed(f"{describe(planned)}: the fault does not apply to the snapshot ({exc})") from None
    return patched


def scaled_to_zero(before: dict[str, Any]) -> dict[str, Any]:
    """The deployment a scale-to-zero leads to. Its patch goes to the ``scale`` subresource, whose spec always
    has ``replicas`` (the deployment's own spec may leave it unset), so this one is not computed by patching."""
    after = copy.deepcopy(before)
    after.setdefault("spec", {})["replicas"] = 0
    return after


def fault_patch(before: dict[str, Any], planned: PlannedFault, fault: Fault, *, drill_id: str,
                expires_at: datetime) -> tuple[Operations, dict[str, Any]]:
    """The JSON patch that faults the object ``before`` snapshots (its first op tests the resourceVersion), and
    the object it leads to. Raises FaultInjectionFailed when the fault does not fit the object."""
    precondition = {"op": "test", "path": "/metadata/resourceVersion", "value": resource_version(before)}
    spec_ops = _spec_operations(before, planned, fault)
    if planned.object_kind == "Deployment":  # the scale subresource carries no annotations
        return [precondition, *spec_ops], scaled_to_zero(before)
    faulted = _patched(before, spec_ops, planned)
    stamp = expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ownership = {DRILL_ID: drill_id, EXPIRES_AT: stamp, APPLIED_DIGEST: applied_digest(faulted)}
    annotation_ops = _annotation_operations(before, ownership)
    return [precondition, *spec_ops, *annotation_ops], _patched(faulted, annotation_ops, planned)


# ---------------------------------------------------------------- the restore


def restore_patch(current: dict[str, Any], before: dict[str, Any], planned: PlannedFault) -> Operations:
    """The JSON patch that puts ``before`` back over ``current`` (spec, labels and annotations, or for a deployment
    its replica count), guarded by ``current``'s resourceVersion."""
    ops: Operations = [{"op": "test", "path": "/metadata/resourceVersion", "value": resource_version(current)}]
    if planned.object_kind == "Deployment":
        replicas = (before.get("spec") or {}).get("replicas", 1)
        return [*ops, {"op": "replace", "path": "/spec/replicas", "value": replicas}]
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


def differences(current: dict[str, Any], before: dict[str, Any]) -> list[str]:
    """Which owned parts of ``current`` differ from the snapshot (``spec.http``, ``metadata.labels`` …), livefire's
    own annotations left out: what a person must look at before restoring by hand."""
    now, then = owned_content(current), owned_content(before)
    found: list[str] = []
    for field in ("labels", "annotations"):
        mine = {k: v for k, v in now[field].items() if k not in OWNERSHIP_ANNOTATIONS}
        if _canonical_json(mine) != _canonical_json(then[field]):
            found.append(f"metadata.{field}")
    spec_now, spec_then = now["spec"] or {}, then["spec"] or {}
    for key in sorted(set(spec_now) | set(spec_then)):
        if _canonical_json(spec_now.get(key)) != _canonical_json(spec_then.get(key)):
            found.append(f"spec.{key}")
    return found
