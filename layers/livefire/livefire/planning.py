"""The Plan step: validate, enforce the blast radius, take the leases (the service's and each fault's object's),
record the drill.

Nothing in the mesh is touched here. Any refusal is recorded as a rejected attempt and raised by name, so the
execution fails at once with ``InvalidDrillSpec``, ``GuardrailViolation`` or ``DrillInProgress``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence

from botocore.exceptions import ClientError

from livefire.accounts import check_assumed_roles
from livefire.approval import check_approval_topic, planned_approval
from livefire.artifacts import evidence_prefix
from livefire.clock import now_ms
from livefire.config import Settings
from livefire.contracts import Plan, PlannedFault, PlanRequest, ProbeTarget
from livefire.datachecks.cleanup import CLEANUP_DOCUMENT, cleanup_document, cleanup_fault
from livefire.egress import EgressRefused, check_targets, reach_of
from livefire.errors import DrillInProgress, GuardrailViolation, InvalidDrillSpec
from livefire.faults.write_ahead import write_ahead
from livefire.redaction import redact_url, redact_urls_in_text
from livefire.runtime import Runtime
from livefire.spec import ClusterRef, DrillSpec, Vantage
from livefire.spec.execution import parse_execution_input
from livefire.store import DrillStore

# Steps take a little time (Lambda calls, patches); observing this much longer keeps the recovery window whole.
OBSERVE_SLACK_S = 2.0
# A lease outlives the drill by this much, so a crashed drill's lease frees itself even without the guardian.
LEASE_MARGIN_S = 15 * 60


def service_lease_key(service: str) -> str:
    """The lease every drill of a service takes, observe-only ones too: one live drill per service, in any region
    and on any object (a multi-region fault's drills share it: ``guardrails.multiRegionFault``)."""
    return f"service:{service}"


def planned_faults(spec: DrillSpec, served_by_sandbox: frozenset[str] = frozenset()) -> list[PlannedFault]:
    """The faults the drill starts: a mesh object, an FIS experiment, a webhook; none for an observe-only drill.

    Each fault's lease is on what it acts on: the mesh object, the experiment template, the webhook's inject URL
    (beside the service's lease, ``service_lease_key``). A fault on a sandbox cluster, or a webhook whose inject URL
    the local sandbox serves (``served_by_sandbox``, livefire/egress.py), is marked ``sandbox``."""
    fault = spec.fault
    fault_id = f"{fault.kind}-{fault.region}"
    if fault.kind == "external":
        return []
    if fault.fis is not None:
        template = fault.fis.experiment_template_id
        return [PlannedFault(
            fault_id=fault_id, kind=fault.kind, region=fault.region, object_kind="FisExperiment",
            object_name=template, lease_key=f"fis:{fault.fis.region or fault.region}/{template}",
        )]
    if fault.webhook is not None:
        url = fault.webhook.inject.url
        return [PlannedFault(
            fault_id=fault_id, kind=fault.kind, region=fault.region, object_kind="Webhook", object_name=url,
            lease_key=f"webhook:{url}", reach=reach_of(url, served_by_sandbox),
        )]
    region = spec.region(fault.region)
    assert region is not None and region.cluster is not None and fault.target is not None  # DrillSpec validation
    object_kind, object_name = fault.target_object
    lease_key = f"{region.cluster.key}/{fault.target.namespace}/{object_kind}/{object_name}"
    return [
        PlannedFault(
            fault_id=fault_id, kind=fault.kind, region=fault.region,
            cluster=region.cluster, namespace=fault.target.namespace, object_kind=object_kind,
            object_name=object_name, lease_key=lease_key, reach="sandbox" if region.cluster.sandbox else "real",
        )
    ]


def _cluster_field(spec: DrillSpec, region_name: str) -> str:
    index = next(i for i, region in enumerate(spec.regions) if region.name == region_name)
    return f"regions.{index}.cluster"


def _not_listed(cluster: ClusterRef, listed: Sequence[str]) -> bool:
    return cluster.qualified_name not in listed


def _hint(cluster: ClusterRef, listed: Sequence[str]) -> str:
    eks = cluster.eks_cluster
    return " (an EKS cluster is listed as REGION/NAME)" if eks is not None and eks.name in listed else ""


def check_blast_radius(spec: DrillSpec, faults: list[PlannedFault], settings: Settings) -> None:
    """Refuse any fault outside the deployment's allowed namespaces, outside the spec's allowed clusters, or on an
    EKS cluster the deployment does not list (docs/architecture.md §9); the spec's own allowedNamespaces is checked
    by spec validation.

    Both namespace lists fail closed (empty allows nothing). The deployment's ``AllowedClusters`` names EKS clusters
    as ``REGION/NAME`` and fails closed too: a mesh fault on EKS, live or dry run, needs its cluster listed.
    Sandbox clusters (local mode only) and kubeconfig clusters (the caller's own credentials) are not AWS
    resources: that list does not name them, the spec's ``guardrails.allowedClusters`` does.
    """
    for fault in faults:
        if fault.cluster is None:
            continue  # not a mesh fault: FIS checks its own templates (IAM), a webhook is the user's own endpoint
        if fault.namespace not in settings.allowed_namespaces:
            raise GuardrailViolation(
                f"fault.target.namespace: {fault.namespace!r} is outside this deployment's allowed "
                f"namespaces {list(settings.allowed_namespaces)} (template parameter AllowedNamespaces)"
            )
        cluster, field = fault.cluster, _cluster_field(spec, fault.region)
        allowed_by_spec = spec.guardrails.allowed_clusters
        if allowed_by_spec and _not_listed(cluster, allowed_by_spec):
            raise GuardrailViolation(
                f"{field}: cluster {cluster.qualified_name!r} of region {fault.region} is not in "
                f"guardrails.allowedClusters {list(allowed_by_spec)}{_hint(cluster, allowed_by_spec)}"
            )
        if cluster.eks and _not_listed(cluster, settings.allowed_clusters):
            raise GuardrailViolation(
                f"{field}: EKS cluster {cluster.qualified_name!r} of region {fault.region} is outside this "
                f"deployment's allowed clusters {list(settings.allowed_clusters)}"
                f"{_hint(cluster, settings.allowed_clusters)} (template parameter AllowedClusters, REGION/NAME "
                "entries: empty allows no EKS cluster)"
            )


def check_egress(spec: DrillSpec, settings: Settings) -> None:
    """Refuse a probe, webhook or telemetry URL whose host resolves, now, to an address outside the deployment's egress
    rules (livefire/egress.py). The probes and the webhook check again on every connection."""
    urls = [("entrypoint", spec.entrypoint)]
    urls += [(f"regions.{index}.endpoint", region.endpoint) for index, region in enumerate(spec.regions)]
    if spec.fault.webhook is not None:
        urls += [(f"fault.webhook.{action}.url", call.url)
                 for action, call in (("inject", spec.fault.webhook.inject), ("rollback", spec.fault.webhook.rollback))]
    if spec.telemetry is not None and spec.telemetry.prometheus is not None:
        urls.append(("telemetry.prometheus", spec.telemetry.prometheus))
    try:
        check_targets(urls, settings.egress)
    except EgressRefused as exc:
        raise GuardrailViolation(str(exc)) from None


def check_telemetry(spec: DrillSpec, settings: Settings) -> None:
    """Refuse telemetry the deployment does not allow: Assess's role may query only the TelemetryWorkspaces and read
    only the TelemetrySecrets, so anything else would only ever be INCONCLUSIVE."""
    telemetry = spec.telemetry
    if telemetry is not None and telemetry.amp is not None:
        workspace = f"{telemetry.region}/{telemetry.amp}"
        if workspace not in settings.telemetry_workspaces:
            raise GuardrailViolation(f"telemetry.amp: workspace {workspace!r} is outside this deployment's "
                                     f"{list(settings.telemetry_workspaces)} (template parameter TelemetryWorkspaces, "
                                     "REGION/WORKSPACE_ID entries)")
    secret = telemetry.token_secret if telemetry is not None else None
    if secret is not None and secret not in settings.telemetry_secrets:
        raise GuardrailViolation(f"telemetry.tokenSecret: {secret!r} is not one of this deployment's "
                                 "TelemetrySecrets (template parameter, secret ARNs)")


def redacted(plan: Plan) -> Plan:
    """The plan as it is stored: its targets' query values redacted. The plan the steps pass on keeps them
    (it lives only in the execution, beside the input that carried them)."""
    targets = [target.model_copy(update={"url": redact_url(target.url)}) for target in plan.targets]
    return plan.model_copy(update={"targets": targets})


def probe_targets(spec: DrillSpec, served_by_sandbox: frozenset[str] = frozenset()) -> list[ProbeTarget]:
    """The entrypoint and each region's endpoint, each marked real or served by the local sandbox."""
    targets = [ProbeTarget(name="entrypoint", url=spec.entrypoint, region=None, role="entrypoint",
                           reach=reach_of(spec.entrypoint, served_by_sandbox))]
    targets += [ProbeTarget(name=r.name, url=r.endpoint, region=r.name, role=r.role,
                            reach=reach_of(r.endpoint, served_by_sandbox)) for r in spec.regions]
    return targets


def default_vantages(spec: DrillSpec) -> list[Vantage]:
    if spec.vantages:
        return list(spec.vantages)
    return [Vantage(name="default", region=os.environ.get("AWS_REGION", "us-east-1"))]


def plan_drill(request: PlanRequest, runtime: Runtime) -> Plan:
    store = runtime.store
    try:
        spec, anchor = parse_execution_input(request.execution_input)
        faults = planned_faults(spec, runtime.settings.sandbox_hosts)
        check_blast_radius(spec, faults, runtime.settings)
        check_assumed_roles(spec, runtime.settings.trusted_roles)
        check_egress(spec, runtime.settings)
        check_telemetry(spec, runtime.settings)
        check_approval_topic(spec, runtime.settings)
    except (InvalidDrillSpec, GuardrailViolation) as refusal:
        reason = redact_urls_in_text(f"{type(refusal).__name__}: {refusal}")
        store.record_rejected_attempt(request.drill_id, request.execution_arn, reason)
        raise

    started_at_ms = int(time.time() * 1000)
    prefix = evidence_prefix(spec.metadata.service, request.drill_id)
    plan = Plan(
        drill_id=request.drill_id, execution_arn=request.execution_arn, service=spec.metadata.service,
        pattern=spec.pattern, mode=spec.mode, spec_key=f"{prefix}spec.json", spec_digest=spec.digest(),
        evidence_prefix=prefix, started_at_ms=started_at_ms, vantages=default_vantages(spec),
        targets=probe_targets(spec, runtime.settings.sandbox_hosts), faults=faults,
        baseline_seconds=spec.phases.baseline,
        observe_seconds=spec.observe_seconds + OBSERVE_SLACK_S,
        lead_wait_seconds=math.ceil(spec.phases.lead), fault_wait_seconds=max(1, round(spec.phases.fault)),
        anchor_at_ms=anchor, approval=planned_approval(spec),
    )
    # the leases outlast the longest wait at the go/no-go gate too
    expires_at = int(time.time() + spec.phases.baseline + spec.approval_seconds + plan.observe_seconds + LEASE_MARGIN_S)
    acquired: list[str] = []
    try:
        _take_leases(spec, faults, request, expires_at, store, acquired)
        plan = _record_drill(plan, acquired, runtime)
        _open_marker_cleanup(spec, plan, expires_at, runtime)
        runtime.put_json(plan.spec_key, spec.to_document())  # query values redacted (DrillSpec.to_document)
        runtime.put_json(f"{prefix}plan.json", redacted(plan).to_state())
    except DrillInProgress as busy:
        for key in acquired:
            store.release_lease(key, request.drill_id)
        # a conditional write: the record of the run that holds the id is never overwritten
        store.record_rejected_attempt(request.drill_id, request.execution_arn, f"DrillInProgress: {busy}")
        raise
    except Exception:
        for key in acquired:
            store.release_lease(key, request.drill_id)
        raise
    return plan


def _take_leases(spec: DrillSpec, faults: list[PlannedFault], request: PlanRequest, expires_at: int,
                 store: DrillStore, acquired: list[str]) -> None:
    """The service's lease first (shared only by the drills of a multi-region fault), then each fault's object;
    ``acquired`` lists what was taken, so a refusal part-way releases exactly that. DrillInProgress names the
    holder."""
    service = service_lease_key(spec.metadata.service)
    if spec.guardrails.multi_region_fault:
        store.join_shared_lease(service, request.drill_id, expires_at, request.execution_arn)
    else:
        store.acquire_lease(service, request.drill_id, expires_at, request.execution_arn)
    acquired.append(service)
    for fault in faults:
        store.acquire_lease(fault.lease_key, request.drill_id, expires_at, request.execution_arn)
        acquired.append(fault.lease_key)


def _open_marker_cleanup(spec: DrillSpec, plan: Plan, expires_at: int, runtime: Runtime) -> None:
    """Before any data-check marker exists, the record that makes every ending delete them (the one thing Plan
    writes for a rollback to undo: livefire/datachecks/cleanup.py)."""
    planned = cleanup_fault(spec, plan.drill_id)
    if planned is not None:
        write_ahead(runtime.store, runtime, now_ms, plan, planned, cleanup_document(spec, plan.drill_id),
                    CLEANUP_DOCUMENT, expires_at)


def _record_drill(plan: Plan, lease_keys: list[str], runtime: Runtime) -> Plan:
    """Write the drill record; a retried Plan of the same execution finds its own record and reuses it."""
    store = runtime.store
    try:
        store.create_drill(
            drill_id=plan.drill_id, execution_arn=plan.execution_arn, service=plan.service,
            pattern=plan.pattern, mode=plan.mode, spec_digest=plan.spec_digest,
            started_at_ms=plan.started_at_ms, lease_keys=lease_keys,
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        existing = store.get_drill(plan.drill_id)
        ours = (plan.execution_arn, plan.spec_digest, "RUNNING")
        if existing is None or (existing.execution_arn, existing.spec_digest, existing.status) != ours:
            raise DrillInProgress(f"drill {plan.drill_id} already has a record of another run") from None
        return plan.model_copy(update={"started_at_ms": existing.started_at_ms})
    return plan
