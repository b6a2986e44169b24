"""A read-only audit of the mesh settings a failover depends on (DestinationRule, PeerAuthentication)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes.client import ApiClient, CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, ConfigDict
from urllib3.exceptions import HTTPError

from livefire.errors import MeshAccessError

REQUEST_TIMEOUT = (5.0, 20.0)
DEFAULT_ROOT_NAMESPACE = "istio-system"


class PostureFinding(BaseModel):
    model_config = ConfigDict(frozen=True)

    check: str
    ok: bool
    detail: str
    settings: dict[str, Any] = {}


def _list(api: ApiClient, group: str, namespace: str, plural: str) -> list[dict[str, Any]]:
    try:
        listed = CustomObjectsApi(api).list_namespaced_custom_object(
            group, "v1", namespace, plural, _request_timeout=REQUEST_TIMEOUT
        )
    except ApiException as exc:
        raise MeshAccessError(f"cannot list {plural} in {namespace}: API answered {exc.status}") from None
    except HTTPError as exc:
        raise MeshAccessError(f"cannot list {plural} in {namespace}: {type(exc).__name__}") from None
    items = listed.get("items") if isinstance(listed, dict) else None
    return [item for item in items or [] if isinstance(item, dict)]


def _short_host(name: str, namespace: str) -> str:
    """``payments``, ``payments.payments`` and ``payments.payments.svc.cluster.local`` are one service."""
    for suffix in (f".{namespace}.svc.cluster.local", f".{namespace}.svc", f".{namespace}"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def _host_matches(rule_host: str, host: str, namespace: str) -> bool:
    return _short_host(rule_host, namespace) == _short_host(host, namespace)


def _destination_rule_findings(rule: dict[str, Any] | None, namespace: str, host: str) -> list[PostureFinding]:
    if rule is None:
        return [
            PostureFinding(check="destination-rule", ok=False, detail=f"no DestinationRule for {host} in {namespace}"),
            PostureFinding(check="outlier-detection", ok=False, detail="no DestinationRule, so no outlier detection"),
            PostureFinding(check="locality-failover", ok=False, detail="no DestinationRule, so no locality failover"),
        ]
    name = rule["metadata"]["name"]
    policy = (rule.get("spec") or {}).get("trafficPolicy") or {}
    outlier = policy.get("outlierDetection")
    locality = ((policy.get("loadBalancer") or {}).get("localityLbSetting")) or {}
    failover = locality.get("failover") or []
    priority = locality.get("failoverPriority") or []
    findings = [PostureFinding(check="destination-rule", ok=True, detail=f"DestinationRule {namespace}/{name}",
                               settings={"name": name, "host": (rule.get("spec") or {}).get("host")})]
    if outlier:
        settings = ", ".join(f"{k}={v}" for k, v in sorted(outlier.items()))
        findings.append(PostureFinding(check="outlier-detection", ok=True, detail=settings, settings=dict(outlier)))
    else:
        findings.append(
            PostureFinding(
                check="outlier-detection", ok=False,
                detail=f"{name} has no trafficPolicy.outlierDetection: unhealthy endpoints are never ejected",
            )
        )
    if locality.get("enabled") is False:
        findings.append(PostureFinding(check="locality-failover", ok=False, detail="localityLbSetting is disabled"))
    elif not (failover or priority):
        findings.append(
            PostureFinding(check="locality-failover", ok=False, detail=f"{name} configures no locality failover")
        )
    elif not outlier:
        findings.append(
            PostureFinding(
                check="locality-failover", ok=False,
                detail="locality failover is configured but does nothing without outlierDetection",
            )
        )
    else:
        routes = ", ".join(f"{f.get('from')}->{f.get('to')}" for f in failover) or f"priority {priority}"
        findings.append(PostureFinding(check="locality-failover", ok=True, detail=routes))
    return findings


def _selects(policy: dict[str, Any], labels: Mapping[str, str]) -> bool:
    match = ((policy.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return bool(match) and all(labels.get(key) == value for key, value in match.items())


def _oldest(policies: list[dict[str, Any]]) -> dict[str, Any]:
    """Istio applies the oldest of several policies at one level."""
    return min(policies, key=lambda p: (str(p["metadata"].get("creationTimestamp") or ""), p["metadata"]["name"]))


def mtls_finding(
    namespace_policies: list[dict[str, Any]],
    root_policies: list[dict[str, Any]],
    namespace: str,
    root_namespace: str,
    workload_labels: Mapping[str, str],
) -> PostureFinding:
    """STRICT mTLS as Istio resolves PeerAuthentication: a policy selecting the workload, else the namespace-wide
    policy, else the mesh-wide one in the root namespace; a level whose mode is UNSET inherits from the next one,
    and where nothing decides Istio's default is PERMISSIVE."""
    levels = [
        ("workload", namespace, [p for p in namespace_policies if _selects(p, workload_labels)]),
        ("namespace", namespace, [p for p in namespace_policies if not (p.get("spec") or {}).get("selector")]),
    ]
    if root_namespace != namespace:
        levels.append(
            ("mesh-wide", root_namespace, [p for p in root_policies if not (p.get("spec") or {}).get("selector")])
        )
    seen: list[str] = []
    for level, where, policies in levels:
        if not policies:
            continue
        policy = _oldest(policies)
        mode = ((policy.get("spec") or {}).get("mtls") or {}).get("mode") or "UNSET"
        seen.append(f"{level} {where}/{policy['metadata']['name']}: {mode}")
        if mode != "UNSET":
            return PostureFinding(check="mtls-strict", ok=mode == "STRICT", detail=" over ".join(reversed(seen)))
    inherited = f" ({', '.join(seen)} inherit)" if seen else ""
    return PostureFinding(
        check="mtls-strict", ok=False,
        detail=f"no PeerAuthentication decides for {namespace} or mesh-wide in {root_namespace}{inherited}: "
        "Istio's default is PERMISSIVE",
    )


def audit_posture(
    api: ApiClient, namespace: str, host: str, *, root_namespace: str = DEFAULT_ROOT_NAMESPACE,
    workload_labels: Mapping[str, str] | None = None,
) -> list[PostureFinding]:
    """Findings on outlier detection, locality failover and STRICT mTLS for ``host`` in ``namespace``. The
    workload's labels default to ``app: <service>`` (Istio's convention for the service a pod serves)."""
    rules = [
        r for r in _list(api, "networking.istio.io", namespace, "destinationrules")
        if _host_matches(str((r.get("spec") or {}).get("host", "")), host, namespace)
    ]
    findings = _destination_rule_findings(rules[0] if rules else None, namespace, host)
    policies = _list(api, "security.istio.io", namespace, "peerauthentications")
    root = policies if root_namespace == namespace else _list(api, "security.istio.io", root_namespace,
                                                               "peerauthentications")
    labels = workload_labels if workload_labels is not None else {"app": _short_host(host, namespace)}
    findings.append(mtls_finding(policies, root, namespace, root_namespace, labels))
    return findings
