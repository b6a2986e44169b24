"""Steady state: the gate before any fault is injected, and the steadyAfterRollback finding at the end of the
recovery phase (docs/architecture.md §7). Both judge the criteria of the spec's ``steady`` section.

Rates and runs count fixed-schedule probes only (watch probes crowd around transitions); a timed-out probe
counts as a latency of at least the probe timeout.

- The baseline is steady when every vantage saw every target with at least ``MIN_SAMPLES`` probes, an
  availability at or above ``steady.availability`` (default 99%, or the availability objective when lower), no
  more than ``steady.maxConsecutiveErrors`` failures in a row (default 2) and, when ``steady.p99Latency`` is
  set, a p99 latency at or below it (nearest rank: the slowest probe when there are fewer than 100).
- steadyAfterRollback judges, from every vantage, the entrypoint over the last third of the recovery phase
  (``steady.window`` to set the length): the same criteria (except that a window shorter than the floor's
  resolution, ⌈100 / (100 - floor)⌉ probes, tolerates one failed probe), a median latency of at most the
  baseline's median plus the larger of itself and ``steady.latencyTolerance`` (default 50 ms), and for
  active-passive the window's last ``probes.sustain`` answered by the primary (a failback inside the window is
  fine once it holds).
"""

from __future__ import annotations

from collections.abc import Sequence

from livefire.assessment.columns import Probe, SampleColumns
from livefire.assessment.model import Finding, Status, rule
from livefire.assessment.sufficiency import latency_quantile, share_samples_needed
from livefire.assessment.timeline import (
    MIN_SAMPLES,
    DrillTimeline,
    availability_of,
    scheduled,
)
from livefire.contracts import SteadyResult
from livefire.spec import DrillSpec, SteadyState

AFTER_ROLLBACK_SHARE = 1.0 / 3.0  # steadyAfterRollback judges the last third of the recovery phase by default


def _longest_failure_run(series: Sequence[Probe]) -> tuple[int, Probe | None]:
    """The longest run of consecutive failures and the sample that opened it."""
    longest, opener, run, start = 0, None, 0, None
    for sample in series:
        if sample.ok:
            run = 0
            continue
        run, start = run + 1, sample if run == 0 else start
        if run > longest:
            longest, opener = run, start
    return longest, opener


def _criteria_problems(
    series: Sequence[Probe], criteria: SteadyState, floor: float, timeout_ms: float, *, short_window_slack: bool
) -> list[str]:
    """What keeps ``series`` (fixed-schedule probes in send order) from being steady, each naming its criterion.
    With ``short_window_slack``, a series shorter than the floor's resolution tolerates one failed probe."""
    if len(series) < MIN_SAMPLES:
        return [f"{len(series)} probes (need at least {MIN_SAMPLES})"]
    problems = []
    availability = availability_of(series) or 0.0
    failed = sum(1 for s in series if not s.ok)
    slack = short_window_slack and len(series) < share_samples_needed(floor) and failed <= 1
    if availability < floor and not slack:
        ok = sum(1 for s in series if s.ok)
        problems.append(f"steady.availability: {availability:.2f}% < {floor:g}% ({ok}/{len(series)} ok)")
    run, opener = _longest_failure_run(series)
    if run > criteria.max_consecutive_errors and opener is not None:
        problems.append(f"steady.maxConsecutiveErrors: {run} failed probes in a row from seq {opener.seq} "
                        f"(at most {criteria.max_consecutive_errors})")
    if criteria.p99_latency is not None:
        p99 = latency_quantile(series, 99, timeout_ms)
        limit = criteria.p99_latency * 1000.0
        if p99 is not None and p99.value_ms > limit:
            problems.append(f"steady.p99Latency: p99 {p99.value_ms:.1f} ms > {limit:g} ms")
    return problems


def steady_state(
    spec: DrillSpec, samples: SampleColumns, *, expected_targets: Sequence[str] = ()
) -> SteadyResult:
    """Is the baseline steady (see the module docstring)? ``expected_targets`` (the plan's target names) makes a
    target with no samples at all unsteady too. The reason names every criterion that failed, and where."""
    criteria = spec.steady or SteadyState()
    floor = criteria.availability_floor(spec.objectives.availability)
    groups = samples.groups
    vantages = sorted({v for v, _ in groups}) or ["(any vantage)"]
    targets = sorted({t for _, t in groups} | set(expected_targets))
    if not targets:
        return SteadyResult(steady=False, reason="no baseline samples")
    problems = [
        f"target {target} from vantage {vantage}: {problem}"
        for vantage in vantages for target in targets
        for problem in _criteria_problems(
            scheduled(groups.get((vantage, target), ())), criteria, floor, spec.probes.timeout * 1000.0,
            short_window_slack=False,
        )
    ]
    if problems:
        return SteadyResult(steady=False, reason="not steady: " + "; ".join(problems))
    return SteadyResult(
        steady=True,
        reason=f"steady: {len(targets)} targets from {len(vantages)} vantages at or above {floor:g}%, "
        f"at most {criteria.max_consecutive_errors} failures in a row",
    )


