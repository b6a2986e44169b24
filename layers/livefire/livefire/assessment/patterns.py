"""Pattern findings: what each DR pattern must show beyond its objectives (docs/architecture.md §7).

active-passive and active-active are failover patterns, judged by RTO, failback and who served; canary and
blue-green shift traffic between versions (``fault.weights``) and are judged on the split, the errors and
the revert. Versions are compared by name: the version a subset's pods report (``x-version``) must equal the
subset name used in ``fault.weights``.
"""

from __future__ import annotations

import math
from collections import Counter

from livefire.assessment.columns import Probe
from livefire.assessment.model import Finding, PhaseName, Recovery, Status, rule
from livefire.assessment.recovery import effect_predicate, failback_target
from livefire.assessment.sufficiency import combine, fewest, share_measure, share_samples_needed
from livefire.assessment.timeline import (
    DrillTimeline,
    error_class,
    first_sustained_run,
    scheduled,
    seconds_between,
    send_order,
)
from livefire.spec.assurance import DEFAULT_STEADY_AVAILABILITY

MIN_SPLIT_SAMPLES = 20
SPLIT_SIGMAS = 4.0


def _tolerance(share: float, count: int) -> float:
    """How far an observed share of ``count`` samples may stray from an expected ``share``:
    SPLIT_SIGMAS binomial standard deviations plus one sample (continuity)."""
    return SPLIT_SIGMAS * math.sqrt(share * (1.0 - share) / count) + 1.0 / count


@rule("Active-passive: PASS when a standby answered the entrypoint after the injection's answer came back and "
      "before the rollback, and none answered before the injection request was sent (answers in between count for "
      "neither).")
def _standby_finding(drill: DrillTimeline) -> Finding:
    """The standby served once the fault was surely in effect, and never before the injection request was sent
    (a probe sent while the injection was in flight is neither before nor after it)."""
    standby = {r.name for r in drill.spec.regions if r.role == "standby"}
    title = "Standby served during the fault, and only after failover"
    during = [
        s for v in drill.vantages for s in drill.in_phase(v, drill.entrypoint, "fault")
        if s.ok and s.served_by in standby and drill.surely_faulted(s)
    ]
    before = [
        s for v in drill.vantages for s in drill.in_phase(v, drill.entrypoint, "baseline")
        if s.ok and s.served_by in standby
    ]
    fault_samples = sum(len(drill.in_phase(v, drill.entrypoint, "fault")) for v in drill.vantages)
    first = min(during, key=send_order, default=None)
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
    return Finding(
        id="standbyServedDuringFault", title=title, measured=float(len(during)), unit="probes", threshold=None,
        status=status, detail=detail,
        evidence=drill.pointer(
            drill.entrypoint, first.vantage if first else None,
            first.sent_ms if first else drill.injected, drill.restored, [first.seq] if first else [],
        ),
    )


@rule("After the rollback what served before the drill serves a sustained run again, from every vantage: the "
      "primary (active-passive), only the versions that served before (canary, blue-green).")
def _served_again_finding(drill: DrillTimeline, worst: Recovery | None) -> Finding:
    """After the rollback, what served before the drill serves again: the primary (active-passive), or only the
    versions that served before the shift (canary, blue-green)."""
    what = failback_target(drill)
    if drill.failover:
        finding_id, title, alone = "primaryServedAfterFailback", f"Primary {what} served again after failback", ""
    else:
        finding_id, title, alone = "revertedAfterRollback", f"Only {what} served again after the rollback", " alone"
    bracket = worst.bracket if worst else None
    status: Status
    if drill.restored is None or worst is None:
        status, detail = "INCONCLUSIVE", "the fault was not restored"
    elif not drill.failover and not drill.baseline_versions:
        status, detail = "INCONCLUSIVE", "no version named itself before the injection"
    elif worst.cut_short:
        status, detail = "INCONCLUSIVE", f"from {worst.vantage}: {worst.note}"
    elif worst.seconds is None:
        status, detail = "FAIL", f"from {worst.vantage}: {worst.note}"
    else:
        status, detail = "PASS", f"{what}{alone} served a sustained run {worst.seconds:.3f} s after the rollback"
    return Finding(
        id=finding_id, title=title, measured=worst.seconds if worst else None, unit="s", threshold=None,
        status=status, detail=detail,
        evidence=drill.pointer(
            drill.entrypoint, worst.vantage if worst else None, drill.restored,
            bracket.first_success_ms if bracket else None, [bracket.first_success_seq] if bracket else [],
        ),
    )


