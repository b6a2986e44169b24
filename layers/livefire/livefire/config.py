"""Deployment settings, read once per container from the function's environment (see template.yaml)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from livefire.egress import EgressPolicy, current_policy, sandbox_hosts

PROBE_CHUNK_ENV = "LIVEFIRE_PROBE_CHUNK_SECONDS"
# The probe function's timeout is 900 s, and an invocation lives about two chunks: it is started while the
# previous chunk probes and waits for its turn (livefire/probing/relay.py); the rest leaves room for the probes in
# flight (30 s at most) and the last sample chunk's write (docs/architecture.md §6).
DEFAULT_PROBE_CHUNK_S = 420.0


def probe_chunk_seconds(environ: Mapping[str, str] = os.environ) -> float:
    """How long one probe invocation probes before the window goes on in the next (``LIVEFIRE_PROBE_CHUNK_SECONDS``;
    read at each invocation, so tests and the local runner can shorten it)."""
    raw = environ.get(PROBE_CHUNK_ENV, "").strip()
    if not raw:
        return DEFAULT_PROBE_CHUNK_S
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{PROBE_CHUNK_ENV} must be a number of seconds (got {raw!r})") from None
    if not 1.0 <= value <= DEFAULT_PROBE_CHUNK_S:
        raise ValueError(f"{PROBE_CHUNK_ENV} must be between 1 and {DEFAULT_PROBE_CHUNK_S:g} seconds (got {raw})")
    return value


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    bucket: str
    table: str
    event_bus: str
    allowed_namespaces: tuple[str, ...]
    # EKS clusters as REGION/NAME (template parameter AllowedClusters; empty: no EKS cluster, livefire/planning.py).
    allowed_clusters: tuple[str, ...]
    # Where probes and webhooks may connect (template parameter AllowedTargetRanges, livefire/egress.py).
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    # The host:ports the local runner's sandbox serves (LIVEFIRE_SANDBOX_HOSTS; none on AWS, livefire/egress.py).
    sandbox_hosts: frozenset[str] = frozenset()
    # The KMS key that signs manifests (template EvidenceSigningKey; set on the Evidence function only).
    signing_key_id: str = ""
    # What a drill's telemetry may use: AMP workspaces as REGION/ID and token secret ARNs (template parameters
    # TelemetryWorkspaces and TelemetrySecrets; Assess's role may use no other, livefire/planning.py refuses others).
    telemetry_workspaces: tuple[str, ...] = ()
    telemetry_secrets: tuple[str, ...] = ()
    # Roles in other accounts a cluster may be reached through (template parameter TrustedRoleArns,
    # livefire/accounts.py); empty: every cluster is in this account.
    trusted_roles: tuple[str, ...] = ()
    # SNS topics a go/no-go gate may announce on (template parameter ApprovalTopicArns; livefire/approval.py).
    approval_topics: tuple[str, ...] = ()

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            bucket=os.environ.get("EVIDENCE_BUCKET", ""),
            table=os.environ.get("DRILL_TABLE", ""),
            event_bus=os.environ.get("EVENT_BUS_NAME", "default"),
            allowed_namespaces=_csv(os.environ.get("ALLOWED_NAMESPACES")),
            allowed_clusters=_csv(os.environ.get("ALLOWED_CLUSTERS")),
            egress=current_policy(),
            sandbox_hosts=sandbox_hosts(),
            signing_key_id=os.environ.get("SIGNING_KEY_ID", ""),
            telemetry_workspaces=_csv(os.environ.get("TELEMETRY_WORKSPACES")),
            telemetry_secrets=_csv(os.environ.get("TELEMETRY_SECRETS")),
            trusted_roles=_csv(os.environ.get("TRUSTED_ROLE_ARNS")),
            approval_topics=_csv(os.environ.get("APPROVAL_TOPIC_ARNS")),
        )
