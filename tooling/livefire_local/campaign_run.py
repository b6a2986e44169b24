"""`livefire campaign run DIR`: a whole campaign on this machine.

The campaign state machine (statemachines/campaign.asl.json) runs under moto, as the drill state machine does for
`livefire run`, in the same local stack (``local_stack``), with moto's missing ``startExecution.sync:2`` bridged
(``sfn_bridge``). DIR holds the drill specs (``*.yaml``, ``*.yml``, ``*.json``, by name) and optionally
``campaign.yaml`` (``rules:`` as the campaign input takes them, and ``specs:``: the spec files, in order); the
sandbox seeds are in ``DIR/mesh``. Each service gets one sandbox mesh, shared by its drills (they never run at
once): its drills must name the same sandbox regions and entrypoint. The specs are uploaded under
``campaign-specs/<campaign>/``; afterwards each drill's evidence is copied to ``<evidence>/<drill id>/`` and the
campaign's to ``<evidence>/campaigns/<campaign>/`` (docs/campaigns.md).
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from livefire.campaign.model import INPUT_PREFIX, campaign_prefix
from livefire.egress import LOCAL_RANGES, RANGES_ENV, EgressPolicy
from livefire.errors import InvalidCampaign
from livefire.spec import DrillSpec, read_spec
from livefire.store import DrillStore
from livefire_local import sfn_bridge
from livefire_local.aws import LocalStack, local_stack
from livefire_local.guardian_rule import deliver_status_change
from livefire_local.local_chain import LocalChain
from livefire_local.runner import STEP_ALLOWANCE_S, Progress, copy_evidence
from livefire_local.sandbox.loopback import LOOPBACK
from livefire_local.sandbox.mesh import ENV_CLUSTERS, ENV_HOSTS, ENV_RESOLVE, ENV_TOKEN, SandboxMesh, sandbox_clusters

CAMPAIGN_FILE = "campaign.yaml"
SPEC_SUFFIXES = (".yaml", ".yml", ".json")
CAMPAIGN_MACHINE = "CampaignStateMachine"


@dataclass(frozen=True)
class CampaignFolder:
    """A campaign on disk: its rules and its specs, in order."""

    rules: dict[str, Any]
    specs: list[tuple[Path, Any, DrillSpec]]

    @classmethod
    def read(cls, folder: Path) -> CampaignFolder:
        """InvalidCampaign names the file and the problem; a spec's own problem is InvalidDrillSpec's line."""
        if not folder.is_dir():
            raise InvalidCampaign(f"{folder}: not a folder")
        settings: dict[str, Any] = {}
        if (folder / CAMPAIGN_FILE).is_file():
            loaded = yaml.safe_load((folder / CAMPAIGN_FILE).read_text(encoding="utf-8")) or {}
            if not isinstance(loaded, dict) or set(loaded) - {"rules", "specs"}:
                raise InvalidCampaign(f"{folder / CAMPAIGN_FILE}: holds rules: and specs: only")
            settings = loaded
        names = settings.get("specs") or sorted(p.name for p in folder.iterdir()
                                                if p.suffix in SPEC_SUFFIXES and p.name != CAMPAIGN_FILE)
        if not names:
            raise InvalidCampaign(f"{folder}: no drill spec (*.yaml, *.yml, *.json)")
        specs = [(folder / name, *read_spec(folder / name)) for name in names]
        gated = [path.name for path, _document, spec in specs if spec.approval is not None and spec.approval.required]
        if gated:  # on AWS each gate is answered with `livefire approve`; here nobody would answer it
            raise InvalidCampaign(f"{gated[0]}: approval.required: a local campaign's drills cannot wait for a "
                                  "go/no-go gate (set approval.required: false, or run the campaign on a stack)")
        return cls(dict(settings.get("rules") or {}), specs)


def _footprint(spec: DrillSpec) -> tuple[Any, ...]:
    """What a service's one sandbox mesh serves: its sandbox clusters, region endpoints and entrypoint."""
    return (sandbox_clusters(spec), [r.endpoint for r in spec.regions], spec.entrypoint)