@rule("Active-active: the entrypoint's availability during the fault at least the availability objective (else "
      "99%), with enough probes to judge it, and every surviving region that served before still serving.")
def _kept_serving_finding(drill: DrillTimeline) -> Finding:
    """Active-active: the entrypoint's availability during the fault (the availability objective, else 99%,
    with enough probes to judge it), and every surviving region that served before still served."""
    threshold = drill.spec.objectives.availability
    threshold = DEFAULT_STEADY_AVAILABILITY if threshold is None else threshold
    title = f"Entrypoint kept serving through the fault (availability at least {threshold:g}%)"
    measures = [
        share_measure(v, scheduled(drill.in_phase(v, drill.entrypoint, "fault")), threshold) for v in drill.vantages
    ]
    measured = [m for m in measures if m.value is not None]
    if drill.injected is None or not measured:
        return Finding(
            id="entrypointKeptServing", title=title, measured=None, unit="%", threshold=threshold,
            status="INCONCLUSIVE", detail="no entrypoint samples during the fault",
            evidence=drill.pointer(drill.entrypoint, None),
        )

    def served(phase: PhaseName) -> set[str]:
        return {
            s.served_by for v in drill.vantages for s in drill.in_phase(v, drill.entrypoint, phase)
            if s.ok and s.served_by
        }

    silent = sorted(served("baseline") - {drill.fault_region} - served("fault"))
    worst = min(measured, key=lambda m: m.value or 0.0)
    status: Status = "FAIL" if silent else combine(measures)
    detail = "; ".join(m.text for m in measures)
    if silent:
        detail += f"; surviving regions that stopped serving: {', '.join(silent)}"
    return Finding(
        id="entrypointKeptServing", title=title, measured=round(worst.value or 0.0, 6), unit="%",
        threshold=threshold, status=status, detail=detail,
        evidence=drill.pointer(drill.entrypoint, worst.vantage, drill.injected, drill.restored),
        required_samples=share_samples_needed(threshold), samples=fewest(measures),
    )


def _shifted_window(drill: DrillTimeline, vantage: str) -> list[Probe]:
    """Fixed-schedule entrypoint probes from the first one that shows the shift until the fault surely ended."""
    samples = [s for s in scheduled(drill.in_phase(vantage, drill.entrypoint, "fault")) if s.sent_ms < drill.shift_end]
    shows = effect_predicate(drill, vantage, drill.entrypoint or "")
    first = next((i for i, s in enumerate(samples) if shows(s)), None)
    return [] if first is None else samples[first:]


@rule("Canary: each version's share of the fixed-schedule entrypoint probes, from the first that shows the shift "
      "until the fault surely ended, within 4 binomial sigmas plus one probe of its weight; it needs 20 probes.")
