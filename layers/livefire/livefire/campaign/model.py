"""The contracts between the campaign state machine's states (statemachines/campaign.asl.json), camelCase on the
wire like the drill's (livefire/contracts.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from livefire.contracts import Contract

# Where a campaign's drill specs are read from, in the stack's evidence bucket (the campaign role reads nothing else).
INPUT_PREFIX = "campaign-specs/"
# Where a campaign keeps its plan, its results and its sealed report.
CAMPAIGN_PREFIX = "campaigns/"
RAN, SKIPPED = "RAN", "SKIPPED"


def campaign_prefix(campaign_id: str) -> str:
    return f"{CAMPAIGN_PREFIX}{campaign_id}/"


class SpecSource(Contract):
    """Where the drill specs are: every object under a prefix, or a list of keys (run in that order)."""

    model_config = ConfigDict(extra="forbid", alias_generator=Contract.model_config["alias_generator"],
                              populate_by_name=True)

    prefix: str | None = Field(default=None, description=f"every spec (YAML or JSON) under this key prefix of the "
                                                         f"evidence bucket, which must start with {INPUT_PREFIX}")
    keys: list[str] | None = Field(default=None, description=f"these spec keys of the evidence bucket, each under "
                                                             f"{INPUT_PREFIX}")

    @model_validator(mode="after")
    def _one_source(self) -> SpecSource:
        if (self.prefix is None) == (self.keys is None):
            raise ValueError("give exactly one of specs.prefix or specs.keys")
        for name, key in [("prefix", self.prefix), *(("keys", k) for k in self.keys or [])]:
            if key is not None and not key.startswith(INPUT_PREFIX):
                raise ValueError(f"specs.{name}: {key!r} is not under {INPUT_PREFIX}")
        if self.keys is not None and not self.keys:
            raise ValueError("specs.keys: the list is empty")
        return self


class CampaignRules(Contract):
    """How the drills run: how many at once, in which order, and when the campaign stops."""

    model_config = ConfigDict(extra="forbid", alias_generator=Contract.model_config["alias_generator"],
                              populate_by_name=True)

    max_concurrency: int = Field(default=2, ge=1, le=1000, description="drills running at once at most (the "
                                 "Distributed Map's MaxConcurrency); never two of one service, whatever this is")
    max_failures: int = Field(default=0, ge=0, description="the campaign stops when more than this many drills FAIL "
                              "(or end in ERROR): the drills not yet started end SKIPPED, nothing injected")
    order: Literal["listed", "tier", "wave"] = Field(default="listed", description="listed: the specs' order; tier: "
                                                     "by the service's tier (tiers), 1 first; wave: by the drill's "
                                                     "wave (waves), 1 first. Each stage ends before the next begins")
    tiers: dict[str, int] = Field(default_factory=dict, description="service -> tier (order: tier); a service not "
                                                                     "listed runs after every listed tier")
    waves: dict[str, int] = Field(default_factory=dict, description="drill name (metadata.name) -> wave (order: "
                                                                     "wave); a drill not listed runs last")


class CampaignInput(Contract):
    """The campaign state machine's execution input."""

    model_config = ConfigDict(extra="forbid", alias_generator=Contract.model_config["alias_generator"],
                              populate_by_name=True)

    specs: SpecSource = Field(description="the drill specs")
    rules: CampaignRules = Field(default_factory=CampaignRules, description="the campaign rules")


class PlanCampaignRequest(Contract):
    campaign_id: str = Field(description="the campaign id: the campaign execution's name")
    campaign_input: dict[str, Any] = Field(description="the execution input, validated as CampaignInput")


class CampaignDrill(Contract):
    """One drill of the campaign, as planned: the item the Distributed Map reads (rounds/<round>/<index>.json)."""

    index: int = Field(description="the drill's place in the campaign (0: first)")
    round: int = Field(description="the round it runs in: each round holds at most one drill per service")
    drill_id: str = Field(description="the child execution's name, hence the drill id")
    name: str = Field(description="metadata.name of its spec")
    service: str = Field(description="metadata.service of its spec")
    pattern: str = Field(description="its DR pattern")
    source_key: str = Field(description="the spec's key as given")
    spec_key: str = Field(description="the campaign's copy of the validated spec")
    spec_digest: str = Field(description="SHA-256 of the validated spec (checked before the drill starts)")


