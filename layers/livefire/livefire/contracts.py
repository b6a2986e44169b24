"""The contracts between the states of the drill workflow, and the raw probe sample.

Every Lambda handler parses its event into one of the ``*Request`` models and returns a model dumped with
``to_state()``. Payloads stay small: samples, snapshots and reports travel as S3 keys, never inline.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from livefire.egress import Reach
from livefire.spec import ClusterRef, FaultKind, Pattern, Vantage

Outcome = Literal["COMPLETED", "NOT_STEADY", "CANCELLED", "ERROR", "ABORTED"]
Verdict = Literal["PASS", "FAIL", "INCONCLUSIVE", "NOT_STEADY", "CANCELLED", "ERROR", "ABORTED", "RESTORE_REFUSED"]
Window = Literal["baseline", "drill"]
FaultStatus = Literal["PENDING", "INJECTED", "RESTORED", "CONFLICT", "FAILED", "SKIPPED"]


class Contract(BaseModel):
    """Base of the state payloads: camelCase on the wire, unknown keys from the state machine ignored."""

    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)

    def to_state(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class PlannedFault(Contract):
    """A fault the drill will start: a mesh object to patch, or (no cluster) an FIS experiment or a webhook."""

    fault_id: str
    kind: FaultKind | Literal["data-check"]  # data-check: the markers' cleanup (livefire/datachecks/cleanup.py)
    region: str
    cluster: ClusterRef | None = None
    namespace: str = ""
    object_kind: Literal["VirtualService", "DestinationRule", "Deployment", "FisExperiment", "Webhook",
                         "DataCheckMarkers"]
    object_name: str
    lease_key: str
    reach: Reach = Field(default="real", description="sandbox: what the fault acts on is the local sandbox mesh's "
                         "(a sandbox cluster, or webhook URLs on sandbox hosts); real: a real cluster, FIS "
                         "experiment or webhook URL, contacted as named (always, on AWS).")


class ProbeTarget(Contract):
    """One endpoint probed during the drill: the entrypoint or a region's own DR endpoint."""

    name: str
    url: str
    region: str | None = None
    role: str
    reach: Reach = Field(default="real", description="sandbox: answered by the local sandbox mesh (livefire run, a "
                         "host under .sandbox); real: contacted over the network as named (always, on AWS).")


class PlannedApproval(Contract):
    """The drill's go/no-go gate (spec ``approval``), as the AwaitApproval state reads it."""

    timeout_seconds: int = Field(description="How long the gate waits for a decision (the task's TimeoutSeconds).")
    approvers: list[str] = Field(default_factory=list, description="Who may decide (empty: anyone IAM allows).")
    topic: str | None = Field(default=None, description="The SNS topic that receives the request, if any.")


class Plan(Contract):
    drill_id: str
    execution_arn: str
    service: str
    pattern: Pattern
    mode: Literal["live", "dry-run"]
    spec_key: str
    spec_digest: str
    evidence_prefix: str
    started_at_ms: int
    vantages: list[Vantage]
    targets: list[ProbeTarget]
    faults: list[PlannedFault]
    baseline_seconds: float
    observe_seconds: float
    lead_wait_seconds: int
    fault_wait_seconds: int
    anchor_at_ms: int | None = None  # external drills: the incident's start, from the execution input
    approval: PlannedApproval | None = Field(default=None, description="The go/no-go gate before anything is "
                                                                       "injected; None: the drill does not wait.")


class PlanRequest(Contract):
    drill_id: str
    execution_arn: str
    execution_input: dict[str, Any]


class ProbeRequest(Contract):
    plan: Plan
    vantage: Vantage
    window: Window


class TargetSummary(Contract):
    target: str
    sent: int
    succeeded: int
    failed: int


class ProbeSummary(Contract):
    vantage: str
    window: Window
    started_at_ms: int
    ended_at_ms: int
    sample_keys: list[str]
    marker_keys: list[str] = Field(default_factory=list, description="S3 keys of the data checks' marker chunks "
                                                                     "(livefire/datachecks/; the drill window only)")
    targets: list[TargetSummary]


