"""What the live view knows of a running drill, and how it learns it (docs/architecture.md §6).

Three sources, the same locally and on AWS: the execution's history events (which state the drill is in), the
drill's fault records (read through ``DrillStore``: injected, restored, refused) and the probe sample chunks in
the evidence bucket. The probes flush a chunk every few seconds (``SampleChunkWriter``'s ``max_age_s``), so the
view trails the probes by that much. ``ChunkFeed`` keeps the S3 requests bounded: per poll one listing per
vantage, starting after the last chunk it read (a vantage's chunks land in key order: its baseline window ends
before its drill window starts, and each window's chunks are written one after the other), then one GET per
new chunk, at most ``max_chunks`` of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from livefire.artifacts import evidence_prefix
from livefire.assessment.columns import served_label
from livefire.assessment.timeline import error_class
from livefire.contracts import Sample
from livefire.egress import Reach
from livefire.planning import default_vantages, probe_targets
from livefire.probing.chunks import decode_chunk
from livefire.spec import DrillSpec
from livefire.store import FaultRecord

# approval: waiting at the go/no-go gate (spec approval), as long as it takes
LivePhase = Literal["planning", "baseline", "approval", "lead", "fault", "recovery", "concluding"]
LIVE_PHASES: tuple[LivePhase, ...] = ("planning", "baseline", "approval", "lead", "fault", "recovery", "concluding")
ProbePhase = Literal["baseline", "lead", "fault", "recovery"]
PROBE_PHASES: tuple[ProbePhase, ...] = ("baseline", "lead", "fault", "recovery")
# The states whose entry starts a phase (the fault and the recovery start at the injection and the restore,
# taken from the fault records when the drill has them).
PHASE_OF_STATE: dict[str, LivePhase] = {
    "Baseline": "baseline", "AwaitApproval": "approval", "Drill": "lead", "FaultWindow": "fault",
    "Assess": "concluding", "EmergencyRollback": "concluding", "RecordFailure": "concluding",
}
FAULT_WORDS = {
    "PENDING": "injecting", "INJECTED": "injected", "RESTORED": "restored", "CONFLICT": "restore refused",
    "FAILED": "restore failed", "SKIPPED": "not injected",
}
MAX_CHUNKS_PER_POLL = 16


class FaultSource(Protocol):
    """What the feed needs of ``DrillStore``."""

    def faults_of(self, drill_id: str) -> list[FaultRecord]: ...


def who_served(sample: Sample) -> str | None:
    """Who served an answer, named as the report's served-by tables name it; None when it named nobody."""
    return None if sample.served_by is None else served_label(sample.served_by, sample.version)


def status_text(sample: Sample) -> str:
    """The HTTP status of an answer, or the error class of a failure (http-503, timeout, ...)."""
    return str(sample.status) if sample.ok and sample.status is not None else error_class(sample)


@dataclass
class Series:
    """What one vantage saw of one target: the send time and outcome of each fixed-schedule probe (what
    availability counts, as in the assessment) per window, and the latest sample of any kind."""

    baseline: list[tuple[float, bool]] = field(default_factory=list)
    drill: list[tuple[float, bool]] = field(default_factory=list)
    last: Sample | None = None

    def add(self, window: str, sample: Sample) -> None:
        if not sample.burst:
            (self.baseline if window == "baseline" else self.drill).append((sample.sent_ms, sample.ok))
        if self.last is None or sample.sent_ms >= self.last.sent_ms:
            self.last = sample


@dataclass(frozen=True)
class Availability:
    ok: int
    sent: int

    @property
    def percent(self) -> float | None:
        return 100.0 * self.ok / self.sent if self.sent else None


