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


class TargetResume(Contract):
    """One target's schedule, watch and counts where a chunk of its window stopped (docs/architecture.md §6): the
    next chunk goes on from here, so no base probe is skipped or sent twice at a boundary. Instants are UTC epoch
    ms (each chunk may run in another Lambda container: only the wall clock is common)."""

    target: str = Field(description="The target's name.")
    next_base: int = Field(description="Index of the next base send on the target's fixed grid.")
    next_seq: int = Field(description="The seq the next sample of the target gets.")
    reference: list[tuple[str | None, str | None]] = Field(
        description="The reference servers as (region, version): those that answered while learning.")
    learning: bool = Field(description="Whether the reference is still being learnt.")
    base_seen: int = Field(description="Base probes seen while learning.")
    state_ok: bool | None = Field(description="The target's state: failed (false), ok (true), none yet (null).")
    state_server: tuple[str | None, str | None] | None = Field(
        description="Who served the state when it is not a reference server (a standby, a new version).")
    held: int = Field(description="How many probes in a row showed the state.")
    state_sent_ms: float | None = Field(description="When the probe that set the state was sent.")
    tokens: float = Field(description="What is left of the target's burst budget (watch probes).")
    tokens_at_ms: float = Field(description="When the budget was last refilled.")
    sent: int = Field(description="Probes sent so far in the window (base and watch).")
    succeeded: int = Field(description="Of them, the ones that succeeded.")
    watch: int = Field(description="Of them, the watch (burst) probes.")
    peak_per_second: int = Field(description="The most probes scheduled within one wall-clock second so far.")
    second: int = Field(description="The wall-clock second (epoch s) being counted, and below its count.")
    in_second: int = Field(description="Probes scheduled so far in ``second``.")


class ProbeOrigin(Contract):
    """Where every chunk of one window of one vantage stands: written to S3 by the window's first chunk, read by
    the others (docs/architecture.md §6). Instants in UTC epoch ms."""

    started_at_ms: int = Field(description="When the window's first chunk started.")
    grid_ms: float = Field(description="The origin of every target's base grid; chunk k sends the base slots "
                                       "from grid + k x chunkSeconds to grid + (k + 1) x chunkSeconds.")
    planned_end_ms: float = Field(description="The window's planned end (a drill window follows a late rollback "
                                              "past it, up to 60 s).")
    chunk_seconds: float = Field(description="The chunk length every chunk of the window uses.")


class ProbeHandoff(Contract):
    """What chunk k hands to chunk k + 1 (through S3) the moment it stops sending: chunk k + 1 is already
    sending its base slots on the same grid, and goes on from this state (watch, burst budget, load, guard).
    Its size does not grow with the window's length."""

    chunk: int = Field(description="The chunk that wrote it.")
    end_ms: float = Field(description="The window's end as that chunk knew it (epoch ms).")
    over: bool = Field(description="The window is over: it ended, or a guardrail stopped it.")
    targets: list[TargetResume] = Field(description="Every target's state, watch, burst budget and load.")
    guard_first_ms: float | None = Field(default=None, description="When the abortIf guard's first sample was "
                                         "scheduled (it fires only once it has seen a whole ``for`` span).")
    guard: list[tuple[float, bool]] = Field(
        default_factory=list, description="The abortIf guard's base samples of its last ``for`` span, as "
        "(scheduled ms, ok): bounded by that span, not by the window.")


class TargetSummary(Contract):
    target: str
    sent: int
    succeeded: int
    failed: int
    watch: int = Field(default=0, description="Of the probes sent, the watch (burst) probes: the load a transition "
                                              "or an outage added.")
    peak_per_second: int = Field(default=0, description="The most probes the target was sent within one second.")
    average_per_second: float = Field(default=0.0, description="Probes sent per second over the window.")


class ProbeSummary(Contract):
    vantage: str
    window: Window
    started_at_ms: int
    ended_at_ms: int
    done: bool = Field(default=True, description="False when the window goes on: this lane then probes chunk "
                                                 "``nextChunk``.")
    next_chunk: int | None = Field(default=None, description="The chunk this lane probes next (not done only): "
                                   "two lanes take turns, so each chunk's function is up before its turn.")
    sample_prefix: str = Field(default="", description="The S3 prefix every sample chunk of the window's vantage "
                                                       "lies under (sortable: samples/VANTAGE/WINDOW-NNNNNN).")
    sample_chunks: int = Field(default=0, description="How many sample chunks this invocation wrote under "
                               "``sample_prefix`` (the state carries this index, never the chunks' keys).")
    marker_prefix: str | None = Field(default=None, description="The S3 prefix of the data checks' marker chunks "
                                      "(livefire/datachecks/; the drill window of the first vantage only).")
    marker_chunks: int = Field(default=0, description="How many marker chunks this invocation wrote under it.")
    targets: list[TargetSummary]


class ProbeLoop(Contract):
    """What the state machine carries from one chunk of a lane to its next (``$.probe``)."""

    done: bool = Field(description="Whether the window is probed whole (the loop ends).")
    summary: ProbeSummary = Field(description="The lane's last chunk's summary (``nextChunk`` while not done).")


class ProbeRequest(Contract):
    plan: Plan
    vantage: Vantage
    window: Window
    lane: int = Field(default=0, description="The lane's first chunk (0 or 1): the state machine runs two lanes "
                                             "per window, each looping over every other chunk.")
    probe: ProbeLoop | None = Field(default=None, description="The previous chunk of the window (the state "
                                    "machine loops while it is not done); None for a window's first chunk.")


class SteadyRequest(Contract):
    """Judge the baseline: its samples are found under the plan's evidence prefix (the state carries no keys)."""

    check: Literal["steady"] = "steady"
    plan: Plan


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
    """Judge the drill: its samples and markers are found under the plan's evidence prefix (the state carries no
    keys)."""

    check: Literal["recovery"] = "recovery"
    plan: Plan


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
