"""Assessment: turn a drill's raw probe samples into metrics, findings and a verdict (docs/architecture.md §7).

Pure functions over samples the caller has already loaded; no AWS calls. One module per idea:
``model`` (assessment.json), ``timeline`` (grouping, phases, statistics), ``recovery`` (detection, RTO,
failback, outages, who served), ``objectives`` (the findings every drill gets and one per objective),
``patterns`` (each DR pattern's findings), ``steady`` (the baseline gate) and ``verdict`` (``assess``).
A new finding is one function in ``objectives`` or ``patterns``, called from ``verdict.assess``.
"""

from livefire.assessment.model import (
    Assessment,
    Bracket,
    Detection,
    EvidencePointer,
    FaultInstants,
    Finding,
    Latency,
    Outage,
    PhaseName,
    PhaseWindow,
    Recommendation,
    Recovery,
    ServedSegment,
    Status,
    TargetStats,
)
from livefire.assessment.recovery import observed_incident
from livefire.assessment.steady import steady_state
from livefire.assessment.timeline import percentile
from livefire.assessment.verdict import assess, with_posture

__all__ = [
    "Assessment",
    "Bracket",
    "Detection",
    "EvidencePointer",
    "FaultInstants",
    "Finding",
    "Latency",
    "Outage",
    "PhaseName",
    "PhaseWindow",
    "Recommendation",
    "Recovery",
    "ServedSegment",
    "Status",
    "TargetStats",
    "assess",
    "observed_incident",
    "percentile",
    "steady_state",
    "with_posture",
]
