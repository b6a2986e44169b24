"""The result of an assessment: assessment.json, the source of truth of a drill's outcome.

Absolute times are UTC epoch milliseconds (as in ``Sample``); recovery durations are seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Annotated, Literal, ParamSpec

from pydantic import BaseModel, ConfigDict, Field

from livefire.spec import Pattern

Status = Literal["PASS", "FAIL", "INCONCLUSIVE"]
PhaseName = Literal["baseline", "fault", "recovery"]
PHASES: tuple[PhaseName, ...] = ("baseline", "fault", "recovery")
VantageName = Annotated[str, Field(description="the vantage that probed")]


class AssessmentModel(BaseModel):
    """Base of the assessment's parts: unknown keys rejected, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Latency(AssessmentModel):
    """Nearest-rank percentiles of the latency of successful probes."""

    p50_ms: float | None = Field(default=None, description="median latency, ms; None without a success")
    p95_ms: float | None = Field(default=None, description="95th percentile latency, ms")
    p99_ms: float | None = Field(default=None, description="99th percentile latency, ms")


class TargetStats(AssessmentModel):
    """What one vantage saw of one target in one phase."""

    phase: PhaseName = Field(description="baseline (before the injection), fault, or recovery (after the restore)")
    vantage: VantageName
    target: str = Field(description="the probe target's name (see the plan's targets)")
    sent: int = Field(description="probes sent, watch (burst) probes included")
    ok: int = Field(description="probes that met the expectation")
    availability_pct: float | None = Field(description="100 * ok / sent; None when nothing was sent")
    errors: dict[str, int] = Field(description="failed probes by error class (http-503, timeout, ...)")
    latency: Latency = Field(description="latency percentiles of the successful probes")
    served_by: dict[str, int] = Field(description="successful probes by serving region[@version]")


class ProbeLoad(AssessmentModel):
    """The load the drill window put on one target from one vantage, as sent (never as configured)."""

    vantage: VantageName
    target: str = Field(description="the probe target's name")
    sent: int = Field(description="probes sent in the drill window, watch (burst) probes included")
    watch: int = Field(description="of those, watch probes: sent at the burst interval while the target was degraded")
    average_per_s: float | None = Field(description="sent over the window's length (None: a single probe)")
    peak_per_s: int = Field(description="the most probes sent within one second (by send time, whole seconds)")


class PhaseWindow(AssessmentModel):
    """When a phase began and ended, as the assessment cut the timeline."""

    name: PhaseName = Field(description="the phase")
    from_ms: float | None = Field(description="its start (the first sample, the injection or the restore)")
    to_ms: float | None = Field(description="its end (the injection, the restore or the last sample's end)")


class Bracket(AssessmentModel):
    """The transition lies between the last bad sample and the first sample of the sustained run.

    By send times, ``[last_failure_ms, first_success_ms]`` brackets the instant from which a request *sent*
    succeeds (the users' view); ``width_ms`` is that send gap, the probing resolution. The server itself flips
    a little later (the request's way in): a probe observes the server between its send and its end, so the
    server-side instant lies in ``[last_failure_ms, first_success_ended_ms]`` (``contains``).
    """

    last_failure_ms: float | None = Field(description="send time of the last sample before the run that was not good")
    last_failure_seq: int | None = Field(description="its sequence number")
    first_success_ms: float = Field(description="send time of the first sample of the sustained good run")
    first_success_seq: int = Field(description="its sequence number")
    first_success_ended_ms: float | None = Field(default=None, description="when that first good sample ended")

    @property
    def width_ms(self) -> float | None:
        return None if self.last_failure_ms is None else self.first_success_ms - self.last_failure_ms

    def contains(self, instant_ms: float) -> bool:
        """Whether a server-side transition at ``instant_ms`` is consistent with the probes."""
        upper = self.first_success_ms if self.first_success_ended_ms is None else self.first_success_ended_ms
        return self.last_failure_ms is not None and self.last_failure_ms <= instant_ms <= upper