def _canary_split_finding(drill: DrillTimeline) -> Finding:
    """The observed share of each version against ``fault.weights``, within the binomial tolerance."""
    weights = drill.spec.fault.weights or {}
    window = [s for v in drill.vantages for s in _shifted_window(drill, v)]
    versioned = [s for s in window if s.version]
    canary = drill.shifted_to
    expected_share = sum(weights.get(v, 0) for v in canary) / 100.0
    title = "Observed traffic split matches the route weights"
    evidence = drill.pointer(drill.entrypoint, None, drill.injected, drill.restored)
    if not weights or len(versioned) < MIN_SPLIT_SAMPLES:
        return Finding(
            id="canarySplit", title=title, measured=None, unit="%", threshold=round(100 * expected_share, 6),
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
    return Finding(
        id="canarySplit", title=title, measured=round(100 * observed_canary, 6), unit="%",
        threshold=round(100 * expected_share, 6), status="FAIL" if off else "PASS", detail=detail,
        evidence=evidence,
    )


@rule("Canary: the failure rate over the same probes at most the canary's weight plus that tolerance; it needs "
      "20 probes.")
def _canary_errors_finding(drill: DrillTimeline) -> Finding:
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
        return Finding(
            id="canaryErrorsBounded", title=title, measured=None, unit="%", threshold=round(100 * share, 6),
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
    first = min(failures, key=send_order, default=None)
    return Finding(
        id="canaryErrorsBounded", title=title, measured=round(100 * rate, 6), unit="%", threshold=round(100 * bound, 6),
        status="PASS" if rate <= bound else "FAIL", detail=detail,
        evidence=drill.pointer(
            drill.entrypoint, first.vantage if first else None, drill.injected, drill.restored,
            [first.seq] if first else [],
        ),
    )


@rule("Blue-green: from the first answer by the new version to the last answer by the old one before the new "
      "version held alone for probes.sustain, at most objectives.mixedVersionWindow (default one probe interval).")
def _mixed_version_finding(drill: DrillTimeline) -> Finding:
    """Blue-green cutover: from the first answer by the new version to the last answer by the old one before
    the new version held alone for ``sustain`` (later old answers are the rollback, not the cutover)."""
    old, new = drill.baseline_versions, drill.shifted_to
    objective = drill.spec.objectives.mixed_version_window
    tolerance = drill.spec.probes.interval if objective is None else objective
    title = f"Cutover with no mixed-version window over {tolerance * 1000:g} ms"
    worst: tuple[float, Probe, Probe | None] | None = None
    unfinished: list[str] = []
    for vantage in drill.vantages:
        series = [s for s in drill.in_phase(vantage, drill.entrypoint, "fault") if s.ok]
        opening = next((i for i, s in enumerate(series) if s.version in new), None)
        if opening is None:
            continue
        held = first_sustained_run(series, opening, lambda s: s.version in new, drill.sustain_ms)
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
        return Finding(
            id="mixedVersionWindow", title=title, measured=None, unit="s", threshold=tolerance, status="FAIL",
            detail=detail, evidence=drill.pointer(drill.entrypoint, None, drill.injected, drill.restored),
        )
    window, first_new, last_old = worst
    detail = (
        f"{first_new.version} first answered "
        f"{seconds_between(drill.injected or first_new.sent_ms, first_new.sent_ms):.3f} s "
        f"after the injection (vantage {first_new.vantage}); "
    )
    detail += (
        f"{last_old.version} still answered {window:.3f} s later (seq {last_old.seq})" if last_old
        else f"no {', '.join(sorted(old))} answer after that"
    )
    return Finding(
        id="mixedVersionWindow", title=title, measured=round(window, 6), unit="s", threshold=tolerance,
        status="PASS" if window <= tolerance else "FAIL", detail=detail,
        evidence=drill.pointer(
            drill.entrypoint, first_new.vantage, first_new.sent_ms, last_old.sent_ms if last_old else None,
            [first_new.seq, last_old.seq if last_old else None],
        ),
    )


@rule("Blue-green: no entrypoint probe failed from the injection to the end of the recovery phase.")
def _zero_errors_finding(drill: DrillTimeline) -> Finding:
    title = "No user-facing error through the cutover and the rollback"
    failures = [
        s for v in drill.vantages for s in drill.in_phase(v, drill.entrypoint, "fault", "recovery") if not s.ok
    ]
    total = sum(len(drill.in_phase(v, drill.entrypoint, "fault", "recovery")) for v in drill.vantages)
    first = min(failures, key=send_order, default=None)
    if drill.injected is None or total == 0:
        status: Status = "INCONCLUSIVE"
        detail = "no entrypoint samples after the injection"
    elif first is None:
        status, detail = "PASS", f"all {total} entrypoint probes succeeded"
    else:
        status = "FAIL"
        detail = f"{len(failures)} of {total} entrypoint probes failed, first seq {first.seq} ({error_class(first)})"
    return Finding(
        id="zeroErrors", title=title, measured=float(len(failures)), unit="errors", threshold=0.0, status=status,
        detail=detail,
        evidence=drill.pointer(
            drill.entrypoint, first.vantage if first else None, first.sent_ms if first else drill.injected,
            None, [first.seq] if first else [],
        ),
    )


def pattern_findings(drill: DrillTimeline, worst_failback: Recovery | None) -> list[Finding]:
    """The findings of the drill's pattern, in report order."""
    pattern = drill.spec.pattern
    if pattern == "active-passive":
        return [_standby_finding(drill), _served_again_finding(drill, worst_failback)]
    if pattern == "active-active":
        return [_kept_serving_finding(drill)]
    served_again = _served_again_finding(drill, worst_failback)
    if pattern == "canary":
        return [_canary_split_finding(drill), _canary_errors_finding(drill), served_again]
    return [_mixed_version_finding(drill), _zero_errors_finding(drill), served_again]
