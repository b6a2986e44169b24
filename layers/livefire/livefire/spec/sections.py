"""The sections of a drill spec around the fault: metadata, regions, probes, phases, objectives, guardrails."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from livefire.spec.aws import AlarmSpec, AwsRegion, EksCluster, eks_cluster
from livefire.spec.base import Slug, SpecModel
from livefire.spec.durations import AS_DURATION, DAY, HOUR, MINUTE, MS, SECOND, Duration, PositiveDuration, bounded
from livefire.spec.urls import HttpUrl

Percent = Annotated[float, Field(ge=0, le=100)]
# The limits of each duration field: (minimum, maximum, resolution). Lead and fault are waited by the state
# machine in whole seconds; everything probed or measured has millisecond resolution.
BaselinePhase = Annotated[float, bounded(SECOND, 15 * MINUTE), AS_DURATION]
LeadPhase = Annotated[float, bounded(0.0, DAY, SECOND), AS_DURATION]
FaultPhase = Annotated[float, bounded(SECOND, DAY, SECOND), AS_DURATION]
RecoveryPhase = Annotated[float, bounded(SECOND, DAY), AS_DURATION]
ProbeInterval = Annotated[float, bounded(10 * MS, MINUTE), AS_DURATION]
ProbeTimeout = Annotated[float, bounded(10 * MS, 30 * SECOND), AS_DURATION]
BurstInterval = Annotated[float, bounded(5 * MS, MINUTE), AS_DURATION]
BurstMaxDuration = Annotated[float, bounded(SECOND, HOUR), AS_DURATION]
Sustain = Annotated[float, bounded(MS, 10 * MINUTE), AS_DURATION]
Pattern = Literal["active-active", "active-passive", "canary", "blue-green"]
RegionRole = Literal["primary", "standby", "active"]


class Metadata(SpecModel):
    name: Slug
    service: Slug
    owner: str | None = None
    description: str | None = None


class ClusterRef(SpecModel):
    """How to reach a cluster's Kubernetes API: exactly one of eks, kubeconfig or sandbox. An EKS cluster is named
    with its region: ``{eks: NAME, region: REGION}`` or ``{eks: ARN}`` (livefire/spec/aws.py)."""

    eks: str | None = Field(default=None, description="an EKS cluster: its name (with region) or its ARN "
                                                      "arn:aws:eks:REGION:ACCOUNT:cluster/NAME")
    region: AwsRegion | None = Field(default=None, description="the EKS cluster's AWS region (an ARN carries it)")
    kubeconfig: str | None = None
    context: str | None = None
    sandbox: str | None = None
    assume_role: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$",
                                      max_length=2048)] | None = Field(
        default=None, description="an EKS cluster of another account: the role to assume there (one the deployment "
                                  "trusts, template parameter TrustedRoleArns; target-account.yaml creates it)")

    @model_validator(mode="after")
    def _exactly_one_access_mode(self) -> ClusterRef:
        modes = [m for m in ("eks", "kubeconfig", "sandbox") if getattr(self, m)]
        if len(modes) != 1:
            raise ValueError("give exactly one of eks, kubeconfig or sandbox")
        if self.context and not self.kubeconfig:
            raise ValueError("context is only valid with kubeconfig")
        if self.region is not None and not self.eks:
            raise ValueError("region: is only valid with eks (the AWS region of an EKS cluster)")
        if self.assume_role is not None and not self.eks:
            raise ValueError("assumeRole: is only valid with eks (a cluster of another account)")
        if self.eks:
            eks_cluster(self.eks, self.region)
        return self

    @property
    def eks_cluster(self) -> EksCluster | None:
        """The EKS cluster (region, name, ARN when given); None for a kubeconfig or sandbox cluster."""
        return eks_cluster(self.eks, self.region) if self.eks else None

    @property
    def qualified_name(self) -> str:
        """How the allow-lists name the cluster: ``REGION/NAME`` for EKS, the sandbox's name, the kubeconfig
        context (empty for the current one)."""
        eks = self.eks_cluster
        if eks is not None:
            return eks.qualified_name
        return self.sandbox or self.context or ""

    @property
    def key(self) -> str:
        """A stable name for the cluster, used in leases, records and logs."""
        eks = self.eks_cluster
        if eks is not None:
            return f"eks:{eks.qualified_name}"
        if self.sandbox:
            return f"sandbox:{self.sandbox}"
        return f"kubeconfig:{self.context or 'current'}"


class Region(SpecModel):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    role: RegionRole
    cluster: ClusterRef | None = None
    endpoint: HttpUrl


class ServedBy(SpecModel):
    """How a response names the region (and version) that served it."""

    header: str | None = "x-served-region"
    version_header: str | None = "x-version"
    json_field: str | None = None


class Phases(SpecModel):
    baseline: BaselinePhase = 5.0
    lead: LeadPhase = 5.0
    fault: FaultPhase
    recovery: RecoveryPhase


class Expect(SpecModel):
    status: Annotated[list[Annotated[int, Field(ge=100, le=599)]], Field(min_length=1)] = [200]
    body_contains: str | None = None


class Probes(SpecModel):
    interval: ProbeInterval = 0.25
    timeout: ProbeTimeout = 2.0
    expect: Expect = Expect()
    fresh_connections: bool = True
    burst_interval: BurstInterval = 0.01
    burst_max_duration: BurstMaxDuration = Field(
        default=60.0, description="the burst budget: how long a target's watch may probe at burstInterval on end "
        "(a full budget; it refills at the base rate), so the end of an outage this long is bracketed to "
        "burstInterval; past it, the watch probes midway between base sends (docs/architecture.md §6)")
    sustain: Sustain = Field(default=1.0, description="how long success must hold to count")

    @model_validator(mode="after")
    def _burst_not_slower_than_base(self) -> Probes:
        if self.burst_interval > self.interval:
            raise ValueError("burstInterval must not be longer than interval")
        return self


class Objectives(SpecModel):
    rto: PositiveDuration | None = None
    failback_rto: PositiveDuration | None = None
    availability: Percent | None = None
    p99_latency: PositiveDuration | None = None
    mixed_version_window: Duration | None = Field(
        default=None,
        description="blue-green: how long both versions may serve after the cutover (default: one probe interval)",
    )
    rpo: PositiveDuration | None = Field(
        default=None, description="the most acknowledged writes a failover may lose, in time (needs dataChecks)")
    replication_lag_p99: PositiveDuration | None = Field(
        default=None, description="the p99 replication lag of every read region before the fault (needs dataChecks)")
    rto_regression: float | None = Field(
        default=None, gt=1.0, le=100.0,
        description="a factor: the RTO must be at most this times the median RTO of the service's last 5 earlier "
                    "drills of the same pattern that measured one (the drill table's history); e.g. 1.5")


class AbortIf(SpecModel):
    error_rate_over: Percent
    for_: PositiveDuration = Field(alias="for")


class Guardrails(SpecModel):
    allowed_namespaces: list[Slug] = Field(default=[], description="required (non-empty) for a mesh fault")
    allowed_clusters: list[str] = Field(
        default=[], description="clusters the drill may touch (empty: any): REGION/NAME for an EKS cluster, the "
                                "sandbox name, the kubeconfig context")
    abort_if: AbortIf | None = None
    alarms: list[AlarmSpec] = Field(
        default=[], description="CloudWatch alarms that stop the drill: a name (in the deployment's region), an "
                                "alarm ARN, or {name, region}")
    multi_region_fault: bool | None = Field(
        default=None, description="true: this drill is one part of a deliberate multi-region fault, sharing its "
                                  "service's lease with the drills of the service that set it too (each still "
                                  "leases its own object); otherwise (default) no other drill of the service runs "
                                  "beside it")


class Vantage(SpecModel):
    name: Slug
    region: str
    function_arn: str | None = None