class Recovery(AssessmentModel):
    """Time from a moment (injection or rollback) to the first sustained healthy run, seen by one vantage."""

    vantage: VantageName
    target: str = Field(description="the target recovering (the entrypoint)")
    seconds: float | None = Field(description="from the moment to the start of the run; None when never seen")
    bracket: Bracket | None = Field(description="where the transition lies; None without a failure before it")
    note: str = Field(description="what was seen, in words")
    no_outage: bool = Field(
        default=False, description="nothing failed to recover from (seconds is None: no outage observed, not 0)"
    )
    cut_short: bool = Field(
        default=False,
        description="the window ended during a healthy run too short to count as sustained: not seen either way "
                    "(seconds is None: not judged, never a failure)",
    )


class FaultInstants(AssessmentModel):
    """When a change to the mesh was asked for and when the answer came back: it took effect somewhere in
    between. A sample sent inside the bracket is neither before nor after the change."""

    sent_ms: float = Field(description="when the first request was sent: the earliest the change can take effect")
    answered_ms: float = Field(description="when the last answer came back: the change is in effect by then")


class Detection(AssessmentModel):
    """Injection to the first sample that showed the fault, for one vantage and target."""

    vantage: VantageName
    target: str = Field(description="the target (the faulted region's endpoint or the entrypoint)")
    seconds: float | None = Field(description="injection to that sample's send; None when nothing showed")
    first_failure_ms: float | None = Field(description="send time of the first sample showing the fault")
    first_failure_seq: int | None = Field(description="its sequence number")


class Outage(AssessmentModel):
    """A run of consecutive failures at the entrypoint, seen by one vantage."""

    vantage: VantageName
    target: str = Field(description="the entrypoint")
    duration_ms: float = Field(description="to_ms - from_ms")
    from_ms: float = Field(description="send time of the first failure")
    to_ms: float = Field(description="send time of the next success (or the end of the last failure)")
    failures: int = Field(description="failed probes in the run")


class ServedSegment(AssessmentModel):
    """A stretch of time during which one region (and version) answered the entrypoint for one vantage."""

    vantage: VantageName
    region: str | None = Field(description="the serving region the answers named")
    version: str | None = Field(description="the serving version the answers named")
    from_ms: float = Field(description="send time of the first answer")
    to_ms: float = Field(description="send time of the last answer")
    samples: int = Field(description="answers in the segment")


class EvidencePointer(AssessmentModel):
    """Where in the raw samples a finding can be checked."""

    target: str | None = Field(default=None, description="the target")
    vantage: str | None = Field(default=None, description="the vantage (None: every vantage)")
    from_ms: float | None = Field(default=None, description="start of the time range to look at")
    to_ms: float | None = Field(default=None, description="end of the time range to look at")
    seqs: list[int] = Field(default=[], description="sequence numbers of the samples that decided")
    sample_keys: list[str] = Field(default=[], description="S3 keys of the sample chunks (of the vantage)")


class Finding(AssessmentModel):
    """One judged rule: an objective, a gate, or a pattern's assertion."""

    id: str = Field(description="stable identifier (rto, sampleCoverage, standbyServedDuringFault, ...)")
    title: str = Field(description="the rule, in words")
    measured: float | None = Field(description="the measured value, in unit; None when not measured")
    unit: str = Field(description="unit of measured and threshold (s, ms, %, samples, probes, errors)")
    threshold: float | None = Field(description="the threshold the rule compares with, if any")
    status: Status = Field(description="PASS, FAIL or INCONCLUSIVE (not enough evidence to judge)")
    detail: str = Field(description="why, in words, with the numbers")
    evidence: EvidencePointer = Field(description="where to check it in the samples")
    required_samples: int | None = Field(
        default=None, description="the fewest samples per vantage the rule needs to be judged (its sufficiency rule)"
    )
    samples: int | None = Field(default=None, description="the fewest samples a vantage had for the rule")
    corroborating: bool = Field(default=False, description="a second instrument's check (the mesh's telemetry): "
                                "it can fail the verdict, but not judging it leaves the verdict to the probes")
    rule: str = Field(default="", description="the rule in one sentence: what is measured, over which samples, "
                      "and when it passes")


P = ParamSpec("P")