@dataclass
class DrillWatch:
    """The live state of one drill: its phase clock, its faults and every (vantage, target) series."""

    spec: DrillSpec
    drill_id: str
    phase_started_ms: dict[LivePhase, float] = field(default_factory=dict)
    faults: list[FaultRecord] = field(default_factory=list)
    series: dict[tuple[str, str], Series] = field(default_factory=dict)
    chunks_read: int = 0
    problem: str | None = None
    served_by_sandbox: frozenset[str] = frozenset()  # the host:ports the local sandbox serves (none on AWS)
    reaches: dict[str, Reach] = field(default_factory=dict)  # target name -> real or sandbox

    def __post_init__(self) -> None:
        for vantage in default_vantages(self.spec):
            for target in probe_targets(self.spec, self.served_by_sandbox):
                self.series.setdefault((vantage.name, target.name), Series())
                self.reaches[target.name] = target.reach

    @property
    def phase(self) -> LivePhase:
        reached = [p for p in LIVE_PHASES if p in self.phase_started_ms]
        return reached[-1] if reached else "planning"

    @property
    def probe_phase(self) -> ProbePhase | None:
        """The phase whose availability the view shows: the current one, or the last probed one once concluding."""
        reached = [p for p in PROBE_PHASES if p in self.phase_started_ms]
        return reached[-1] if reached else None

    def phase_seconds(self, phase: LivePhase) -> float | None:
        """How long the spec says the phase lasts (None: as long as it takes)."""
        phases = self.spec.phases
        return {"baseline": phases.baseline, "lead": phases.lead, "fault": phases.fault,
                "recovery": phases.recovery}.get(phase)

    @property
    def injected_ms(self) -> float | None:
        return self.phase_started_ms.get("fault")

    @property
    def restored_ms(self) -> float | None:
        return self.phase_started_ms.get("recovery")

    def reach(self, phase: LivePhase, at_ms: float) -> None:
        """The drill got to ``phase`` at ``at_ms`` (an event and a fault record may both tell: the earlier wins)."""
        self.phase_started_ms[phase] = min(at_ms, self.phase_started_ms.get(phase, at_ms))

    def on_event(self, event: dict[str, Any]) -> None:
        """One execution history event (as GetExecutionHistory returns it)."""
        details = event.get("stateEnteredEventDetails") or event.get("stateExitedEventDetails") or {}
        name = details.get("name")
        at_ms = event["timestamp"].timestamp() * 1000.0
        if event["type"].endswith("StateEntered") and name in PHASE_OF_STATE:
            self.reach(PHASE_OF_STATE[name], at_ms)
        elif event["type"].endswith("StateExited") and name == "Rollback":
            self.reach("recovery", at_ms)

    def set_faults(self, faults: list[FaultRecord]) -> None:
        """The drill's fault records: the fault phase starts at the first injection, the recovery at the last
        restore once no fault is live any more."""
        self.faults = sorted(faults, key=lambda f: f.fault_id)
        injected = [f.injected_at_ms for f in self.faults if f.injected_at_ms is not None]
        if injected:
            self.reach("fault", float(min(injected)))
        restored = [f.restored_at_ms for f in self.faults if f.restored_at_ms is not None]
        if restored and not any(f.status in ("PENDING", "INJECTED") for f in self.faults):
            self.reach("recovery", float(max(restored)))

    def add_chunk(self, window: str, samples: Iterable[Sample]) -> None:
        for sample in samples:
            self.series.setdefault((sample.vantage, sample.target), Series()).add(window, sample)
        self.chunks_read += 1

    def availability(self, vantage: str, target: str, phase: ProbePhase) -> Availability:
        """The fixed-schedule probes of ``phase`` so far; lead, fault and recovery are cut from the drill window
        by the injection and the restore, as the assessment cuts them."""
        series = self.series.get((vantage, target), Series())
        if phase == "baseline":
            probes = series.baseline
        elif phase == "lead":
            injected = self.injected_ms
            probes = [p for p in series.drill if injected is None or p[0] < injected]
        else:
            start = self.injected_ms if phase == "fault" else self.restored_ms
            end = self.restored_ms if phase == "fault" else None
            probes = [] if start is None else [p for p in series.drill if p[0] >= start and (end is None or p[0] < end)]
        return Availability(sum(1 for _, ok in probes if ok), len(probes))

    @property
    def latest_probe_ms(self) -> float | None:
        sends = [s.last.sent_ms for s in self.series.values() if s.last is not None]
        return max(sends) if sends else None


class ChunkFeed:
    """Reads a drill's sample chunks from the evidence bucket as they land, each chunk once."""

    def __init__(self, s3: Any, bucket: str, spec: DrillSpec, drill_id: str, *,
                 max_chunks: int = MAX_CHUNKS_PER_POLL) -> None:
        self._s3 = s3
        self._bucket = bucket
        prefix = evidence_prefix(spec.metadata.service, drill_id)
        self._prefixes = [f"{prefix}samples/{v.name}/" for v in default_vantages(spec)]
        self._after: dict[str, str] = {}
        self._max_chunks = max_chunks

    def poll(self) -> list[tuple[str, list[Sample]]]:
        """The new chunks, as (window, samples): one listing per vantage and at most ``max_chunks`` GETs."""
        budget = self._max_chunks
        chunks: list[tuple[str, list[Sample]]] = []
        for prefix in self._prefixes:
            if budget <= 0:
                break
            request: dict[str, Any] = {"Bucket": self._bucket, "Prefix": prefix, "MaxKeys": budget}
            if prefix in self._after:
                request["StartAfter"] = self._after[prefix]
            for entry in self._s3.list_objects_v2(**request).get("Contents", []):
                key = entry["Key"]
                if not key.endswith(".jsonl.gz"):
                    continue  # a long window's relay objects (livefire/probing/relay.py): they sort after the chunks
                self._after[prefix] = key
                body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
                chunks.append((key[len(prefix):].split("-", 1)[0], decode_chunk(body)))
                budget -= 1
        return chunks
