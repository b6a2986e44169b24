"""Is the baseline steady? The gate before any fault is injected (docs/architecture.md §7)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from livefire.assessment.timeline import MIN_SAMPLES, availability_of, group_samples
from livefire.contracts import Sample, SteadyResult
from livefire.spec import DrillSpec

STEADY_AVAILABILITY = 99.0


def steady_state(
    spec: DrillSpec, samples: Iterable[Sample], *, expected_targets: Sequence[str] = ()
) -> SteadyResult:
    """Is the baseline steady? Every (vantage, target) needs at least MIN_SAMPLES samples and an availability
    of at least 99% (or the availability objective, if lower). ``expected_targets`` (the plan's target
    names) makes a target with no samples at all unsteady too."""
    objective = spec.objectives.availability
    floor = STEADY_AVAILABILITY if objective is None else min(STEADY_AVAILABILITY, objective)
    groups = group_samples(samples)
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
            availability = availability_of(series) or 0.0
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