class SteadyRequest(Contract):
    check: Literal["steady"] = "steady"
    plan: Plan
    baseline: list[ProbeSummary]


class SteadyResult(Contract):
    steady: bool
    reason: str


class FaultState(Contract):
    """One fault as Inject or Rollback left it (the fault record's view; see FaultRecord in ``livefire.records``).
    Instants are UTC epoch ms in brackets [request sent, answer received] (docs/architecture.md §5)."""

    fault_id: str = Field(description="The fault's id within the drill.")
    status: FaultStatus = Field(description="PENDING, INJECTED, RESTORED, CONFLICT (restore refused: the target "
                                            "changed since the snapshot), FAILED or SKIPPED (fenced, or a dry run).")
    injected_at_ms: int | None = Field(default=None, description="When the request that started the fault was "
                                                                "sent: the earliest it can have taken effect.")
    injection_answered_at_ms: int | None = Field(default=None, description="When that request's answer came back: "
                                                                          "the fault is in effect by then.")
    restore_requested_at_ms: int | None = Field(default=None, description="When the request that ended the fault "
                                                                         "was sent.")
    restored_at_ms: int | None = Field(default=None, description="When that request's answer came back (FIS: when "
                                                                "the experiment ended).")
    snapshot_key: str | None = Field(default=None, description="S3 key of the fault's document (the target's "
                                                              "snapshot, or the FIS / webhook document).")
    detail: str | None = Field(default=None, description="What happened last, in one line.")
    dry_run_problems: list[str] = Field(default_factory=list, description="A dry run: why the fault or its restore "
                                                                          "would fail (empty: it would work).")


class InjectRequest(Contract):
    plan: Plan


class InjectResult(Contract):
    faults: list[FaultState]


class RollbackRequest(Contract):
    plan: Plan
    emergency: bool = False
    final: bool = Field(default=False, description="The CleanUp step after the observation: also what is only "
                                                   "undone at the end (the data checks' markers).")


class RollbackResult(Contract):
    faults: list[FaultState]


class AssessRequest(Contract):
    check: Literal["recovery"] = "recovery"
    plan: Plan
    observations: list[ProbeSummary]


class AssessSummary(Contract):
    verdict: Verdict
    rto_seconds: float | None
    outage_observed: bool | None = Field(
        default=None, description="False when the entrypoint never failed during the fault: no outage observed, so "
        "rto_seconds is None rather than 0; None when RTO does not apply or nothing was probed."
    )
    assessment_key: str
    findings: int
    failed_findings: int


class ErrorInfo(Contract):
    """A Step Functions Catch result (``{"Error", "Cause"}``)."""

    error: str = Field(default="Unknown", validation_alias=AliasChoices("Error", "error"))
    cause: str = Field(default="", validation_alias=AliasChoices("Cause", "cause"))


class EvidenceRequest(Contract):
    plan: Plan
    outcome: Outcome
    assessment: AssessSummary | None = None
    error: ErrorInfo | None = None


class EvidenceResult(Contract):
    drill_id: str
    verdict: Verdict
    rto_seconds: float | None
    manifest_key: str
    manifest_digest: str
    report_key: str


class Sample(BaseModel):
    """One probe, as written (one JSON object per line) to the gzipped sample chunks in S3.

    Times are UTC epoch milliseconds (floats, sub-millisecond precision): when the probe was scheduled,
    when it was really sent, and when its answer (or error) ended.
    """

    model_config = ConfigDict(extra="forbid")

    target: str
    vantage: str
    seq: int
    scheduled_ms: float
    sent_ms: float
    ended_ms: float
    ok: bool
    status: int | None = None
    error: str | None = None
    latency_ms: float
    served_by: str | None = None
    version: str | None = None
    burst: bool = False
