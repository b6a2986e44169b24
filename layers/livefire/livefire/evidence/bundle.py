"""The evidence bundle: everything a drill's reports show, typed once and rendered twice (report.md, report.html).

The Evidence step fills it from the drill's artifacts (``livefire.evidence.publish``); a new report section is a
field here, filled there, and rendered by both ``report.render_markdown`` and ``html.render_html``
(docs/architecture.md §12).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from livefire.artifacts import evidence_prefix
from livefire.assessment import Assessment
from livefire.assessment.chart import TimelineChart
from livefire.contracts import Outcome
from livefire.cost import CostReport
from livefire.egress import Reach
from livefire.evidence.controls import ControlEvidence
from livefire.evidence.manifest import ChainLink
from livefire.evidence.signature import SigningKey
from livefire.faults.refusal import refused, verdict_with_refusals
from livefire.spec import DrillSpec
from livefire.store import FaultRecord


class PostureCheck(BaseModel):
    """One check of the posture audit (``livefire.mesh.posture`` makes them; the bundle keeps the kubernetes
    client out of the Evidence step's cold start, so it holds their data, not their class)."""

    check: str = Field(description="What was checked, e.g. outlier-detection, mtls-strict.")
    ok: bool = Field(description="Whether the mesh setting supports the failover.")
    detail: str = Field(description="What was found.")
    settings: dict[str, Any] = Field(
        default_factory=dict, description="What the check read, as found: destination-rule: the rule's name and "
        "host; outlier-detection: the rule's trafficPolicy.outlierDetection (empty for the other checks).")


class PostureAudit(BaseModel):
    """The read-only mesh posture audit of one region's cluster (posture.json holds one per region)."""

    region: str = Field(description="The spec's region name.")
    cluster: str = Field(description="The cluster's key (e.g. sandbox:east, eks:payments-use1) or 'no cluster'.")
    namespace: str = Field(description="The namespace audited ('-' when nothing was).")
    host: str = Field(description="The service host the DestinationRule must match ('-' when nothing was audited).")
    findings: list[PostureCheck] = Field(default_factory=list, description="One finding per check made.")
    skipped: str | None = Field(default=None, description="Why the cluster was not audited, if it was not.")


class ReachedTarget(BaseModel):
    """One URL the drill probed or called, and whether it was real or the local sandbox's (from plan.json)."""

    target: str = Field(description="What it is: 'entrypoint', a region's name, 'webhook inject' or 'webhook "
                                    "rollback'.")
    url: str = Field(description="The URL, query values redacted.")
    reach: Reach = Field(description="real: contacted over the network as named (always, on AWS); sandbox: "
                                     "answered by the local sandbox mesh (livefire run, a host under .sandbox).")


class EvidenceBundle(BaseModel):
    """What both reports of one drill show; artifact names are relative to the drill's evidence folder."""

    model_config = ConfigDict(frozen=True)

    spec: DrillSpec = Field(description="The drill's validated spec.")
    assessment: Assessment | None = Field(description="assessment.json; None when the drill ended unjudged.")
    outcome: Outcome = Field(description="How the workflow ended: COMPLETED, NOT_STEADY, CANCELLED, ERROR or "
                                                   "ABORTED.")
    drill_id: str = Field(description="The drill id.")
    execution_arn: str = Field(description="The execution that ran the drill.")
    faults: list[FaultRecord] = Field(default_factory=list, description="The drill's fault records.")
    documents: dict[str, Any] = Field(
        default_factory=dict,
        description="The faults' JSON documents by artifact name: faults/<id>-{before,after,restored}.json "
                    "snapshots of mesh objects, faults/<id>-{fis,webhook}.json for faults outside the mesh.",
    )
    timeline: TimelineChart | None = Field(default=None, description="The probes' timeline chart (timeline.json, "
                                           "binned by Assess; None when no probe was recorded).")
    targets: list[ReachedTarget] = Field(
        default_factory=list, description="Every probed target and webhook URL, each marked real or sandbox.")
    posture: list[PostureAudit] | None = Field(default=None, description="posture.json; None when not audited.")
    cost: CostReport | None = Field(default=None, description="cost.json; None when the drill was not priced.")
    error: str | None = Field(default=None, description="'<error>: <cause>' of a drill that ended in error.")
    artifacts: dict[str, int | None] = Field(
        default_factory=dict, description="Every artifact of the evidence folder by name, with its size in bytes "
                                          "(None for those written after the report: the other report, the manifest).")
    chain: ChainLink | None = Field(default=None, description="The drill's place in its service's evidence chain.")
    signing_key: SigningKey | None = Field(default=None, description="The key that signs the drill's manifest.")
    controls: list[ControlEvidence] = Field(
        default_factory=list, description="The audit controls the drill's findings evidence (evidence/controls.py).")

    @property
    def verdict(self) -> str:
        """The assessment's verdict, or how the drill ended unjudged; RESTORE_REFUSED whatever either says when a
        restore was refused (a fault may still be live)."""
        judged = self.assessment.verdict if self.assessment is not None else (
            self.outcome if self.outcome != "COMPLETED" else "ERROR")
        return verdict_with_refusals(judged, self.faults)

    @property
    def verdict_reason(self) -> str:
        if refused(self.faults):
            return "a restore was refused: someone else changed the object during the drill (see the first line)"
        if self.assessment is not None:
            return self.assessment.verdict_reason
        return f"the drill ended with outcome {self.outcome} and was not assessed"

    @property
    def evidence_prefix(self) -> str:
        """The S3 key prefix of the drill's evidence, which the fault records' keys start with."""
        return evidence_prefix(self.spec.metadata.service, self.drill_id)