def rule(sentence: str) -> Callable[[Callable[P, Finding]], Callable[P, Finding]]:
    """Declare, on a finding function, the one-sentence rule every finding it returns carries."""

    def declare(judge: Callable[P, Finding]) -> Callable[P, Finding]:
        @wraps(judge)
        def judged(*args: P.args, **kwargs: P.kwargs) -> Finding:
            return judge(*args, **kwargs).model_copy(update={"rule": sentence})

        return judged

    return declare


# What the data checks measured (``rpo.py``): lags and RPOs in seconds.

class LagStats(AssessmentModel):
    """The replication lag one region showed in one phase: for each read, the read's send instant minus the send
    instant of the newest marker it saw (a read that saw none yet counts from the first marker written: a lower
    bound). It includes up to one marker interval of sampling."""

    region: str = Field(description="the region read")
    phase: PhaseName = Field(description="baseline (before the injection), fault, or recovery")
    reads: int = Field(description="successful reads in the phase")
    failed_reads: int = Field(description="reads that got no answer")
    p50_s: float | None = Field(description="median lag; None without a read")
    p99_s: float | None = Field(description="99th percentile lag (nearest rank)")
    max_s: float | None = Field(description="largest lag")


class LagPoint(AssessmentModel):
    """One point of a region's lag timeline (the largest lag among the reads of its time bucket)."""

    region: str = Field(description="the region read")
    at_ms: float = Field(description="the read's send instant")
    lag_s: float = Field(description="the lag it saw")


class Rpo(AssessmentModel):
    """The acknowledged writes a region never saw when it started serving: the RPO at the failover instant.

    The primary failed at the injection ``failed_at_ms``; the region started serving at ``serving_from_ms`` (its
    first answer at the entrypoint after the injection). The region then held everything up to some instant ``h``:
    at least the newest marker seen by the last read that ended by then (``held_ms``), and not the marker after the
    newest seen by the first read sent after it (``first_missing_ms``). The loss is ``failed_at - h``, so
    ``low_s = failed_at - first_missing`` <= loss <= ``high_s = failed_at - held``; ``seconds`` is the middle, within
    half the bracket (about one marker interval) of the truth."""

    region: str = Field(description="the region that took over")
    seconds: float | None = Field(description="the RPO: the middle of the bracket; None when not measured (note)")
    low_s: float | None = Field(default=None, description="the least the loss can be")
    high_s: float | None = Field(default=None, description="the most the loss can be")
    failed_at_ms: float | None = Field(default=None, description="when the primary failed (the injection's send)")
    serving_from_ms: float | None = Field(default=None, description="when the region started serving")
    last_acked_seq: int | None = Field(default=None, description="the last marker the primary acknowledged before "
                                                                 "it failed")
    last_acked_ms: float | None = Field(default=None, description="its send instant")
    held_seq: int | None = Field(default=None, description="the newest marker the region surely held when it "
                                                          "started serving (None: none)")
    held_ms: float | None = Field(default=None, description="its send instant (the first marker's when none)")
    lost_markers: int | None = Field(default=None, description="acknowledged markers after held_seq up to "
                                                              "last_acked_seq: writes the region may have lost")
    note: str = Field(description="what was seen, in words")


class WriteLoss(AssessmentModel):
    """Write loss on failback (``standbyWrites``): the markers a region acknowledged while it served in the
    primary's place, from its first answer at the entrypoint after the injection (``serving_from_ms``) to the
    restore's send (``until_ms``), that the primary was looked for and never seen to hold by the window's end."""

    region: str = Field(description="the region that took over")
    serving_from_ms: float | None = Field(default=None, description="when it started serving")
    until_ms: float | None = Field(default=None, description="the restore's send: the failback began")
    written: int = Field(default=0, description="standby markers it acknowledged while it served")
    reached: int = Field(default=0, description="of those, seen in the primary")
    lost: int | None = Field(default=None, description="of those, looked for in the primary after the restore and "
                                                       "never seen there; None when not observed (note)")
    lost_seqs: list[int] = Field(default=[], description="the lost markers' sequence numbers (the first 50)")
    unchecked: int = Field(default=0, description="of those, never looked for after the restore (neither seen "
                                                  "nor lost)")
    last_look_ms: float | None = Field(default=None, description="the last successful look in the primary")
    note: str = Field(description="what was seen, in words")