def meshes_per_service(specs: list[tuple[Path, Any, DrillSpec]], mesh_dir: Path) -> list[SandboxMesh]:
    """One sandbox mesh per service, from its first spec; every drill of the service must fit it, and no two
    services may name one sandbox cluster (ValueError naming the spec)."""
    first: dict[str, tuple[Path, DrillSpec]] = {}
    for path, _document, spec in specs:
        service = spec.metadata.service
        if service not in first:
            first[service] = (path, spec)
        elif _footprint(spec) != _footprint(first[service][1]):
            raise ValueError(f"{path.name}: its sandbox regions or entrypoint differ from {first[service][0].name}'s "
                             f"(the drills of service {service} share one sandbox mesh)")
    owner: dict[str, str] = {}
    for service, (path, spec) in first.items():
        for cluster in sandbox_clusters(spec).values():
            if owner.setdefault(cluster, service) != service:
                raise ValueError(f"{path.name}: sandbox cluster {cluster} is also service {owner[cluster]}'s: "
                                 "give each service its own sandbox clusters")
    meshes = [SandboxMesh.from_spec(spec, mesh_dir) for _path, spec in first.values()]
    token = secrets.token_urlsafe(32)
    for mesh in meshes:
        mesh.token = token  # one token, as the functions are told one
    return meshes


def merged_environment(meshes: list[SandboxMesh]) -> dict[str, str]:
    """The functions' view of every service's sandbox at once: clusters, DNS and sandbox hosts, merged."""
    clusters: dict[str, str] = {}
    resolve: dict[str, str] = {}
    hosts: set[str] = set()
    token = ""
    for mesh in meshes:
        env = mesh.environment()
        clusters.update(json.loads(env[ENV_CLUSTERS]))
        resolve.update(json.loads(env[ENV_RESOLVE]))
        hosts.update(json.loads(env[ENV_HOSTS]))
        token = env[ENV_TOKEN]
    return {ENV_CLUSTERS: json.dumps(clusters, sort_keys=True), ENV_TOKEN: token,
            ENV_RESOLVE: json.dumps(resolve, sort_keys=True), ENV_HOSTS: json.dumps(sorted(hosts))}


@contextmanager
def campaign_session(campaign: CampaignFolder, mesh_dir: Path, root: Path, *,
                     allowed_ranges: str = LOCAL_RANGES) -> Iterator[tuple[list[SandboxMesh], LocalStack]]:
    """Every service's sandbox mesh and the local stack wired to all of them."""
    meshes = meshes_per_service(campaign.specs, mesh_dir)
    if any(m.regional or m.serves_entrypoint or m.serves_webhook for m in meshes) and \
            EgressPolicy.from_ranges(allowed_ranges).refusal(LOOPBACK) is not None:
        raise ValueError(f"--allowed-ranges {allowed_ranges!r} refuses loopback, where the sandbox serves these "
                         "drills' .sandbox hosts")
    sfn_bridge.install()
    with ExitStack() as stack:
        for mesh in meshes:
            stack.enter_context(mesh)
        env = {**merged_environment(meshes), "POWERTOOLS_LOG_LEVEL": "WARNING",
               "POWERTOOLS_METRICS_DISABLED": "true", RANGES_ENV: allowed_ranges}
        local = stack.enter_context(local_stack(root, extra_env=env))
        for mesh in meshes:
            stack.enter_context(mesh.data_checks.aws())
        yield meshes, local


@dataclass
class CampaignRun:
    campaign_id: str
    status: str
    error: str | None
    manifest: dict[str, Any] | None  # the campaign's manifest, when it was sealed
    results: list[dict[str, Any]]  # every drill's DrillResult
    evidence_dir: Path | None  # <evidence>/campaigns/<id>, when the campaign was sealed
    wall_seconds: float


def new_campaign_id(folder: Path) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in folder.resolve().name.lower())[:30] or "campaign"
    return f"{name}-{stamp}-{secrets.token_hex(2)}"


def upload_specs(stack: LocalStack, campaign_id: str, campaign: CampaignFolder) -> str:
    """The spec files under campaign-specs/<campaign>/, named so that a listing keeps their order."""
    prefix = f"{INPUT_PREFIX}{campaign_id}/"
    for index, (path, _document, _spec) in enumerate(campaign.specs):
        stack.s3.put_object(Bucket=stack.bucket, Key=f"{prefix}{index:04d}-{path.name}", Body=path.read_bytes())
    return prefix


def _deadline_s(campaign: CampaignFolder) -> float:
    """Every drill one after the other, each with the runner's step allowance: a bound, never the expected time."""
    return sum(spec.phases.baseline + spec.observe_seconds + STEP_ALLOWANCE_S for _p, _d, spec in campaign.specs)


