"""Recovery math: detection, RTO, failback, outages and who served the entrypoint (docs/architecture.md §7).

Where several vantages probe the same target, the headline value is the worst vantage's (``slowest``), and
the per-vantage values are kept beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from livefire.assessment.columns import Probe
from livefire.assessment.model import Bracket, Detection, Outage, Recovery, ServedSegment
from livefire.assessment.timeline import (
    DrillTimeline,
    entrypoint_target,
    first_sustained_run,
    percentile,
    seconds_between,
)
from livefire.contracts import Plan
from livefire.spec import DrillSpec


def effect_predicate(drill: DrillTimeline, vantage: str, target: str) -> Callable[[Probe], bool]:
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


def detections_of(drill: DrillTimeline) -> list[Detection]:
    detections: list[Detection] = []
    if drill.injected is None:
        return detections
    for target in [*drill.faulted_endpoints, *([drill.entrypoint] if drill.entrypoint else [])]:
        for vantage in drill.vantages:
            shows = (
                effect_predicate(drill, vantage, target)
                if target in drill.faulted_endpoints
                else (lambda s: not s.ok)
            )
            first = next((s for s in drill.in_phase(vantage, target, "fault") if shows(s)), None)
            detections.append(
                Detection(
                    vantage=vantage,
                    target=target,
                    seconds=None if first is None else seconds_between(drill.injected, drill.fault_acts_from(first)),
                    first_failure_ms=None if first is None else drill.fault_acts_from(first),
                    first_failure_seq=None if first is None else first.seq,
                )
            )
    return detections


def earliest(detections: Iterable[Detection]) -> Detection | None:
    seen = [d for d in detections if d.seconds is not None]
    return min(seen, key=lambda d: d.seconds or 0.0, default=None)


def _unrecovered(vantage: str, target: str, note: str) -> Recovery:
    return Recovery(vantage=vantage, target=target, seconds=None, bracket=None, note=note)


def rto_of(drill: DrillTimeline, vantage: str) -> Recovery:
    target = drill.entrypoint or ""
    series = drill.series(vantage, drill.entrypoint)
    if drill.injected is None:
        return _unrecovered(vantage, target, "no fault was injected")
    fault_indices = [i for i, s in enumerate(series) if drill.phase(s) == "fault"]
    if not fault_indices:
        return _unrecovered(vantage, target, "no entrypoint samples during the fault")
    first_failure = next((i for i in fault_indices if not series[i].ok), None)
    if first_failure is None:
        note = "no outage observed: the entrypoint never failed during the fault"
        by_faulted = sum(
            1 for i in fault_indices if series[i].served_by == drill.fault_region and drill.surely_faulted(series[i])
        )
        if by_faulted:
            note += f", but the faulted region {drill.fault_region} served {by_faulted} of its probes then"
        return Recovery(vantage=vantage, target=target, seconds=None, bracket=None, note=note, no_outage=True)
    start = first_sustained_run(series, first_failure + 1, drill.healthy, drill.sustain_ms)
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
        seconds=seconds_between(drill.injected, run.sent_ms),
        bracket=Bracket(
            last_failure_ms=last_bad.sent_ms,
            last_failure_seq=last_bad.seq,
            first_success_ms=run.sent_ms,
            first_success_seq=run.seq,
            first_success_ended_ms=run.ended_ms,
        ),
        note=note,
    )


def failback_region(drill: DrillTimeline) -> str:
    if drill.spec.pattern == "active-passive":
        primary = next((r.name for r in drill.spec.regions if r.role == "primary"), None)
        return primary or drill.fault_region
    return drill.fault_region


def failback_target(drill: DrillTimeline) -> str:
    """What the failback waits for, in words."""
    if drill.failover:
        return failback_region(drill)
    versions = sorted(drill.baseline_versions)
    return f"version {', '.join(versions)}" if versions else "the versions that served before the drill"


def _failback_tests(drill: DrillTimeline) -> tuple[Callable[[Probe], bool], Callable[[Probe], bool] | None]:
    """(a sample that counts as failed back, what the first one of the run must be)."""
    region = failback_region(drill)
    if drill.spec.pattern == "active-passive":
        return (lambda s: s.ok and s.served_by == region), None
    if drill.failover:
        return (lambda s: s.ok), (lambda s: s.served_by == region)
    versions = drill.baseline_versions
    return (lambda s: s.ok and s.version in versions), None


def failback_of(drill: DrillTimeline, vantage: str) -> Recovery:
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
    start = first_sustained_run(series, begin, accept, drill.sustain_ms, head=head)
    what = failback_target(drill)
    observed = seconds_between(drill.restored, series[-1].sent_ms)
    # A run opening by the objective is seen whole by then + sustain: a window that ended sooner, inside a run,
    # saw neither a failback nor its absence.
    judged_after = (drill.spec.objectives.failback_rto or 0.0) + drill.spec.probes.sustain
    if start is None and observed < judged_after and _ends_inside_a_run(series, begin, accept, head):
        return Recovery(
            vantage=vantage, target=target, seconds=None, bracket=None, cut_short=True,
            note=f"the window ended {observed:.3f} s after the rollback, inside a run of {what} serving shorter than "
                 f"the {drill.spec.probes.sustain:g} s that counts as sustained: not seen either way",
        )
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
        seconds=seconds_between(drill.restored, run.sent_ms),
        bracket=Bracket(
            last_failure_ms=last_bad.sent_ms if last_bad else drill.restored,
            last_failure_seq=last_bad.seq if last_bad else None,
            first_success_ms=run.sent_ms,
            first_success_seq=run.seq,
            first_success_ended_ms=run.ended_ms,
        ),
        note=f"{what} serving again",
    )


def _ends_inside_a_run(series: Sequence[Probe], begin: int, accept: Callable[[Probe], bool],
                       head: Callable[[Probe], bool] | None) -> bool:
    """Whether the window closed while a run that could still have become sustained was going: the probes after
    ``begin`` end with accepted ones, among which one may open a run."""
    if len(series) <= begin or not accept(series[-1]):
        return False
    opening = len(series) - 1
    while opening > begin and accept(series[opening - 1]):
        opening -= 1
    return head is None or any(head(s) for s in series[opening:])


def outage_observed(drill: DrillTimeline) -> bool | None:
    """Whether any vantage saw the entrypoint fail during the fault; None when RTO does not apply or the
    entrypoint was not probed during the fault."""
    if not drill.failover or drill.injected is None:
        return None
    during = [s for v in drill.vantages for s in drill.in_phase(v, drill.entrypoint, "fault")]
    return any(not s.ok for s in during) if during else None


def slowest(recoveries: Sequence[Recovery], limit: float | None = None) -> Recovery | None:
    """The vantage that recovered last; a vantage that never recovered is the worst of all, and one that saw no
    outage at all the best. A vantage whose window was cut short was not judged: it outranks every timed one
    (the finding cannot PASS without it) except one already slower than ``limit`` (the finding FAILs anyway)."""
    if not recoveries:
        return None
    never = next((r for r in recoveries if r.seconds is None and not r.no_outage and not r.cut_short), None)
    timed = [r for r in recoveries if r.seconds is not None]
    late = max(timed, key=lambda r: r.seconds or 0.0, default=None)
    if never is not None:
        return never
    if late is not None and limit is not None and (late.seconds or 0.0) > limit:
        return late
    cut_short = next((r for r in recoveries if r.cut_short), None)
    return cut_short or late or recoveries[0]


def outages_of(drill: DrillTimeline, vantage: str) -> list[Outage]:
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


def served_timeline(drill: DrillTimeline) -> list[ServedSegment]:
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


def observed_incident(spec: DrillSpec, plan: Plan, groups: Mapping[tuple[str, str], Sequence[Probe]]
                      ) -> tuple[float | None, float | None]:
    """The timeline of an external drill: (start, end) in epoch ms.

    It starts at ``plan.anchor_at_ms`` (the execution input's ``anchorAt``), else at the first failure seen at
    the entrypoint or at the endpoint of ``fault.region``, from any vantage. It ends when that endpoint, having
    failed, starts its first sustained run of successes (the last vantage to see it); None while it has not."""
    entrypoint = entrypoint_target(spec, plan)
    faulted = {t.name for t in plan.targets if t.region == spec.fault.region and t is not entrypoint}
    watched = faulted | ({entrypoint.name} if entrypoint else set())
    first_failure = min((s.sent_ms for (_, target), series in groups.items() if target in watched
                         for s in series if not s.ok), default=None)
    start = float(plan.anchor_at_ms) if plan.anchor_at_ms is not None else first_failure
    if start is None:
        return None, None
    ends: list[float] = []
    for (_, target), series in groups.items():
        if target not in faulted:
            continue
        failed = next((i for i, s in enumerate(series) if s.sent_ms >= start and not s.ok), None)
        if failed is None:
            continue
        run = first_sustained_run(series, failed + 1, lambda s: s.ok, spec.probes.sustain * 1000.0)
        if run is None:
            return start, None
        ends.append(series[run].sent_ms)
    return start, max(ends, default=None)
