"""What the verdict takes for granted, made explicit: what "steady" means (``steady``) and which mesh settings a
drill requires (``posture``). Both sections are optional; their defaults are stated here and in the README."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from livefire.spec.base import Slug, SpecModel
from livefire.spec.durations import PositiveDuration
from livefire.spec.sections import Percent

PostureItem = Literal["mtlsStrict", "outlierDetection", "localityFailover"]
DEFAULT_STEADY_AVAILABILITY = 99.0


class SteadyState(SpecModel):
    """Steady = every vantage sees every target meet these criteria: in the baseline (the gate before the
    fault; NOT_STEADY names the criterion that failed) and, at the entrypoint, at the end of the recovery phase
    (the steadyAfterRollback finding)."""

    availability: Percent | None = Field(
        default=None,
        description="availability floor, percent of probes (default 99, or objectives.availability when lower)",
    )
    max_consecutive_errors: Annotated[int, Field(ge=0)] = Field(
        default=2, description="the most failed probes in a row (a longer run is an outage, not noise)"
    )
    p99_latency: PositiveDuration | None = Field(
        default=None,
        description="the most a p99 latency may be (nearest rank: the slowest probe when there are fewer than 100)",
    )
    latency_tolerance: PositiveDuration = Field(
        default=0.05,
        description="after the rollback the median latency is at most the baseline's median plus the larger of "
        "itself and this tolerance",
    )
    window: PositiveDuration | None = Field(
        default=None,
        description="how much of the end of the recovery phase steadyAfterRollback judges (default: its last third)",
    )

    def availability_floor(self, objective: float | None) -> float:
        """The floor in force: the one given, else 99% or the availability objective when that is lower."""
        if self.availability is not None:
            return self.availability
        return DEFAULT_STEADY_AVAILABILITY if objective is None else min(DEFAULT_STEADY_AVAILABILITY, objective)


class Posture(SpecModel):
    """The mesh settings a drill requires: each item named in ``require`` becomes a finding that gates the verdict
    (the audit runs in every region's cluster either way and is reported)."""

    require: list[PostureItem] = Field(
        default=[], description="posture items that must hold in every region: mtlsStrict, outlierDetection, "
        "localityFailover"
    )
    root_namespace: Slug = Field(
        default="istio-system", description="Istio's root namespace: a PeerAuthentication there applies mesh-wide"
    )
