"""Assessment: turn a drill's raw probe samples into metrics, findings and a verdict (DESIGN §5).

Pure functions over samples the caller has already loaded; no AWS calls. Absolute times are UTC epoch
milliseconds (as in ``Sample``); recovery durations are seconds. Samples are ordered by send time, so a slow
answer never reorders the timeline. Where several vantages probe the same target, every headline value is
the worst vantage's (the largest RTO, the lowest availability), and the per-vantage values are kept beside it.

Rates and shares (availability, a canary's split and error share) count only fixed-schedule probes: watch
(burst) probes crowd around transitions by design and would weigh outages more than their duration. Times
(RTO, brackets, failback, mixed-version windows) use every probe.

Patterns (DESIGN §5): active-passive and active-active are failover patterns, judged by RTO, failback and who
served; canary and blue-green shift traffic between versions (``fault.weights``) and are judged on the split,
the errors and the revert. Versions are compared by name: the version a subset's pods report (``x-version``)
must equal the subset name used in ``fault.weights``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from livefire.contracts import Plan, ProbeTarget, Sample, SteadyResult
from livefire.spec import DrillSpec, Pattern

Status = Literal["PASS", "FAIL", "INCONCLUSIVE"]
PhaseName = Literal["baseline", "fault", "recovery"]
PHASES: tuple[PhaseName, ...] = ("baseline", "fault", "recovery")
ENTRYPOINT_ROLE = "entrypoint"
MIN_SAMPLES = 3
MIN_SPLIT_SAMPLES = 20
SPLIT_SIGMAS = 4.0
STEADY_AVAILABILITY = 99.0
FAILOVER_PATTERNS = ("active-passive", "active-active")


class AssessmentModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Latency(AssessmentModel):
    """Nearest-rank percentiles of the latency of successful probes."""

    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


class TargetStats(AssessmentModel):
    phase: PhaseName
    vantage: str
    target: str
    sent: int
    ok: int
    availability_pct: float | None
    errors: dict[str, int]
    latency: Latency
    served_by: dict[str, int]


class PhaseWindow(AssessmentModel):
    name: PhaseName
    from_ms: float | None
    to_ms: float | None


class Bracket(AssessmentModel):
    """The transition lies between the last bad sample and the first sample of the sustained run.

    By send times, ``[last_failure_ms, first_success_ms]`` brackets the instant from which a request *sent*
    succeeds (the users' view); ``width_ms`` is that send gap, the probing resolution. The server itself flips
    a little later (the request's way in): a probe observes the server between its send and its end, so the
    server-side instant lies in ``[last_failure_ms, first_success_ended_ms]`` (``contains``).
    """

    last_failure_ms: float | None
    last_failure_seq: int | None
    first_success_ms: float
    first_success_seq: int
    first_success_ended_ms: float | None = None

    @property
    def width_ms(self) -> float | None:
        return None if self.last_failure_ms is None else self.first_success_ms - self.last_failure_ms

    def contains(self, instant_ms: float) -> bool:
        """Whether a server-side transition at ``instant_ms`` is consistent with the probes."""
        upper = self.first_success_ms if self.first_success_ended_ms is None else self.first_success_ended_ms
        return self.last_failure_ms is not None and self.last_failure_ms <= instant_ms <= upper


class Recovery(AssessmentModel):
    """Time from a moment (injection or rollback) to the first sustained healthy run, seen by one vantage."""

    vantage: str
    target: str
    seconds: float | None
    bracket: Bracket | None
    note: str


class Detection(AssessmentModel):
    vantage: str
    target: str
    seconds: float | None
    first_failure_ms: float | None
    first_failure_seq: int | None


class Outage(AssessmentModel):
    vantage: str
    target: str
    duration_ms: float
    from_ms: float
    to_ms: float
    failures: int


class ServedSegment(AssessmentModel):
    vantage: str
    region: str | None
    version: str | None
    from_ms: float
    to_ms: float
    samples: int


class EvidencePointer(AssessmentModel):
    target: str | None = None
    vantage: str | None = None
    from_ms: float | None = None
    to_ms: float | None = None
    seqs: list[int] = []
    sample_keys: list[str] = []


class Finding(AssessmentModel):
    id: str
    title: str
    measured: float | None
    unit: str
    threshold: float | None
    status: Status
    detail: str
    evidence: EvidencePointer


class Assessment(AssessmentModel):
    """The source of truth of a drill's outcome, stored as assessment.json."""

    drill_id: str
    service: str
    pattern: Pattern
    fault_region: str
    entrypoint: str | None
    faulted_endpoints: list[str]
    injected_at_ms: float | None
    restored_at_ms: float | None
    phases: list[PhaseWindow]
    stats: list[TargetStats]
    fault_took_effect: bool
    detection: list[Detection]
    detection_seconds: float | None
    entrypoint_detection_seconds: float | None
    rto_seconds: float | None
    rto_bracket: Bracket | None
    rto_note: str
    rto_by_vantage: list[Recovery]
    failback_seconds: float | None
    failback_bracket: Bracket | None
    failback_note: str
    failback_by_vantage: list[Recovery]
    max_outage_ms: float
    max_outage: Outage | None
    served_by_timeline: list[ServedSegment]
    findings: list[Finding]
    verdict: Status
    verdict_reason: str
    sample_keys: list[str]

    def finding(self, finding_id: str) -> Finding | None:
        return next((f for f in self.findings if f.id == finding_id), None)

    def stats_for(self, phase: PhaseName, vantage: str, target: str) -> TargetStats | None:
        return next(
            (s for s in self.stats if (s.phase, s.vantage, s.target) == (phase, vantage, target)), None
        )


# ---------------------------------------------------------------------------------------------- helpers


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least q% of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def _send_order(sample: Sample) -> tuple[float, float, int]:
    return (sample.sent_ms, sample.scheduled_ms, sample.seq)


def _error_class(sample: Sample) -> str:
    if sample.error:
        return sample.error
    if sample.status is not None:
        return f"http-{sample.status}"
    return "unknown"


def _served_label(sample: Sample) -> str:
    region = sample.served_by or "unknown"
    return f"{region}@{sample.version}" if sample.version else region


def _availability(samples: Sequence[Sample]) -> float | None:
    if not samples:
        return None
    return 100.0 * sum(1 for s in samples if s.ok) / len(samples)


def _scheduled(samples: Iterable[Sample]) -> list[Sample]:
    """The fixed-schedule probes only (see the module docstring)."""
    return [s for s in samples if not s.burst]


def _tolerance(share: float, count: int) -> float:
    """How far an observed share of ``count`` samples may stray from an expected ``share``:
    SPLIT_SIGMAS binomial standard deviations plus one sample (continuity)."""
    return SPLIT_SIGMAS * math.sqrt(share * (1.0 - share) / count) + 1.0 / count


def _stats(phase: PhaseName, vantage: str, target: str, samples: Sequence[Sample]) -> TargetStats:
    ok = [s for s in samples if s.ok]
    latencies = [s.latency_ms for s in ok]
    return TargetStats(
        phase=phase,
        vantage=vantage,
        target=target,
        sent=len(samples),
        ok=len(ok),
        availability_pct=_availability(samples),
        errors=dict(sorted(Counter(_error_class(s) for s in samples if not s.ok).items())),
        latency=Latency(
            p50_ms=percentile(latencies, 50),
            p95_ms=percentile(latencies, 95),
            p99_ms=percentile(latencies, 99),
        ),
        served_by=dict(sorted(Counter(_served_label(s) for s in ok).items())),
    )


def _first_sustained_run(
    series: Sequence[Sample],
    start: int,
    accept: Callable[[Sample], bool],
    sustain_ms: float,
    head: Callable[[Sample], bool] | None = None,
) -> int | None:
    """Index of the sample opening the first run of accepted samples that lasts ``sustain_ms`` (send time)."""
    i = start
    while i < len(series):
        if not accept(series[i]) or (head is not None and not head(series[i])):
            i += 1
            continue
        j = i
        while j + 1 < len(series) and accept(series[j + 1]):
            j += 1
            if series[j].sent_ms - series[i].sent_ms >= sustain_ms:
                return i
        i = j + 1
    return None


def _group(samples: Iterable[Sample]) -> dict[tuple[str, str], list[Sample]]:
    """Samples by (vantage, target), each list in send order."""
    groups: dict[tuple[str, str], list[Sample]] = {}
    for sample in samples:
        groups.setdefault((sample.vantage, sample.target), []).append(sample)
    for series in groups.values():
        series.sort(key=_send_order)
    return groups


def _entrypoint_target(spec: DrillSpec, plan: Plan) -> ProbeTarget | None:
    by_role = next((t for t in plan.targets if t.role == ENTRYPOINT_ROLE), None)
    return by_role or next((t for t in plan.targets if t.url == spec.entrypoint and t.region is None), None)


def _seconds(from_ms: float, to_ms: float) -> float:
    return round((to_ms - from_ms) / 1000.0, 6)


# ---------------------------------------------------------------------------------------------- the drill


@dataclass
class _Drill:
    """What every computation needs: the spec, the timeline and the samples grouped by vantage and target."""

    spec: DrillSpec
    injected: float | None
    restored: float | None
    groups: dict[tuple[str, str], list[Sample]]
    vantages: list[str]
    entrypoint: str | None
    faulted_endpoints: list[str]
    sample_keys: list[str]
    fault_wait_s: float = math.inf

    @property
    def fault_region(self) -> str:
        return self.spec.fault.region

    @property
    def sustain_ms(self) -> float:
        return self.spec.probes.sustain * 1000.0

    @property
    def failover(self) -> bool:
        return self.spec.pattern in FAILOVER_PATTERNS

    @property
    def baseline_versions(self) -> set[str]:
        """The versions that served the entrypoint before the injection (every vantage)."""
        return {
            s.version for v in self.vantages for s in self.in_phase(v, self.entrypoint, "baseline")
            if s.ok and s.version
        }

    @property
    def shift_end(self) -> float:
        """Until when the fault surely held: the restore is recorded only once it is verified, but the rollback
        cannot start before the workflow's fault wait is over."""
        if self.injected is None:
            return -math.inf
        held = self.injected + self.fault_wait_s * 1000.0
        return held if self.restored is None else min(held, self.restored)

    @property
    def shifted_to(self) -> set[str]:
        """The versions the traffic shift sends traffic to that did not serve before it."""
        weights = self.spec.fault.weights or {}
        return {v for v, w in weights.items() if w > 0} - self.baseline_versions

    def phase(self, sample: Sample) -> PhaseName:
        if self.injected is None or sample.sent_ms < self.injected:
            return "baseline"
        if self.restored is None or sample.sent_ms < self.restored:
            return "fault"
        return "recovery"

    def series(self, vantage: str, target: str | None) -> list[Sample]:
        return [] if target is None else self.groups.get((vantage, target), [])

    def in_phase(self, vantage: str, target: str | None, *phases: PhaseName) -> list[Sample]:
        return [s for s in self.series(vantage, target) if self.phase(s) in phases]

    def healthy(self, sample: Sample) -> bool:
        """A success served by a region the fault does not hit (the faulted region counts once restored).
        Outside the mesh (fis, webhook, external) what the fault hits is unknown: every success counts."""
        if not self.spec.fault.in_mesh:
            return sample.ok
        return sample.ok and not (self.phase(sample) == "fault" and sample.served_by == self.fault_region)

    def pointer(
        self,
        target: str | None,
        vantage: str | None,
        from_ms: float | None = None,
        to_ms: float | None = None,
        seqs: Iterable[int | None] = (),
    ) -> EvidencePointer:
        keys = self.sample_keys
        if vantage is not None:
            keys = [k for k in keys if f"samples/{vantage}/" in k]
        return EvidencePointer(
            target=target,
            vantage=vantage,
            from_ms=from_ms,
            to_ms=to_ms,
            seqs=[s for s in seqs if s is not None],
            sample_keys=keys,
        )


def _phase_windows(drill: _Drill, samples: Sequence[Sample]) -> list[PhaseWindow]:
    first = min((s.sent_ms for s in samples), default=None)
    last = max((s.ended_ms for s in samples), default=None)
    if drill.injected is None:
        return [PhaseWindow(name="baseline", from_ms=first, to_ms=last)]
    fault_end = drill.restored if drill.restored is not None else last
    windows = [
        PhaseWindow(name="baseline", from_ms=first, to_ms=drill.injected),
        PhaseWindow(name="fault", from_ms=drill.injected, to_ms=fault_end),
    ]
    if drill.restored is not None:
        windows.append(PhaseWindow(name="recovery", from_ms=drill.restored, to_ms=last))
    return windows


def _all_stats(drill: _Drill) -> list[TargetStats]:
    stats = []
    for (vantage, target), series in sorted(drill.groups.items()):
        for phase in PHASES:
            in_phase = [s for s in series if drill.phase(s) == phase]
            if in_phase or phase == "baseline" or drill.injected is not None:
                stats.append(_stats(phase, vantage, target, in_phase))
    return stats


def _effect_predicate(drill: _Drill, vantage: str, target: str) -> Callable[[Sample], bool]:
    """A sample that shows the fault: a failure, for a delay fault an answer slowed by half the delay, for a
    traffic shift an answer from a version that did not serve the target before the injection."""
    if drill.spec.fault.kind == "traffic-shift":
        before = {s.version for s in drill.in_phase(vantage, target, "baseline") if s.ok}
        if not before:
            return lambda s: not s.ok  # nothing to compare versions with: only a failure shows the fault
        return lambda s: not s.ok or s.version not in before
    delay = drill.spec.fault.delay
    if delay is None:
        return lambda s: not s.ok
    baseline = percentile([s.latency_ms for s in drill.in_phase(vantage, target, "baseline") if s.ok], 50)
    threshold = (baseline or 0.0) + delay.fixed_delay * 1000.0 / 2
    return lambda s: not s.ok or s.latency_ms >= threshold


def _detections(drill: _Drill) -> list[Detection]:
    detections: list[Detection] = []
    if drill.injected is None:
        return detections
    for target in [*drill.faulted_endpoints, *([drill.entrypoint] if drill.entrypoint else [])]:
        for vantage in drill.vantages:
            shows = (
                _effect_predicate(drill, vantage, target)
                if target in drill.faulted_endpoints
                else (lambda s: not s.ok)
            )
            first = next((s for s in drill.in_phase(vantage, target, "fault") if shows(s)), None)
            detections.append(
                Detection(
                    vantage=vantage,
                    target=target,
                    seconds=None if first is None else _seconds(drill.injected, first.sent_ms),
                    first_failure_ms=None if first is None else first.sent_ms,
                    first_failure_seq=None if first is None else first.seq,
                )
            )
    return detections


def _earliest(detections: Iterable[Detection]) -> Detection | None:
    seen = [d for d in detections if d.seconds is not None]
    return min(seen, key=lambda d: d.seconds or 0.0, default=None)


def _unrecovered(vantage: str, target: str, note: str) -> Recovery:
    return Recovery(vantage=vantage, target=target, seconds=None, bracket=None, note=note)


def _rto(drill: _Drill, vantage: str) -> Recovery:
    target = drill.entrypoint or ""
    series = drill.series(vantage, drill.entrypoint)
    if drill.injected is None:
        return _unrecovered(vantage, target, "no fault was injected")
    fault_indices = [i for i, s in enumerate(series) if drill.phase(s) == "fault"]
    if not fault_indices:
        return _unrecovered(vantage, target, "no entrypoint samples during the fault")
    first_failure = next((i for i in fault_indices if not series[i].ok), None)
    if first_failure is None:
        note = "seamless failover: the entrypoint never failed during the fault"
        by_faulted = sum(1 for i in fault_indices if series[i].served_by == drill.fault_region)
        if by_faulted:
            note += f", but the faulted region {drill.fault_region} served {by_faulted} of its probes then"
        return Recovery(vantage=vantage, target=target, seconds=0.0, bracket=None, note=note)
    start = _first_sustained_run(series, first_failure + 1, drill.healthy, drill.sustain_ms)
    if start is None:
        return _unrecovered(
            vantage,
            target,
            f"never recovered: no {drill.spec.probes.sustain:g} s run of successes served by a healthy "
            f"region after the first failure (seq {series[first_failure].seq})",
        )
    run, last_bad = series[start], series[start - 1]
    note = f"recovered, served by {run.served_by or 'an unnamed region'}"
    if drill.restored is not None and run.sent_ms >= drill.restored:
        note += " only after the rollback"
    return Recovery(
        vantage=vantage,
        target=target,
        seconds=_seconds(drill.injected, run.sent_ms),
        bracket=Bracket(
            last_failure_ms=last_bad.sent_ms,
            last_failure_seq=last_bad.seq,
            first_success_ms=run.sent_ms,
            first_success_seq=run.seq,
            first_success_ended_ms=run.ended_ms,
        ),
        note=note,
    )


def _failback_region(drill: _Drill) -> str:
    if drill.spec.pattern == "active-passive":
        primary = next((r.name for r in drill.spec.regions if r.role == "primary"), None)
        return primary or drill.fault_region
    return drill.fault_region


def _failback_target(drill: _Drill) -> str:
    """What the failback waits for, in words."""
    if drill.failover:
        return _failback_region(drill)
    versions = sorted(drill.baseline_versions)
    return f"version {', '.join(versions)}" if versions else "the versions that served before the drill"


def _failback_tests(drill: _Drill) -> tuple[Callable[[Sample], bool], Callable[[Sample], bool] | None]:
    """(a sample that counts as failed back, what the first one of the run must be)."""
    region = _failback_region(drill)
    if drill.spec.pattern == "active-passive":
        return (lambda s: s.ok and s.served_by == region), None
    if drill.failover:
        return (lambda s: s.ok), (lambda s: s.served_by == region)
    versions = drill.baseline_versions
    return (lambda s: s.ok and s.version in versions), None


def _failback(drill: _Drill, vantage: str) -> Recovery:
    """Rollback → first sustained run served by the primary again (active-passive), by the faulted region back
    in service with everything else succeeding (active-active), or by the versions that served before the
    drill only (canary, blue-green: the weights are reverted)."""
    target = drill.entrypoint or ""
    if drill.restored is None:
        return _unrecovered(vantage, target, "the fault was not restored")
    series = drill.series(vantage, drill.entrypoint)
    begin = next((i for i, s in enumerate(series) if s.sent_ms >= drill.restored), None)
    if begin is None:
        return _unrecovered(vantage, target, "no entrypoint samples after the rollback")
    accept, head = _failback_tests(drill)
    start = _first_sustained_run(series, begin, accept, drill.sustain_ms, head=head)
    what = _failback_target(drill)
    if start is None:
        return _unrecovered(
            vantage, target, f"{what} never served a sustained {drill.spec.probes.sustain:g} s run after the rollback"
        )
    run = series[start]
    # The last probe that did not see it back: for active-active, the last one not answered by the region.
    last_bad = next(
        (s for s in reversed(series[begin:start]) if not (accept(s) and (head is None or head(s)))), None
    )
    return Recovery(
        vantage=vantage,
        target=target,
        seconds=_seconds(drill.restored, run.sent_ms),
        bracket=Bracket(
            last_failure_ms=last_bad.sent_ms if last_bad else drill.restored,
            last_failure_seq=last_bad.seq if last_bad else None,
            first_success_ms=run.sent_ms,
            first_success_seq=run.seq,
            first_success_ended_ms=run.ended_ms,
        ),
        note=f"{what} serving again",
    )


def _worst(recoveries: Sequence[Recovery]) -> Recovery | None:
    """The vantage that recovered last; a vantage that never recovered is the worst of all."""
    if not recoveries:
        return None
    never = next((r for r in recoveries if r.seconds is None), None)
    return never or max(recoveries, key=lambda r: r.seconds or 0.0)


def _outages(drill: _Drill, vantage: str) -> list[Outage]:
    """Runs of consecutive failures at the entrypoint: from the first failure's send to the next success's
    send (or, when none followed, the end of the last failure)."""
    series = drill.series(vantage, drill.entrypoint)
    outages: list[Outage] = []
    i = 0
    while i < len(series):
        if series[i].ok:
            i += 1
            continue
        j = i
        while j + 1 < len(series) and not series[j + 1].ok:
            j += 1
        end = series[j + 1].sent_ms if j + 1 < len(series) else series[j].ended_ms
        outages.append(
            Outage(
                vantage=vantage,
                target=drill.entrypoint or "",
                duration_ms=end - series[i].sent_ms,
                from_ms=series[i].sent_ms,
                to_ms=end,
                failures=j - i + 1,
            )
        )
        i = j + 1
    return outages


def _timeline(drill: _Drill) -> list[ServedSegment]:
    """Who served the entrypoint, when: per vantage and (region, version), runs of successes with no gap
    over max(5 probe intervals, sustain), so active-active interleaving stays one segment per region."""
    gap_ms = max(5 * drill.spec.probes.interval, drill.spec.probes.sustain) * 1000.0
    segments: list[ServedSegment] = []
    for vantage in drill.vantages:
        open_: dict[tuple[str | None, str | None], list[float]] = {}
        counts: dict[tuple[str | None, str | None], int] = {}
        for sample in drill.series(vantage, drill.entrypoint):
            if not sample.ok:
                continue
            key = (sample.served_by, sample.version)
            span = open_.get(key)
            if span is not None and sample.sent_ms - span[1] > gap_ms:
                segments.append(_segment(vantage, key, span, counts[key]))
                span = None
            if span is None:
                open_[key], counts[key] = [sample.sent_ms, sample.sent_ms], 0
            open_[key][1] = sample.sent_ms
            counts[key] += 1
        segments.extend(_segment(vantage, key, span, counts[key]) for key, span in open_.items())
    return sorted(segments, key=lambda g: (g.vantage, g.from_ms, g.region or "", g.version or ""))


def _segment(
    vantage: str, key: tuple[str | None, str | None], span: list[float], count: int
) -> ServedSegment:
    return ServedSegment(
        vantage=vantage, region=key[0], version=key[1], from_ms=span[0], to_ms=span[1], samples=count
    )


# ---------------------------------------------------------------------------------------------- findings


def _finding(
    finding_id: str,
    title: str,
    *,
    measured: float | None,
    unit: str,
    threshold: float | None,
    status: Status,
    detail: str,
    evidence: EvidencePointer,
) -> Finding:
    return Finding(
        id=finding_id, title=title, measured=measured, unit=unit, threshold=threshold, status=status,
        detail=detail, evidence=evidence,
    )


def _incident_finding(drill: _Drill, detections: Sequence[Detection]) -> Finding:
    """An external drill injects nothing: what it audits is a failure someone else caused, if one was seen."""
    title = "A failure was observed to audit"
    first = _earliest(detections)
    where = f"the entrypoint or the endpoint of {drill.fault_region}"
    status: Status = "INCONCLUSIVE"
    if drill.injected is None:
        detail = f"nothing failed at {where} during the observed window: there was no failover to audit"
    elif first is None:
        detail = f"nothing failed at {where} after the anchor: there was no failover to audit"
    else:
        detail = (f"{first.target} first failed {first.seconds:.3f} s after the anchor "
                  f"(vantage {first.vantage}, seq {first.first_failure_seq})")
        status = "PASS"
    return _finding(
        "faultTookEffect", title, measured=first.seconds if first else None, unit="s", threshold=None,
        status=status, detail=detail,
        evidence=drill.pointer(
            first.target if first else drill.entrypoint, first.vantage if first else None, drill.injected,
            first.first_failure_ms if first else None, [first.first_failure_seq] if first else [],
        ),
    )


def observed_incident(spec: DrillSpec, plan: Plan, samples: Iterable[Sample]) -> tuple[float | None, float | None]:
    """The timeline of an external drill: (start, end) in epoch ms.

    It starts at ``plan.anchor_at_ms`` (the execution input's ``anchorAt``), else at the first failure seen at
    the entrypoint or at the endpoint of ``fault.region``, from any vantage. It ends when that endpoint, having
    failed, starts its first sustained run of successes (the last vantage to see it); None while it has not."""
    entrypoint = _entrypoint_target(spec, plan)
    faulted = {t.name for t in plan.targets if t.region == spec.fault.region and t is not entrypoint}
    watched = faulted | ({entrypoint.name} if entrypoint else set())
    groups = _group(samples)
    first_failure = min((s.sent_ms for (_, target), series in groups.items() if target in watched
                         for s in series if not s.ok), default=None)
    start = float(plan.anchor_at_ms) if plan.anchor_at_ms is not None else first_failure
    if start is None:
        return None, None
    ends: list[float] = []
    for (_, target), series in groups.items():
        failed = next((i for i, s in enumerate(series) if target in faulted and s.sent_ms >= start and not s.ok), None)
        if failed is None:
            continue
        run = _first_sustained_run(series, failed + 1, lambda s: s.ok, spec.probes.sustain * 1000.0)
        if run is None:
            return start, None
        ends.append(series[run].sent_ms)
    return start, max(ends, default=None)


def _fault_effect_finding(drill: _Drill, detections: Sequence[Detection]) -> Finding:
    if drill.spec.fault.kind == "external":
        return _incident_finding(drill, detections)
    title = "The fault took effect"
    faulted = [d for d in detections if d.target in drill.faulted_endpoints]
    first = _earliest(faulted)
    status: Status = "INCONCLUSIVE"
    if drill.injected is None:
        detail = "the fault was never injected"
    elif not drill.faulted_endpoints:
        detail = f"no probe target is the endpoint of the faulted region {drill.fault_region}"
    elif first is None:
        detail = (
            f"the fault never showed in the probes: the endpoint of {drill.fault_region} did not fail "
            "during the fault"
        )
    else:
        detail = (
            f"{first.target} first showed the fault {first.seconds:.3f} s after injection "
            f"(vantage {first.vantage}, seq {first.first_failure_seq})"
        )
        status = "PASS"
    return _finding(
        "faultTookEffect", title, measured=first.seconds if first else None, unit="s", threshold=None,
        status=status, detail=detail,
        evidence=drill.pointer(
            first.target if first else (drill.faulted_endpoints[0] if drill.faulted_endpoints else None),
            first.vantage if first else None,
            drill.injected, first.first_failure_ms if first else drill.restored,
            [first.first_failure_seq] if first else [],
        ),
    )


def _coverage_finding(drill: _Drill) -> Finding:
    """Enough samples to judge: per vantage, the entrypoint in the fault and recovery phases and the faulted
    endpoint in the fault phase; for canary and blue-green also the entrypoint before the injection (the
    versions that served then are what the shift is judged against)."""
    needs: list[tuple[str, str | None, PhaseName]] = []
    for vantage in drill.vantages:
        needs += [(vantage, drill.entrypoint, "fault"), (vantage, drill.entrypoint, "recovery")]
        needs += [(vantage, target, "fault") for target in drill.faulted_endpoints]
        if not drill.failover:
            needs.append((vantage, drill.entrypoint, "baseline"))
    if drill.spec.fault.kind == "external" and drill.restored is None:  # an incident not over: no recovery yet
        needs = [need for need in needs if need[2] != "recovery"]
    counts = [(v, t, p, len(drill.in_phase(v, t, p))) for v, t, p in needs]
    short = [c for c in counts if c[3] < MIN_SAMPLES]
    fewest = min((c[3] for c in counts), default=0)
    status: Status = "INCONCLUSIVE"
    if drill.entrypoint is None:
        detail = "the plan has no entrypoint target"
    elif not drill.vantages:
        detail = "no samples at all"
    elif short:
        detail = "too few samples: " + "; ".join(
            f"{t} from {v} in the {p} phase: {n} (need {MIN_SAMPLES})" for v, t, p, n in short
        )
    else:
        detail, status = f"at least {fewest} samples per target, vantage and phase judged", "PASS"
    first_short = short[0] if short else None
    return _finding(
        "sampleCoverage", "Enough samples to judge", measured=float(fewest), unit="samples",
        threshold=float(MIN_SAMPLES), status=status, detail=detail,
        evidence=drill.pointer(
            first_short[1] if first_short else drill.entrypoint, first_short[0] if first_short else None
        ),
    )


def _rto_finding(drill: _Drill, objective: float, worst: Recovery | None) -> Finding:
    title = f"Recovery time at the entrypoint within {objective:g} s"
    if not drill.failover:
        return _finding(
            "rto", title, measured=None, unit="s", threshold=objective, status="INCONCLUSIVE",
            detail=f"RTO does not apply to pattern {drill.spec.pattern} (nothing fails over); "
            "judge the revert with failbackRto",
            evidence=drill.pointer(drill.entrypoint, None),
        )
    if worst is None:
        return _finding(
            "rto", title, measured=None, unit="s", threshold=objective, status="INCONCLUSIVE",
            detail="no entrypoint samples", evidence=drill.pointer(drill.entrypoint, None),
        )
    bracket = worst.bracket
    if worst.seconds is None:
        status: Status = "FAIL"
        detail = f"no sustained recovery seen from {worst.vantage}: {worst.note}"
    elif drill.restored is not None and bracket is not None and bracket.first_success_ms >= drill.restored:
        status = "FAIL"
        detail = (
            f"no working failover: the entrypoint recovered only after the rollback, {worst.seconds:.3f} s "
            f"after the injection (from {worst.vantage})"
        )
    else:
        status = "PASS" if worst.seconds <= objective else "FAIL"
        detail = f"RTO {worst.seconds:.3f} s from {worst.vantage} ({worst.note})"
        if bracket is not None and bracket.width_ms is not None:
            detail += f"; bracket {bracket.width_ms:.1f} ms"
    return _finding(
        "rto", title, measured=worst.seconds, unit="s", threshold=objective, status=status, detail=detail,
        evidence=drill.pointer(
            drill.entrypoint, worst.vantage,
            bracket.last_failure_ms if bracket else drill.injected,
            bracket.first_success_ms if bracket else None,
            [bracket.last_failure_seq, bracket.first_success_seq] if bracket else [],
        ),
    )


def _failback_finding(drill: _Drill, objective: float, worst: Recovery | None) -> Finding:
    what = "Failback to" if drill.failover else "Traffic back on"
    title = f"{what} {_failback_target(drill)} within {objective:g} s of the rollback"
    bracket = worst.bracket if worst else None
    if worst is None or drill.restored is None:
        status: Status = "INCONCLUSIVE"
        detail = "the fault was not restored, so there is no failback to time"
    elif worst.seconds is None:
        status, detail = "FAIL", f"from {worst.vantage}: {worst.note}"
    else:
        status = "PASS" if worst.seconds <= objective else "FAIL"
        detail = f"failback {worst.seconds:.3f} s after the rollback from {worst.vantage}"
    return _finding(
        "failbackRto", title, measured=worst.seconds if worst else None, unit="s", threshold=objective,
        status=status, detail=detail,
        evidence=drill.pointer(
            drill.entrypoint, worst.vantage if worst else None,
            bracket.last_failure_ms if bracket else drill.restored,
            bracket.first_success_ms if bracket else None,
            [bracket.last_failure_seq, bracket.first_success_seq] if bracket else [],
        ),
    )


def _availability_finding(drill: _Drill, objective: float) -> Finding:
    per_vantage = [
        (v, _availability(_scheduled(drill.in_phase(v, drill.entrypoint, "fault", "recovery"))))
        for v in drill.vantages
    ]
    measured = [(v, a) for v, a in per_vantage if a is not None]
    title = f"Entrypoint availability during fault and recovery at least {objective:g}%"
    if drill.injected is None or not measured:
        return _finding(
            "availability", title, measured=None, unit="%", threshold=objective, status="INCONCLUSIVE",
            detail="no entrypoint samples after the injection",
            evidence=drill.pointer(drill.entrypoint, None),
        )
    vantage, worst = min(measured, key=lambda m: m[1])
    detail = ", ".join(f"{v}: {a:.3f}%" for v, a in measured)
    return _finding(
        "availability", title, measured=round(worst, 6), unit="%", threshold=objective,
        status="PASS" if worst >= objective else "FAIL", detail=detail,
        evidence=drill.pointer(drill.entrypoint, vantage, drill.injected, None),
    )


def _latency_finding(drill: _Drill, objective_s: float) -> Finding:
    threshold = objective_s * 1000.0
    title = f"Entrypoint p99 latency during the fault at most {threshold:g} ms"
    per_vantage = [
        (v, percentile([s.latency_ms for s in drill.in_phase(v, drill.entrypoint, "fault") if s.ok], 99))
        for v in drill.vantages
    ]
    measured = [(v, p) for v, p in per_vantage if p is not None]
    if not measured:
        return _finding(
            "p99Latency", title, measured=None, unit="ms", threshold=threshold, status="INCONCLUSIVE",
            detail="no successful entrypoint probe during the fault",
            evidence=drill.pointer(drill.entrypoint, None, drill.injected, drill.restored),
        )
    vantage, worst = max(measured, key=lambda m: m[1])
    return _finding(
        "p99Latency", title, measured=worst, unit="ms", threshold=threshold,
        status="PASS" if worst <= threshold else "FAIL",
        detail=", ".join(f"{v}: {p:.1f} ms" for v, p in measured),
        evidence=drill.pointer(drill.entrypoint, vantage, drill.injected, drill.restored),
    )


def _standby_finding(drill: _Drill) -> Finding:
    standby = {r.name for r in drill.spec.regions if r.role == "standby"}
    title = "Standby served during the fault, and only after failover"
    during = [
        s for v in drill.vantages for s in drill.in_phase(v, drill.entrypoint, "fault")
        if s.ok and s.served_by in standby
    ]
    before = [
        s for v in drill.vantages for s in drill.in_phase(v, drill.entrypoint, "baseline")
        if s.ok and s.served_by in standby
    ]
    fault_samples = sum(len(drill.in_phase(v, drill.entrypoint, "fault")) for v in drill.vantages)
    first = min(during, key=_send_order, default=None)
    status: Status
    if drill.injected is None or fault_samples == 0:
        status, detail = "INCONCLUSIVE", "no entrypoint samples during the fault"
    elif before:
        status = "FAIL"
        detail = f"the standby served {len(before)} probes before the injection (seq {before[0].seq} first)"
    elif first is None:
        status = "FAIL"
        detail = f"failover never happened: no standby region ({', '.join(sorted(standby))}) served during the fault"
    else:
        status = "PASS"
        detail = f"{first.served_by} served {len(during)} probes during the fault, from seq {first.seq}"
    return _finding(
        "standbyServedDuringFault", title, measured=float(len(during)), unit="probes", threshold=None,
        status=status, detail=detail,
        evidence=drill.pointer(
            drill.entrypoint, first.vantage if first else None,
            first.sent_ms if first else drill.injected, drill.restored, [first.seq] if first else [],
        ),
    )


def _primary_back_finding(drill: _Drill, worst: Recovery | None) -> Finding:
    region = _failback_region(drill)
    title = f"Primary {region} served again after failback"
    bracket = worst.bracket if worst else None
    status: Status
    if drill.restored is None or worst is None:
        status, detail = "INCONCLUSIVE", "the fault was not restored"
    elif worst.seconds is None:
        status, detail = "FAIL", f"from {worst.vantage}: {worst.note}"
    else:
        status, detail = "PASS", f"{region} served a sustained run {worst.seconds:.3f} s after the rollback"
    return _finding(
        "primaryServedAfterFailback", title, measured=worst.seconds if worst else None, unit="s",
        threshold=None, status=status, detail=detail,
        evidence=drill.pointer(
            drill.entrypoint, worst.vantage if worst else None, drill.restored,
            bracket.first_success_ms if bracket else None, [bracket.first_success_seq] if bracket else [],
        ),
    )


def _kept_serving_finding(drill: _Drill) -> Finding:
    threshold = drill.spec.objectives.availability
    threshold = STEADY_AVAILABILITY if threshold is None else threshold
    title = f"Entrypoint kept serving through the fault (availability at least {threshold:g}%)"
    per_vantage = [
        (v, _availability(_scheduled(drill.in_phase(v, drill.entrypoint, "fault")))) for v in drill.vantages
    ]
    measured = [(v, a) for v, a in per_vantage if a is not None]
    if drill.injected is None or not measured:
        return _finding(
            "entrypointKeptServing", title, measured=None, unit="%", threshold=threshold,
            status="INCONCLUSIVE", detail="no entrypoint samples during the fault",
            evidence=drill.pointer(drill.entrypoint, None),
        )

    def served(phase: PhaseName) -> set[str]:
        return {
            s.served_by for v in drill.vantages for s in drill.in_phase(v, drill.entrypoint, phase)
            if s.ok and s.served_by
        }

    silent = sorted(served("baseline") - {drill.fault_region} - served("fault"))
    vantage, worst = min(measured, key=lambda m: m[1])
    status: Status = "PASS" if worst >= threshold and not silent else "FAIL"
    detail = ", ".join(f"{v}: {a:.3f}%" for v, a in measured)
    if silent:
        detail += f"; surviving regions that stopped serving: {', '.join(silent)}"
    return _finding(
        "entrypointKeptServing", title, measured=round(worst, 6), unit="%", threshold=threshold,
        status=status, detail=detail,
        evidence=drill.pointer(drill.entrypoint, vantage, drill.injected, drill.restored),
    )


def _shifted_window(drill: _Drill, vantage: str) -> list[Sample]:
    """Fixed-schedule entrypoint probes from the first one that shows the shift until the fault surely ended."""
    samples = [s for s in _scheduled(drill.in_phase(vantage, drill.entrypoint, "fault")) if s.sent_ms < drill.shift_end]
    shows = _effect_predicate(drill, vantage, drill.entrypoint or "")
    first = next((i for i, s in enumerate(samples) if shows(s)), None)
    return [] if first is None else samples[first:]


def _canary_split_finding(drill: _Drill) -> Finding:
    """The observed share of each version against ``fault.weights``, within the binomial tolerance."""
    weights = drill.spec.fault.weights or {}
    window = [s for v in drill.vantages for s in _shifted_window(drill, v)]
    versioned = [s for s in window if s.version]
    canary = drill.shifted_to
    expected_share = sum(weights.get(v, 0) for v in canary) / 100.0
    title = "Observed traffic split matches the route weights"
    evidence = drill.pointer(drill.entrypoint, None, drill.injected, drill.restored)
    if not weights or len(versioned) < MIN_SPLIT_SAMPLES:
        return _finding(
            "canarySplit", title, measured=None, unit="%", threshold=round(100 * expected_share, 6),
            status="INCONCLUSIVE",
            detail=f"{len(versioned)} scheduled entrypoint probes named their version after the shift "
            f"(need {MIN_SPLIT_SAMPLES})" if weights else "the fault has no weights to compare with",
            evidence=evidence,
        )
    count = len(versioned)
    seen = Counter(s.version for s in versioned)
    off: list[str] = []
    parts: list[str] = []
    for version in sorted(set(weights) | set(seen), key=str):
        share, observed = weights.get(str(version), 0) / 100.0, seen.get(version, 0) / count
        tolerance = _tolerance(share, count)
        parts.append(f"{version}: {100 * observed:.1f}% (weight {100 * share:g}% ± {100 * tolerance:.1f})")
        if abs(observed - share) > tolerance:
            off.append(str(version))
    observed_canary = sum(seen.get(v, 0) for v in canary) / count
    detail = f"{count} probes: " + ", ".join(parts)
    if off:
        detail = f"outside the tolerance: {', '.join(off)}; " + detail
    return _finding(
        "canarySplit", title, measured=round(100 * observed_canary, 6), unit="%",
        threshold=round(100 * expected_share, 6), status="FAIL" if off else "PASS", detail=detail,
        evidence=evidence,
    )


def _canary_errors_finding(drill: _Drill) -> Finding:
    """User-facing errors during the shift are at most the canary's share (within the binomial tolerance)."""
    weights = drill.spec.fault.weights or {}
    canary = sorted(drill.shifted_to)
    share = sum(weights.get(v, 0) for v in canary) / 100.0
    window = [s for v in drill.vantages for s in _shifted_window(drill, v)]
    title = "User-facing errors bounded by the canary's share of traffic"
    evidence = drill.pointer(drill.entrypoint, None, drill.injected, drill.restored)
    if not canary or len(window) < MIN_SPLIT_SAMPLES:
        detail = (
            "no canary: every version in fault.weights served before the drill" if not canary
            else f"{len(window)} scheduled entrypoint probes after the shift (need {MIN_SPLIT_SAMPLES})"
        )
        return _finding(
            "canaryErrorsBounded", title, measured=None, unit="%", threshold=round(100 * share, 6),
            status="INCONCLUSIVE", detail=detail, evidence=evidence,
        )
    failures = [s for s in window if not s.ok]
    rate = len(failures) / len(window)
    bound = share + _tolerance(share, len(window))
    by_version = Counter(s.version or "unnamed" for s in failures)
    detail = (
        f"{len(failures)} of {len(window)} probes failed ({100 * rate:.1f}%), bound {100 * bound:.1f}% "
        f"(canary {', '.join(canary)} at {100 * share:g}%)"
    )
    if by_version:
        detail += "; failures by version: " + ", ".join(f"{v}: {n}" for v, n in sorted(by_version.items()))
    first = min(failures, key=_send_order, default=None)
    return _finding(
        "canaryErrorsBounded", title, measured=round(100 * rate, 6), unit="%", threshold=round(100 * bound, 6),
        status="PASS" if rate <= bound else "FAIL", detail=detail,
        evidence=drill.pointer(
            drill.entrypoint, first.vantage if first else None, drill.injected, drill.restored,
            [first.seq] if first else [],
        ),
    )


def _mixed_version_finding(drill: _Drill) -> Finding:
    """Blue-green cutover: from the first answer by the new version to the last answer by the old one before
    the new version held alone for ``sustain`` (later old answers are the rollback, not the cutover)."""
    old, new = drill.baseline_versions, drill.shifted_to
    objective = drill.spec.objectives.mixed_version_window
    tolerance = drill.spec.probes.interval if objective is None else objective
    title = f"Cutover with no mixed-version window over {tolerance * 1000:g} ms"
    worst: tuple[float, Sample, Sample | None] | None = None
    unfinished: list[str] = []
    for vantage in drill.vantages:
        series = [s for s in drill.in_phase(vantage, drill.entrypoint, "fault") if s.ok]
        opening = next((i for i, s in enumerate(series) if s.version in new), None)
        if opening is None:
            continue
        held = _first_sustained_run(series, opening, lambda s: s.version in new, drill.sustain_ms)
        if held is None:
            unfinished.append(vantage)
            continue
        mixed = [s for s in series[opening:held] if s.version in old]
        late_old = mixed[-1] if mixed else None
        window = 0.0 if late_old is None else (late_old.sent_ms - series[opening].sent_ms) / 1000.0
        if worst is None or window > worst[0]:
            worst = (window, series[opening], late_old)
    if unfinished or worst is None or not new:
        names = ", ".join(sorted(new)) or "none in fault.weights"
        detail = (
            f"the cutover never completed: the new version ({names}) never served alone for "
            f"{drill.spec.probes.sustain:g} s (vantage {', '.join(unfinished)})" if unfinished
            else f"the cutover never happened: no new version ({names}) answered during the fault"
        )
        return _finding(
            "mixedVersionWindow", title, measured=None, unit="s", threshold=tolerance, status="FAIL",
            detail=detail, evidence=drill.pointer(drill.entrypoint, None, drill.injected, drill.restored),
        )
    window, first_new, last_old = worst
    detail = (
        f"{first_new.version} first answered {_seconds(drill.injected or first_new.sent_ms, first_new.sent_ms):.3f} s "
        f"after the injection (vantage {first_new.vantage}); "
    )
    detail += (
        f"{last_old.version} still answered {window:.3f} s later (seq {last_old.seq})" if last_old
        else f"no {', '.join(sorted(old))} answer after that"
    )
    return _finding(
        "mixedVersionWindow", title, measured=round(window, 6), unit="s", threshold=tolerance,
        status="PASS" if window <= tolerance else "FAIL", detail=detail,
        evidence=drill.pointer(
            drill.entrypoint, first_new.vantage, first_new.sent_ms, last_old.sent_ms if last_old else None,
            [first_new.seq, last_old.seq if last_old else None],
        ),
    )


def _zero_errors_finding(drill: _Drill) -> Finding:
    title = "No user-facing error through the cutover and the rollback"
    failures = [
        s for v in drill.vantages for s in drill.in_phase(v, drill.entrypoint, "fault", "recovery") if not s.ok
    ]
    total = sum(len(drill.in_phase(v, drill.entrypoint, "fault", "recovery")) for v in drill.vantages)
    first = min(failures, key=_send_order, default=None)
    if drill.injected is None or total == 0:
        status: Status = "INCONCLUSIVE"
        detail = "no entrypoint samples after the injection"
    elif first is None:
        status, detail = "PASS", f"all {total} entrypoint probes succeeded"
    else:
        status = "FAIL"
        detail = f"{len(failures)} of {total} entrypoint probes failed, first seq {first.seq} ({_error_class(first)})"
    return _finding(
        "zeroErrors", title, measured=float(len(failures)), unit="errors", threshold=0.0, status=status,
        detail=detail,
        evidence=drill.pointer(
            drill.entrypoint, first.vantage if first else None, first.sent_ms if first else drill.injected,
            None, [first.seq] if first else [],
        ),
    )


def _reverted_finding(drill: _Drill, worst: Recovery | None) -> Finding:
    what = _failback_target(drill)
    title = f"Only {what} served again after the rollback"
    bracket = worst.bracket if worst else None
    status: Status
    if drill.restored is None or worst is None:
        status, detail = "INCONCLUSIVE", "the fault was not restored"
    elif not drill.baseline_versions:
        status, detail = "INCONCLUSIVE", "no version named itself before the injection"
    elif worst.seconds is None:
        status, detail = "FAIL", f"from {worst.vantage}: {worst.note}"
    else:
        status, detail = "PASS", f"{what} alone served a sustained run {worst.seconds:.3f} s after the rollback"
    return _finding(
        "revertedAfterRollback", title, measured=worst.seconds if worst else None, unit="s", threshold=None,
        status=status, detail=detail,
        evidence=drill.pointer(
            drill.entrypoint, worst.vantage if worst else None, drill.restored,
            bracket.first_success_ms if bracket else None, [bracket.first_success_seq] if bracket else [],
        ),
    )


def _pattern_findings(drill: _Drill, worst_failback: Recovery | None) -> list[Finding]:
    pattern = drill.spec.pattern
    if pattern == "active-passive":
        return [_standby_finding(drill), _primary_back_finding(drill, worst_failback)]
    if pattern == "active-active":
        return [_kept_serving_finding(drill)]
    if pattern == "canary":
        return [_canary_split_finding(drill), _canary_errors_finding(drill), _reverted_finding(drill, worst_failback)]
    return [_mixed_version_finding(drill), _zero_errors_finding(drill), _reverted_finding(drill, worst_failback)]


def _verdict(findings: Sequence[Finding]) -> tuple[Status, str]:
    by_id = {f.id: f for f in findings}
    for gate in ("faultTookEffect", "sampleCoverage"):
        if by_id[gate].status != "PASS":
            return "INCONCLUSIVE", by_id[gate].detail
    failed = [f.id for f in findings if f.status == "FAIL"]
    if failed:
        return "FAIL", "failed: " + ", ".join(failed)
    open_ = [f.id for f in findings if f.status == "INCONCLUSIVE"]
    if open_:
        return "INCONCLUSIVE", "not judged: " + ", ".join(open_)
    return "PASS", f"all {len(findings)} findings passed"


# ---------------------------------------------------------------------------------------------- public API


def assess(
    spec: DrillSpec,
    plan: Plan,
    samples: Iterable[Sample],
    *,
    injected_at_ms: float | None,
    restored_at_ms: float | None,
    sample_keys: Sequence[str],
) -> Assessment:
    """Judge a drill: ``injected_at_ms`` is the earliest injection, ``restored_at_ms`` the latest restore."""
    if injected_at_ms is None and restored_at_ms is not None:
        raise ValueError("restored_at_ms given without injected_at_ms")
    if injected_at_ms is not None and restored_at_ms is not None and restored_at_ms < injected_at_ms:
        raise ValueError("restored_at_ms is before injected_at_ms")
    all_samples = list(samples)
    if spec.fault.kind == "external" and injected_at_ms is None:  # nothing injected: anchor on what was observed
        injected_at_ms, restored_at_ms = observed_incident(spec, plan, all_samples)
    groups = _group(all_samples)
    entrypoint = _entrypoint_target(spec, plan)
    seen_vantages = sorted({s.vantage for s in all_samples})
    drill = _Drill(
        spec=spec,
        injected=injected_at_ms,
        restored=restored_at_ms,
        groups=groups,
        vantages=[v.name for v in plan.vantages] or seen_vantages,
        entrypoint=entrypoint.name if entrypoint else None,
        faulted_endpoints=[
            t.name for t in plan.targets if t.region == spec.fault.region and t is not entrypoint
        ],
        sample_keys=sorted(sample_keys),
        fault_wait_s=float(plan.fault_wait_seconds),
    )
    detections = _detections(drill)
    rtos = [_rto(drill, v) for v in drill.vantages] if drill.entrypoint and drill.failover else []
    failbacks = [_failback(drill, v) for v in drill.vantages] if drill.entrypoint else []
    worst_rto, worst_failback = _worst(rtos), _worst(failbacks)
    outages = [o for v in drill.vantages for o in _outages(drill, v)]
    longest = max(outages, key=lambda o: o.duration_ms, default=None)

    fault_effect = _fault_effect_finding(drill, detections)
    findings = [fault_effect, _coverage_finding(drill)]
    objectives = spec.objectives
    if objectives.rto is not None:
        findings.append(_rto_finding(drill, objectives.rto, worst_rto))
    if objectives.failback_rto is not None:
        findings.append(_failback_finding(drill, objectives.failback_rto, worst_failback))
    if objectives.availability is not None:
        findings.append(_availability_finding(drill, objectives.availability))
    if objectives.p99_latency is not None:
        findings.append(_latency_finding(drill, objectives.p99_latency))
    findings += _pattern_findings(drill, worst_failback)
    verdict, reason = _verdict(findings)

    entry_detection = _earliest(d for d in detections if d.target == drill.entrypoint)
    faulted_detection = _earliest(d for d in detections if d.target in drill.faulted_endpoints)
    return Assessment(
        drill_id=plan.drill_id,
        service=plan.service,
        pattern=spec.pattern,
        fault_region=spec.fault.region,
        entrypoint=drill.entrypoint,
        faulted_endpoints=drill.faulted_endpoints,
        injected_at_ms=injected_at_ms,
        restored_at_ms=restored_at_ms,
        phases=_phase_windows(drill, all_samples),
        stats=_all_stats(drill),
        fault_took_effect=fault_effect.status == "PASS",
        detection=detections,
        detection_seconds=faulted_detection.seconds if faulted_detection else None,
        entrypoint_detection_seconds=entry_detection.seconds if entry_detection else None,
        rto_seconds=worst_rto.seconds if worst_rto else None,
        rto_bracket=worst_rto.bracket if worst_rto else None,
        rto_note=worst_rto.note if worst_rto else (
            "no entrypoint target" if drill.failover else f"RTO does not apply to pattern {spec.pattern}"
        ),
        rto_by_vantage=rtos,
        failback_seconds=worst_failback.seconds if worst_failback else None,
        failback_bracket=worst_failback.bracket if worst_failback else None,
        failback_note=worst_failback.note if worst_failback else "no entrypoint target",
        failback_by_vantage=failbacks,
        max_outage_ms=longest.duration_ms if longest else 0.0,
        max_outage=longest,
        served_by_timeline=_timeline(drill) if drill.entrypoint else [],
        findings=findings,
        verdict=verdict,
        verdict_reason=reason,
        sample_keys=drill.sample_keys,
    )


def steady_state(
    spec: DrillSpec, samples: Iterable[Sample], *, expected_targets: Sequence[str] = ()
) -> SteadyResult:
    """Is the baseline steady? Every (vantage, target) needs at least MIN_SAMPLES samples and an availability
    of at least 99% (or the availability objective, if lower). ``expected_targets`` (the plan's target
    names) makes a target with no samples at all unsteady too."""
    objective = spec.objectives.availability
    floor = STEADY_AVAILABILITY if objective is None else min(STEADY_AVAILABILITY, objective)
    groups = _group(samples)
    vantages = sorted({v for v, _ in groups}) or ["(any vantage)"]
    targets = sorted({t for _, t in groups} | set(expected_targets))
    if not targets:
        return SteadyResult(steady=False, reason="no baseline samples")
    problems = []
    for vantage in vantages:
        for target in targets:
            series = groups.get((vantage, target), [])
            where = f"target {target} from vantage {vantage}"
            if len(series) < MIN_SAMPLES:
                problems.append(f"{where}: {len(series)} samples (need at least {MIN_SAMPLES})")
                continue
            availability = _availability(series) or 0.0
            if availability < floor:
                ok = sum(1 for s in series if s.ok)
                problems.append(
                    f"{where}: availability {availability:.2f}% < {floor:g}% ({ok}/{len(series)} ok)"
                )
    if problems:
        return SteadyResult(steady=False, reason="not steady: " + "; ".join(problems))
    return SteadyResult(
        steady=True,
        reason=f"steady: {len(targets)} targets from {len(vantages)} vantages at or above {floor:g}%",
    )