def after_rollback_window(drill: DrillTimeline, vantage: str) -> list[Probe]:
    """The entrypoint's fixed-schedule probes over the last part of the recovery phase seen by ``vantage``."""
    recovery = scheduled(drill.in_phase(vantage, drill.entrypoint, "recovery"))
    if drill.restored is None or not recovery:
        return []
    criteria = drill.spec.steady or SteadyState()
    last = recovery[-1].sent_ms
    length = criteria.window * 1000.0 if criteria.window is not None else (last - drill.restored) * AFTER_ROLLBACK_SHARE
    return [s for s in recovery if s.sent_ms >= last - length]


def _after_rollback_problems(drill: DrillTimeline, vantage: str, window: Sequence[Probe]) -> list[str]:
    spec = drill.spec
    criteria = spec.steady or SteadyState()
    timeout_ms = spec.probes.timeout * 1000.0
    problems = _criteria_problems(window, criteria, criteria.availability_floor(spec.objectives.availability),
                                  timeout_ms, short_window_slack=True)
    baseline = latency_quantile(scheduled(drill.in_phase(vantage, drill.entrypoint, "baseline")), 50, timeout_ms)
    median = latency_quantile(window, 50, timeout_ms)
    if baseline is not None and median is not None:
        limit = baseline.value_ms + max(baseline.value_ms, criteria.latency_tolerance * 1000.0)
        if median.value_ms > limit:
            problems.append(f"median latency {median.value_ms:.1f} ms > {limit:.1f} ms "
                            f"(baseline median {baseline.value_ms:.1f} ms)")
    if spec.pattern == "active-passive":
        primaries = {r.name for r in spec.regions if r.role == "primary"}
        answers = [s for s in window if s.ok and s.sent_ms >= window[-1].sent_ms - drill.sustain_ms]
        others = [s for s in answers if s.served_by not in primaries]
        if others or not answers:
            last = f" (last seq {others[-1].seq}, {others[-1].served_by or 'an unnamed region'})" if others else ""
            problems.append(f"the primary does not serve again: {len(others)} of the {len(answers)} answers in the "
                            f"last {spec.probes.sustain:g} s came from elsewhere{last}")
    return problems


@rule("Over the last third of the recovery phase (steady.window), every vantage sees the entrypoint steady "
      "again: the steady availability floor, at most steady.maxConsecutiveErrors failures in a row, a median latency "
      "at most the baseline's plus the larger of itself and steady.latencyTolerance, steady.p99Latency if set, and "
      "for active-passive the window's last probes.sustain answered by the primary.")
def steady_after_rollback_finding(drill: DrillTimeline) -> Finding:
    """At the end of the recovery phase every vantage sees the entrypoint steady again (module docstring)."""
    title = "Steady again at the end of the recovery phase"
    floor = (drill.spec.steady or SteadyState()).availability_floor(drill.spec.objectives.availability)
    windows = {v: after_rollback_window(drill, v) for v in drill.vantages}
    verdicts: list[tuple[str, Status, str]] = []
    for vantage, window in windows.items():
        span = f"{vantage}: {len(window)} probes from {(window[0].sent_ms - (drill.restored or 0)) / 1000:.3f} s " \
            "after the rollback" if window else f"{vantage}: no probes"
        if len(window) < MIN_SAMPLES:
            verdicts.append((vantage, "INCONCLUSIVE", f"{span} (need {MIN_SAMPLES})"))
            continue
        problems = _after_rollback_problems(drill, vantage, window)
        verdicts.append((vantage, "FAIL" if problems else "PASS", f"{span}: " + ("; ".join(problems) or "steady")))
    status: Status = "INCONCLUSIVE"
    if drill.restored is None:
        detail = "the fault was not restored"
    elif not verdicts:
        detail = "no vantage"
    else:
        statuses = {s for _, s, _ in verdicts}
        status = "FAIL" if "FAIL" in statuses else "INCONCLUSIVE" if "INCONCLUSIVE" in statuses else "PASS"
        detail = "; ".join(text for _, _, text in verdicts)
    worst_vantage = next((v for v, s, _ in verdicts if s == status), None)
    worst = windows.get(worst_vantage or "", [])
    availabilities = [a for a in (availability_of(w) for w in windows.values()) if a is not None]
    return Finding(
        id="steadyAfterRollback", title=title, measured=round(min(availabilities), 6) if availabilities else None,
        unit="%", threshold=floor, status=status, detail=detail,
        evidence=drill.pointer(drill.entrypoint, worst_vantage, worst[0].sent_ms if worst else drill.restored,
                               worst[-1].sent_ms if worst else None),
        required_samples=MIN_SAMPLES, samples=min((len(w) for w in windows.values()), default=0),
    )