def follow_campaign(stack: LocalStack, execution_arn: str, deadline_s: float, progress: Progress,
                    *, poll_s: float = 0.5) -> dict[str, Any]:
    """Poll the campaign until it ends; each child drill that ends gets its status change delivered to the
    guardian, as the EventBridge rule does in the cloud."""
    drills = stack.state_machines["DrillStateMachine"]
    delivered: set[str] = set()
    give_up = time.monotonic() + deadline_s
    while True:
        execution: dict[str, Any] = stack.sfn.describe_execution(executionArn=execution_arn)
        for child in stack.sfn.list_executions(stateMachineArn=drills)["executions"]:
            if child["status"] != "RUNNING" and child["executionArn"] not in delivered:
                delivered.add(child["executionArn"])
                progress.line(f"drill {child['name']}: {child['status']}")
                deliver_status_change(stack, child["executionArn"])
        if execution["status"] != "RUNNING":
            return execution
        if time.monotonic() > give_up:
            stack.sfn.stop_execution(executionArn=execution_arn, error="LocalDeadline", cause="runner gave up")
            raise TimeoutError(f"the campaign did not end within {deadline_s:.0f}s")
        time.sleep(poll_s)


def _results(stack: LocalStack, campaign_id: str) -> list[dict[str, Any]]:
    prefix = campaign_prefix(campaign_id) + "results/"
    listed = stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=prefix).get("Contents", [])
    found = [json.loads(stack.s3.get_object(Bucket=stack.bucket, Key=o["Key"])["Body"].read()) for o in listed]
    return sorted(found, key=lambda r: int(r["index"]))


def _keep_evidence(stack: LocalStack, campaign_id: str, results: list[dict[str, Any]],
                   evidence_root: Path) -> Path | None:
    """Copy each drill's evidence and the campaign's, and append each sealed drill to its service's local chain
    (in the order the drills ran: those of one service never overlap)."""
    store = DrillStore(stack.dynamodb.Table(stack.table))
    chain = LocalChain(evidence_root)
    for result in sorted(results, key=lambda r: r.get("startedAtMs") or 0):
        if result.get("evidencePrefix"):
            copy_evidence(stack, result["evidencePrefix"], evidence_root / result["drillId"])
            chain.save(store, result["drillId"])
    prefix = campaign_prefix(campaign_id)
    if not stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=prefix + "manifest.json").get("KeyCount"):
        return None
    return copy_evidence(stack, prefix, evidence_root / "campaigns" / campaign_id)


def run_campaign(folder: Path, *, root: Path, evidence_root: Path, out: TextIO = sys.stdout,
                 campaign_id: str | None = None, allowed_ranges: str = LOCAL_RANGES,
                 after_end: Callable[[LocalStack], None] | None = None) -> CampaignRun:
    """Run the campaign in ``folder`` end to end; InvalidCampaign / InvalidDrillSpec before anything starts.
    ``after_end`` sees the local stack once the campaign ended, before it goes."""
    campaign = CampaignFolder.read(folder)
    campaign_id = campaign_id or new_campaign_id(folder)
    progress = Progress(out)
    started = time.monotonic()
    progress.line(f"campaign {campaign_id}: {len(campaign.specs)} drills, rules {json.dumps(campaign.rules)}")
    with campaign_session(campaign, folder / "mesh", root, allowed_ranges=allowed_ranges) as (_meshes, stack):
        store = DrillStore(stack.dynamodb.Table(stack.table))
        for service in sorted({spec.metadata.service for _p, _d, spec in campaign.specs}):
            LocalChain(evidence_root).seed(store, service)
        prefix = upload_specs(stack, campaign_id, campaign)
        execution_arn = stack.sfn.start_execution(
            stateMachineArn=stack.state_machines[CAMPAIGN_MACHINE], name=campaign_id,
            input=json.dumps({"specs": {"prefix": prefix}, "rules": campaign.rules}))["executionArn"]
        execution = follow_campaign(stack, execution_arn, _deadline_s(campaign), progress)
        results = _results(stack, campaign_id)
        evidence_dir = _keep_evidence(stack, campaign_id, results, evidence_root)
        if after_end is not None:
            after_end(stack)
    error = None
    if execution["status"] != "SUCCEEDED":
        error = f"{execution.get('error', '')}: {execution.get('cause', '')}".strip(": ")
    manifest = json.loads((evidence_dir / "manifest.json").read_bytes()) if evidence_dir else None
    return CampaignRun(campaign_id, execution["status"], error, manifest, results, evidence_dir,
                       time.monotonic() - started)