class Campaign(Contract):
    """What every state of the campaign carries: small, with keys to S3 for the rest."""

    campaign_id: str = Field(description="the campaign id")
    bucket: str = Field(description="the evidence bucket the rounds are read from")
    prefix: str = Field(description="campaigns/<id>/: the campaign's objects")
    rounds: int = Field(description="how many rounds the drills were planned into")
    drills: int = Field(description="how many drills")
    max_concurrency: int = Field(description="the Distributed Map's MaxConcurrency")
    rules: CampaignRules = Field(description="the rules it runs by")


class AdmitRequest(Contract):
    campaign: Campaign = Field(description="the campaign")
    key: str = Field(description="the planned drill's item key (from the ItemReader)")


class Admission(Contract):
    """Whether the drill starts: not when the stop rule tripped (its result is then recorded SKIPPED)."""

    admitted: bool = Field(description="true: start the drill; false: it was recorded SKIPPED")
    drill: CampaignDrill = Field(description="the planned drill")
    spec: dict[str, Any] | None = Field(default=None, description="the validated spec document, when admitted")


class RecordRequest(Contract):
    campaign: Campaign = Field(description="the campaign")
    drill: CampaignDrill = Field(description="the drill that ran")
    failure: dict[str, Any] | None = Field(default=None, description="the child execution's failure ({Error, "
                                                                     "Cause}), when it did not succeed")


class DrillResult(Contract):
    """How one drill of the campaign ended: results/<index>.<class>.json."""

    index: int = Field(description="the drill's place in the campaign")
    round: int = Field(description="the round it ran in")
    drill_id: str = Field(description="the drill id")
    name: str = Field(description="metadata.name")
    service: str = Field(description="metadata.service")
    pattern: str = Field(description="the DR pattern")
    outcome: Literal["RAN", "SKIPPED"] = Field(description="RAN: the child execution ran; SKIPPED: never started")
    status: str | None = Field(default=None, description="the child execution's status (SUCCEEDED, FAILED, ...)")
    verdict: str | None = Field(default=None, description="the drill's verdict, from its record")
    error: str | None = Field(default=None, description="the child execution's error, when it failed")
    reason: str | None = Field(default=None, description="why it was skipped, or refused at Plan")
    rto_seconds: float | None = Field(default=None, description="RTO at the entrypoint, when measured")
    rpo_seconds: float | None = Field(default=None, description="the largest RPO its data checks measured")
    started_at_ms: int | None = Field(default=None, description="when its Plan recorded it (epoch ms)")
    ended_at_ms: int | None = Field(default=None, description="when it was finished (epoch ms)")
    evidence_prefix: str | None = Field(default=None, description="its evidence folder in the bucket")
    report_key: str | None = Field(default=None, description="its report.html")
    manifest_key: str | None = Field(default=None, description="its manifest.json")
    manifest_digest: str | None = Field(default=None, description="SHA-256 of its manifest, from its record")

    @property
    def aborted(self) -> bool:
        """A guardrail aborted the drill, or a fault may still be live (its restore was refused)."""
        return self.verdict in ("ABORTED", "RESTORE_REFUSED")

    @property
    def failed(self) -> bool:
        """The drill FAILed or ended in ERROR (a child execution that failed with no verdict counts as ERROR)."""
        if self.outcome != RAN or self.aborted:
            return False
        return self.verdict in ("FAIL", "ERROR") or (self.verdict is None and self.status != "SUCCEEDED")

    @property
    def result_class(self) -> str:
        """What the result key says of it, so the stop rule needs a listing and no reads."""
        if self.outcome == SKIPPED:
            return "skipped"
        return "aborted" if self.aborted else "failed" if self.failed else "ok"


class CampaignSummary(Contract):
    """The Report state's output: what the campaign's ending is chosen on."""

    campaign_id: str = Field(description="the campaign id")
    drills: int = Field(description="drills planned")
    ran: int = Field(description="drills that ran")
    passed: int = Field(description="drills whose verdict is PASS")
    failed: int = Field(description="drills that FAILed or ended in ERROR")
    skipped: int = Field(description="drills never started")
    stopped: str | None = Field(default=None, description="why the stop rule tripped, if it did")
    report_key: str = Field(description="the campaign's report.html")
    manifest_key: str = Field(description="the campaign's manifest.json")
    manifest_digest: str = Field(description="SHA-256 of the campaign's manifest")
