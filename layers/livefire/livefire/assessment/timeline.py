"""The sample timeline: samples grouped by vantage and target in send order (``columns.SampleColumns``), cut
into phases by the injection and the restore, and the statistics of each group (docs/architecture.md §7).
Each series' phases are worked out once and kept as index views, so no finding filters a series again.

Samples are ordered by send time, so a slow answer never reorders the timeline. Rates and shares
(availability, a canary's split and error share) count only fixed-schedule probes: watch (burst) probes crowd
around transitions by design and would weigh outages more than their duration. Times (RTO, brackets,
failback, mixed-version windows) use every probe.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat

from livefire.assessment.columns import Probe, Rows, SampleColumns, Series, served_label
from livefire.assessment.model import PHASES, EvidencePointer, Latency, PhaseName, PhaseWindow, TargetStats
from livefire.contracts import Plan, ProbeTarget
from livefire.spec import DrillSpec

ENTRYPOINT_ROLE = "entrypoint"
MIN_SAMPLES = 3
FAILOVER_PATTERNS = ("active-passive", "active-active")


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least q% of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def send_order(sample: Probe) -> tuple[float, float, int]:
    return (sample.sent_ms, sample.scheduled_ms, sample.seq)


def _error_label(error: str | None, status: int | None) -> str:
    if error:
        return error
    if status is not None:
        return f"http-{status}"
    return "unknown"


def error_class(sample: Probe) -> str:
    return _error_label(sample.error, sample.status)


def availability_of(samples: Sequence[Probe]) -> float | None:
    if not samples:
        return None
    return 100.0 * sum(1 for s in samples if s.ok) / len(samples)


def scheduled(samples: Iterable[Probe]) -> list[Probe]:
    """The fixed-schedule probes only (see the module docstring)."""
    return [s for s in samples if not s.burst]


def _labelled(counts: Counter[tuple[int, int]], label: Callable[[int, int], str]) -> dict[str, int]:
    """Counts of code pairs as counts of their labels (two pairs may share a label), sorted by label."""
    labelled: Counter[str] = Counter()
    for pair, count in counts.items():
        labelled[label(*pair)] += count
    return dict(sorted(labelled.items()))


def _stats(phase: PhaseName, series: Series, indices: Sequence[int]) -> TargetStats:
    """The statistics of the samples ``indices`` of ``series``, read from its columns."""
    ok_column, tables = series.ok, series.tables
    good = [i for i in indices if ok_column[i]]
    latencies = [series.latency_ms[i] for i in good]
    bad = [i for i in indices if not ok_column[i]]
    errors = Counter(zip((series.error[i] for i in bad), (series.status[i] for i in bad), strict=True))
    served = Counter(zip((series.served_by[i] for i in good), (series.version[i] for i in good), strict=True))
    return TargetStats(
        phase=phase,
        vantage=series.vantage,
        target=series.target,
        sent=len(indices),
        ok=len(good),
        availability_pct=100.0 * len(good) / len(indices) if indices else None,
        errors=_labelled(errors, lambda e, s: _error_label(tables.error.names[e], None if s < 0 else s)),
        latency=Latency(
            p50_ms=percentile(latencies, 50),
            p95_ms=percentile(latencies, 95),
            p99_ms=percentile(latencies, 99),
        ),
        served_by=_labelled(
            served, lambda r, v: served_label(tables.served_by.names[r] or "unknown", tables.version.names[v])
        ),
    )


def first_sustained_run(
    series: Sequence[Probe],
    start: int,
    accept: Callable[[Probe], bool],
    sustain_ms: float,
    head: Callable[[Probe], bool] | None = None,
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


def entrypoint_target(spec: DrillSpec, plan: Plan) -> ProbeTarget | None:
    by_role = next((t for t in plan.targets if t.role == ENTRYPOINT_ROLE), None)
    return by_role or next((t for t in plan.targets if t.url == spec.entrypoint and t.region is None), None)


def phase_code(ended_ms: float, injected_ms: float, restored_ms: float) -> int:
    """The in-flight rule: a change cannot act on a probe whose answer came back before the change's request
    left, and may act on one still in flight. So a probe sent just before the injection but answered after it (a
    slow server, a busy machine) belongs to the fault phase. The phase of a probe that ended at ``ended_ms``, as an
    index into ``PHASES``, given the injection's and the restore's sends (infinity for a change not made)."""
    return 0 if ended_ms < injected_ms else 1 if ended_ms < restored_ms else 2


def seconds_between(from_ms: float, to_ms: float) -> float:
    return round((to_ms - from_ms) / 1000.0, 6)


@dataclass
class DrillTimeline:
    """What every computation needs: the spec, the timeline and the samples grouped by vantage and target
    (``SampleColumns.groups``).

    The phases are cut at the instants the requests were *sent* (``injected``, ``restored``): a change cannot
    take effect before its request leaves, so the fault phase holds every sample the fault can have touched (every
    probe still in flight when the injection was sent), and recovery and detection times count from the send.
    ``injection_answered`` and ``restore_answered`` close the brackets: a sample sent inside one is neither before
    nor after that change."""

    spec: DrillSpec
    injected: float | None
    restored: float | None
    groups: Mapping[tuple[str, str], Series]
    vantages: list[str]
    entrypoint: str | None
    faulted_endpoints: list[str]
    sample_keys: list[str]
    fault_wait_s: float = math.inf
    injection_answered: float | None = None
    restore_answered: float | None = None
    _phases: dict[tuple[str, str], bytearray] = field(default_factory=dict, init=False, repr=False, compare=False)
    _views: dict[tuple[str, str, tuple[PhaseName, ...]], Rows] = field(
        default_factory=dict, init=False, repr=False, compare=False)

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
        """Until when the fault surely held: the restore request's send, and never later than the workflow's
        fault wait after the injection (the rollback cannot start before that wait is over)."""
        if self.injected is None:
            return -math.inf
        held = self.injected + self.fault_wait_s * 1000.0
        return held if self.restored is None else min(held, self.restored)

    @property
    def shifted_to(self) -> set[str]:
        """The versions the traffic shift sends traffic to that did not serve before it."""
        weights = self.spec.fault.weights or {}
        return {v for v, w in weights.items() if w > 0} - self.baseline_versions

    def phase(self, sample: Probe) -> PhaseName:
        """The latest change that can have touched the probe (``phase_code``)."""
        return PHASES[phase_code(sample.ended_ms, *self._cuts())]

    def _cuts(self) -> tuple[float, float]:
        """The injection's and the restore's sends, infinity for a change that was not made."""
        return (math.inf if self.injected is None else self.injected,
                math.inf if self.restored is None else self.restored)

    def fault_acts_from(self, sample: Probe) -> float:
        """The earliest instant the fault can have acted on a probe of the fault phase (the in-flight rule of
        ``phase_code``): its send, or the injection's for a probe already in flight when the injection was sent."""
        return max(sample.sent_ms, self.injected or sample.sent_ms)

    def surely_faulted(self, sample: Probe) -> bool:
        """Sent once the injection's answer was back (the fault surely in effect) and before the restore was
        asked for; a sample inside the injection's bracket is neither before nor after it."""
        answered = self.injection_answered if self.injection_answered is not None else self.injected
        return answered is not None and sample.sent_ms >= answered and self.phase(sample) == "fault"

    def series(self, vantage: str, target: str | None) -> Sequence[Probe]:
        return () if target is None else self.groups.get((vantage, target), ())

    def phase_codes(self, series: Series) -> bytearray:
        """The phase of every sample of ``series`` (an index into ``PHASES``), worked out once."""
        key = (series.vantage, series.target)
        codes = self._phases.get(key)
        if codes is None:
            injected, restored = self._cuts()
            codes = self._phases[key] = bytearray(map(phase_code, series.ended_ms, repeat(injected), repeat(restored)))
        return codes

    def in_phase(self, vantage: str, target: str | None, *phases: PhaseName) -> Sequence[Probe]:
        """The samples of the phases, in send order (a view kept for the next finding that asks)."""
        series = None if target is None else self.groups.get((vantage, target))
        if series is None:
            return ()
        key = (vantage, series.target, phases)
        view = self._views.get(key)
        if view is None:
            wanted = {PHASES.index(phase) for phase in phases}
            view = self._views[key] = Rows(series, array("q", (
                i for i, code in enumerate(self.phase_codes(series)) if code in wanted)))
        return view

    def healthy(self, sample: Probe) -> bool:
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


def phase_windows(drill: DrillTimeline, samples: SampleColumns) -> list[PhaseWindow]:
    first, last = samples.span()
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


def all_stats(drill: DrillTimeline) -> list[TargetStats]:
    stats = []
    for _, series in sorted(drill.groups.items()):
        codes = drill.phase_codes(series)
        for index, phase in enumerate(PHASES):
            in_phase = [i for i, code in enumerate(codes) if code == index]
            if in_phase or phase == "baseline" or drill.injected is not None:
                stats.append(_stats(phase, series, in_phase))
    return stats
