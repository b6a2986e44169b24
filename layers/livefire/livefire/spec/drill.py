"""The whole drill spec (``DrillSpec``) and the checks that span its sections."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from livefire.spec.base import SpecModel
from livefire.spec.faults import Fault
from livefire.spec.sections import (
    Guardrails,
    Metadata,
    Objectives,
    Pattern,
    Phases,
    Probes,
    Region,
    ServedBy,
    Vantage,
)
from livefire.spec.urls import HttpUrl


class DrillSpec(SpecModel):
    api_version: Literal["livefire/v1"]
    kind: Literal["Drill"]
    metadata: Metadata
    pattern: Pattern
    mode: Literal["live", "dry-run"] = "live"
    regions: Annotated[list[Region], Field(min_length=1)]
    entrypoint: HttpUrl
    served_by: ServedBy = ServedBy()
    fault: Fault
    phases: Phases
    probes: Probes = Probes()
    objectives: Objectives = Objectives()
    guardrails: Guardrails = Guardrails()
    vantages: list[Vantage] = []

    @field_validator("regions")
    @classmethod
    def _unique_region_names(cls, regions: list[Region]) -> list[Region]:
        names = [r.name for r in regions]
        if len(names) != len(set(names)):
            raise ValueError("region names must be unique")
        return regions

    @model_validator(mode="after")
    def _fault_stays_inside_the_spec(self) -> DrillSpec:
        region = self.region(self.fault.region)
        if region is None:
            raise ValueError(f"fault.region {self.fault.region!r} is not one of the spec's regions")
        target = self.fault.target
        if target is not None and region.cluster is None:  # a fault outside the mesh needs no cluster
            raise ValueError(f"fault.region {self.fault.region!r} has no cluster to inject into")
        if target is not None and target.namespace not in self.guardrails.allowed_namespaces:
            raise ValueError(
                f"fault.target.namespace {target.namespace!r} is not in "
                "guardrails.allowedNamespaces"
            )
        if self.pattern == "active-passive" and not any(r.role == "standby" for r in self.regions):
            raise ValueError("pattern active-passive needs a region with role standby")
        return self

    def region(self, name: str) -> Region | None:
        return next((r for r in self.regions if r.name == name), None)

    @property
    def observe_seconds(self) -> float:
        return self.phases.lead + self.phases.fault + self.phases.recovery

    def to_document(self) -> dict[str, Any]:
        """The normalized spec as the user would write it (camelCase keys, duration strings)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def digest(self) -> str:
        canonical = json.dumps(self.to_document(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