class DataCheckResult(AssessmentModel):
    """One data check's measurements."""

    check: str = Field(description="the data check's name")
    kind: str = Field(description="http or dynamodb")
    interval_s: float = Field(description="one marker written (and each region read) this often")
    writes: int = Field(description="markers sent to the primary")
    acknowledged: int = Field(description="markers the primary acknowledged")
    lag: list[LagStats] = Field(description="per read region and phase")
    timeline: list[LagPoint] = Field(description="the lag over time per read region, bucketed")
    rpo: list[Rpo] = Field(description="per read region")
    write_loss: list[WriteLoss] = Field(default=[], description="per read region, with standbyWrites")
    marker_keys: list[str] = Field(description="the S3 keys of the marker chunks judged")


class Recommendation(AssessmentModel):
    """What to change, derived from the measurements by one rule of ``recommendations.py`` (the report's
    "What to change"): advice, never part of the verdict."""

    id: str = Field(description="the rule that made it (addOutlierDetection, fasterEjection, shorterEjection, ...)")
    title: str = Field(description="the change, in words")
    region: str | None = Field(default=None, description="the region whose configuration to change; None: the "
                                                          "service as a whole")
    because: str = Field(description="the measurements that justify it, with their numbers")
    change: str = Field(description="what to change, with the values to use and why they meet the objective")
    yaml: str | None = Field(default=None, description="the Istio object to apply (kubectl apply -f), for a change "
                                                       "of mesh configuration; None otherwise")
    findings: list[str] = Field(default=[], description="the ids of the findings it rests on")


# What the mesh's own telemetry counted (livefire/telemetry/): requests, not probes.

class MeshPhase(AssessmentModel):
    """One phase of one cluster (``cluster`` None: the whole service) as the mesh counted it, over the query steps
    whose requests surely fall inside the phase (``from_ms``, ``to_ms``]."""

    phase: PhaseName = Field(description="baseline (lead), fault or recovery")
    cluster: str | None = Field(description="the destination cluster label value; None for every cluster")
    from_ms: float | None = Field(description="start of the span counted; None when no whole step fits the phase")
    to_ms: float | None = Field(description="end of the span counted")
    requests: float = Field(description="requests the service's proxies reported in the span")
    errors: float = Field(description="those answered 5xx or by the proxy itself (a local-reply response flag)")
    error_ratio_pct: float | None = Field(description="100 * errors / requests; None without a request")
    rate_per_s: float | None = Field(description="requests per second over the span")
    p99_ms: float | None = Field(description="p99 duration from the histogram buckets (linear inside a bucket)")
    gateway_requests: float = Field(description="what the entrypoint's gateway sent to the cluster in the span")
    gateway_ok: float = Field(description="those that were not errors")


class MeshSplit(AssessmentModel):
    """The gateway's requests per cluster in one query step ending at ``at_ms``."""

    at_ms: float = Field(description="the step's end")
    requests: dict[str, float] = Field(description="cluster label value -> requests sent to it in the step")


class MeshFailover(AssessmentModel):
    """Traffic moving from the faulted region's cluster to another, as the gateway's reports show it."""

    from_cluster: str = Field(description="the faulted region's cluster")
    to_cluster: str | None = Field(description="the cluster that took the most of its traffic; None: not seen")
    low_ms: float | None = Field(description="the earliest the move can have begun (scrape and step included)")
    high_ms: float | None = Field(description="the latest: the end of the first step with the cluster's share "
                                              "below half its lead-phase share")
    seconds: float | None = Field(description="high_ms - the injection, in seconds; None when no move was seen")
    note: str = Field(description="what the mesh showed, in words")


