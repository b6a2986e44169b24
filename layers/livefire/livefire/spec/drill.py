"""The whole drill spec (``DrillSpec``) and the checks that span its sections."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from livefire.redaction import redact_url
from livefire.spec.approval import Approval
from livefire.spec.assurance import Posture, SteadyState
from livefire.spec.base import SpecModel
from livefire.spec.datachecks import MAX_DATA_CHECKS, DataCheck, data_check_problems
from livefire.spec.durations import format_duration
from livefire.spec.faults import Fault
from livefire.spec.limits import MAX_OBSERVE_S, MAX_REGIONS, probe_budget_problem
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
from livefire.spec.telemetry import Telemetry, telemetry_problem
from livefire.spec.urls import HttpUrl, endpoint_of


class DrillSpec(SpecModel):
    api_version: Literal["livefire/v1"]
    kind: Literal["Drill"]
    metadata: Metadata
    pattern: Pattern
    mode: Literal["live", "dry-run"] = "live"
    regions: Annotated[list[Region], Field(min_length=1, max_length=MAX_REGIONS)]
    entrypoint: HttpUrl
    served_by: ServedBy = ServedBy()
    fault: Fault
    phases: Phases
    probes: Probes = Probes()
    objectives: Objectives = Objectives()
    guardrails: Guardrails = Guardrails()
    vantages: list[Vantage] = []
    steady: SteadyState | None = Field(default=None, description="what steady means (default: SteadyState())")
    posture: Posture | None = Field(default=None, description="mesh settings the drill requires (default: none)")
    data_checks: Annotated[list[DataCheck], Field(max_length=MAX_DATA_CHECKS)] = Field(
        default=[], description="markers written in the primary and read in the other regions: replication lag "
                                "and RPO (livefire/spec/datachecks.py)")
    telemetry: Telemetry | None = Field(default=None, description="the mesh's metrics, held against the probes "
                                                                  "(livefire/spec/telemetry.py)")
    approval: Approval | None = Field(default=None, description="the go/no-go gate before anything is injected "
                                                                "(livefire/spec/approval.py)")

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
            raise ValueError(f"fault.region: {self.fault.region!r} is not one of the spec's regions")
        target = self.fault.target
        if target is not None and region.cluster is None:  # a fault outside the mesh needs no cluster
            raise ValueError(f"fault.region: {self.fault.region!r} has no cluster to inject into")
        if target is not None and target.namespace not in self.guardrails.allowed_namespaces:
            raise ValueError(
                f"fault.target.namespace: {target.namespace!r} is not in "
                "guardrails.allowedNamespaces"
            )
        if self.pattern == "active-passive" and not any(r.role == "standby" for r in self.regions):
            raise ValueError("regions: pattern active-passive needs a region with role standby")
        return self

    @model_validator(mode="after")
    def _measurable_within_limits(self) -> DrillSpec:
        """The entrypoint is not a region's own endpoint (no failover could be measured), the observation is
        bounded and the probe load fits one vantage's budget (livefire/spec/limits.py)."""
        for index, region in enumerate(self.regions):
            if endpoint_of(region.endpoint) == endpoint_of(self.entrypoint):
                raise ValueError(f"entrypoint: is regions.{index}.endpoint ({region.name}'s own endpoint): a "
                                 "failover cannot be measured where users do not go through it")
        if self.observe_seconds > MAX_OBSERVE_S:
            raise ValueError(f"phases: lead + fault + recovery is {format_duration(self.observe_seconds)}, over "
                             f"the {format_duration(MAX_OBSERVE_S)} a drill may observe")
        problem = probe_budget_problem(self.probes, len(self.regions) + 1)
        if problem is not None:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _data_checks_measure_the_data_objectives(self) -> DrillSpec:
        problem = data_check_problems(self.data_checks, {r.name: r.role for r in self.regions})
        if problem is not None:
            raise ValueError(problem)
        for field, name in (("rpo", "rpo"), ("replication_lag_p99", "replicationLagP99")):
            if getattr(self.objectives, field) is not None and not self.data_checks:
                raise ValueError(f"objectives.{name}: needs a dataChecks entry to measure it")
        return self

    @model_validator(mode="after")
    def _telemetry_names_the_spec_regions(self) -> DrillSpec:
        problem = telemetry_problem(self.telemetry, [r.name for r in self.regions])
        if problem is not None:
            raise ValueError(problem)
        return self

    def region(self, name: str) -> Region | None:
        return next((r for r in self.regions if r.name == name), None)

    @property
    def observe_seconds(self) -> float:
        return self.phases.lead + self.phases.fault + self.phases.recovery

    @property
    def gate(self) -> Approval | None:
        """The go/no-go gate the drill waits at, if any (an ``approval`` section not marked ``required: false``)."""
        return self.approval if self.approval is not None and self.approval.required else None

    @property
    def approval_seconds(self) -> float:
        """The longest the drill may wait at its gate (0: no gate)."""
        return self.gate.timeout if self.gate is not None else 0.0

    def to_document(self) -> dict[str, Any]:
        """The normalized spec as the user would write it (camelCase keys, duration strings), with the query
        values of its URLs redacted: the form that is stored, shown and digested (``redact_url``)."""
        document = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        document["entrypoint"] = redact_url(document["entrypoint"])
        for region in document["regions"]:
            region["endpoint"] = redact_url(region["endpoint"])
        return document

    def digest(self) -> str:
        canonical = json.dumps(self.to_document(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