class MeshTelemetry(AssessmentModel):
    """The mesh's view of the drill window, beside the probes' (telemetry in the spec)."""

    source: str = Field(description="the Prometheus-compatible endpoint queried")
    status: Literal["measured", "unavailable"] = Field(description="whether the queries were answered")
    note: str = Field(description="why not, when unavailable")
    step_s: float = Field(description="the query step")
    scrape_interval_s: float = Field(description="the scrape interval the spec states")
    phases: list[MeshPhase] = Field(default=[], description="per phase: every cluster, then the whole service")
    split: list[MeshSplit] = Field(default=[], description="the gateway's traffic per cluster, step by step")
    failover: MeshFailover | None = Field(default=None, description="the move the mesh saw; None without a fault")
    query_keys: list[str] = Field(default=[], description="S3 keys of the raw query answers (telemetry/*.json)")


class Assessment(AssessmentModel):
    """The source of truth of a drill's outcome, stored as assessment.json."""

    drill_id: str = Field(description="the drill (the execution name)")
    service: str = Field(description="the service drilled")
    pattern: Pattern = Field(description="the DR pattern judged")
    fault_region: str = Field(description="the region the fault hit")
    entrypoint: str | None = Field(description="the entrypoint target's name; None when the plan has none")
    faulted_endpoints: list[str] = Field(description="the targets of the faulted region's own endpoint")
    injected_at_ms: float | None = Field(
        description="when the first injection request was sent: the fault phase starts here (None: nothing injected)"
    )
    restored_at_ms: float | None = Field(
        description="when the first restore request was sent: the recovery phase starts here (None: not restored)"
    )
    injection: FaultInstants | None = Field(default=None, description="the injection's [sent, answered] bracket")
    restore: FaultInstants | None = Field(default=None, description="the restore's [sent, answered] bracket")
    phases: list[PhaseWindow] = Field(description="the phases as cut by the injection and the restore")
    stats: list[TargetStats] = Field(description="per phase, vantage and target")
    fault_took_effect: bool = Field(description="whether the fault showed in the probes")
    detection: list[Detection] = Field(description="per vantage and target")
    detection_seconds: float | None = Field(description="earliest detection at the faulted endpoint")
    entrypoint_detection_seconds: float | None = Field(description="earliest detection at the entrypoint")
    rto_seconds: float | None = Field(
        description="the worst vantage's RTO at the entrypoint; None when no outage was observed, the entrypoint "
        "never recovered, or RTO does not apply (rto_note says which)"
    )
    outage_observed: bool | None = Field(
        default=None, description="whether the entrypoint failed during the fault from any vantage; None when "
        "RTO does not apply or nothing was probed"
    )
    rto_bracket: Bracket | None = Field(description="that vantage's recovery bracket")
    rto_note: str = Field(description="what the worst vantage saw, in words")
    rto_by_vantage: list[Recovery] = Field(description="RTO per vantage")
    failback_seconds: float | None = Field(description="the worst vantage's time from the restore to failback")
    failback_bracket: Bracket | None = Field(description="that vantage's failback bracket")
    failback_note: str = Field(description="what the worst vantage saw, in words")
    failback_by_vantage: list[Recovery] = Field(description="failback per vantage")
    max_outage_ms: float = Field(description="the longest run of failures at the entrypoint (0 without one)")
    max_outage: Outage | None = Field(description="that run")
    served_by_timeline: list[ServedSegment] = Field(description="who served the entrypoint, when")
    findings: list[Finding] = Field(description="every judged rule, gates first")
    verdict: Status = Field(description="PASS only when every finding passed")
    verdict_reason: str = Field(description="why, in words")
    sample_keys: list[str] = Field(description="every sample chunk judged")
    data_checks: list[DataCheckResult] = Field(default=[], description="replication lag and RPO per data check")
    load: list[ProbeLoad] = Field(default=[], description="the load put on each target, per vantage")
    telemetry: MeshTelemetry | None = Field(
        default=None, description="what the mesh's own metrics showed (None: no telemetry in the spec)")
    recommendations: list[Recommendation] = Field(
        default=[], description="what to change, derived from the measurements and the mesh posture audit (the "
        "Evidence step adds them with the posture: docs/architecture.md §7)")

    def finding(self, finding_id: str) -> Finding | None:
        return next((f for f in self.findings if f.id == finding_id), None)

    def stats_for(self, phase: PhaseName, vantage: str, target: str) -> TargetStats | None:
        return next(
            (s for s in self.stats if (s.phase, s.vantage, s.target) == (phase, vantage, target)), None
        )
