"""The typed records of the drill table: drill, fault, lease, chain head and history entry.

``livefire.store`` is the one place that maps DynamoDB items to these models and back: each field is stored
under its camelCase name (``drill_id`` → ``drillId``); keys and index attributes are the store's business.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from livefire.contracts import FaultStatus, PlannedFault


class _Item(BaseModel):
    """A record of the table: snake_case fields, stored under their camelCase names (the item's attributes)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    @classmethod
    def attribute(cls, field: str) -> str:
        """The item attribute holding ``field``."""
        return cls.model_fields[field].alias or field


class DrillRecord(_Item):
    """One drill (``DRILL#<id>`` / ``DRILL``): written by Plan, finished by Evidence, marked by the guardian."""

    drill_id: str = Field(description="The drill id (the execution's name).")
    execution_arn: str = Field(description="The execution that ran (or tried to run) the drill.")
    status: str = Field(description="RUNNING, REJECTED, the Evidence step's outcome (COMPLETED, NOT_STEADY, "
                                    "CANCELLED, ERROR, ABORTED), or EXECUTION_<status> when the guardian closed it.")
    started_at_ms: int = Field(description="When Plan recorded the drill (epoch ms).")
    ended_at_ms: int | None = Field(default=None, description="When the drill was finished or rejected (epoch ms).")
    service: str | None = Field(default=None, description="metadata.service of the spec; None when rejected.")
    pattern: str | None = Field(default=None, description="The DR pattern of the spec; None when rejected.")
    mode: str | None = Field(default=None, description="live or dry-run; None when rejected.")
    spec_digest: str | None = Field(default=None, description="SHA-256 of the validated spec.")
    lease_keys: list[str] = Field(default_factory=list, description="The leases Plan took for the drill: its "
                                                                     "service's and each fault's object's.")
    reason: str | None = Field(default=None, description="Why a rejected attempt was refused.")
    verdict: str | None = Field(default=None, description="PASS, FAIL, INCONCLUSIVE, or how the drill ended unjudged.")
    rto_seconds: float | None = Field(default=None, description="RTO at the entrypoint, when measured.")
    outage_observed: bool | None = Field(default=None, description="False: the entrypoint never failed during the "
                                        "fault (no outage observed, so no RTO); None: unknown or RTO does not apply.")
    manifest_digest: str | None = Field(default=None, description="SHA-256 of the drill's manifest, once linked.")
    manifest_key: str | None = Field(default=None, description="S3 key of the manifest.")
    sequence: int | None = Field(default=None, description="The manifest's place in the service's chain (1: first).")
    previous_manifest_digest: str | None = Field(default=None, description="The previous manifest's SHA-256.")
    previous_drill_id: str | None = Field(default=None, description="The drill of the previous manifest.")
    manifest_created_at: str | None = Field(default=None, description="The manifest's created_at (ISO 8601).")
    report_key: str | None = Field(default=None, description="S3 key of report.html.")
    markdown_report_key: str | None = Field(default=None, description="S3 key of report.md.")
    execution_status: str | None = Field(default=None, description="How the execution ended, as the guardian saw it.")
    execution_error: str | None = Field(default=None, description="The execution's error name, when it failed.")
    guarded_at_ms: int | None = Field(default=None, description="When the guardian acted on the ended execution.")
    guardian_restored: int | None = Field(default=None, description="Faults the guardian restored.")
    guardian_released: int | None = Field(default=None, description="Leases the guardian released.")
    guardian_failures: str | None = Field(default=None, description="What the guardian could not restore.")
    swept_at_ms: int | None = Field(default=None, description="When the sweeper last restored faults of the drill.")
    sweeper_restored: int | None = Field(default=None, description="Faults the sweeper restored.")
    approval_status: str | None = Field(default=None, description="The go/no-go gate (livefire/approval.py): PENDING, "
                                        "APPROVED, REJECTED, or UNDELIVERED (decided after the gate had closed).")
    approval_token: str | None = Field(default=None, repr=False, description="The gate's Step Functions task token "
                                       "while it waits: never logged, never in the evidence; removed once decided "
                                       "and when the drill is finished.")
    approval_requested_at_ms: int | None = Field(default=None, description="When the gate started waiting.")
    approval_deadline_ms: int | None = Field(default=None, description="When the gate stops waiting.")
    approval_approvers: list[str] = Field(default_factory=list, description="Who may decide (empty: anyone IAM "
                                                                            "allows).")
    approval_decided_by: str | None = Field(default=None, description="Who approved or rejected the drill.")
    approval_decided_at_ms: int | None = Field(default=None, description="When they did.")
    approval_reason: str | None = Field(default=None, description="The reason given with the decision.")

    @property
    def seal(self) -> ManifestSeal | None:
        """The drill's manifest seal, once the drill joined its service's chain."""
        if self.manifest_digest is None or self.sequence is None:
            return None
        return ManifestSeal.model_validate(self.model_dump())


class ManifestSeal(_Item):
    """A drill's place in its service's evidence chain, written on its record once, when the head moves to it."""

    manifest_digest: str = Field(description="SHA-256 of the drill's manifest.")
    manifest_key: str = Field(description="S3 key of the manifest.")
    sequence: int = Field(description="The manifest's place in the service's chain (1: first).")
    previous_manifest_digest: str | None = Field(description="The previous manifest's SHA-256 (None: first).")
    previous_drill_id: str | None = Field(description="The drill of the previous manifest (None: first).")
    manifest_created_at: str = Field(description="The manifest's created_at (ISO 8601), to rebuild it exactly.")


class Lease(_Item):
    """One drill per target (``LEASE#<target>`` / ``LEASE``), listed in gsi2 for the sweeper (livefire/leases.py)."""

    lease_key: str = Field(description="The leased target: service:<service>, or a fault's object "
                                       "(PlannedFault.lease_key).")
    holder: str = Field(description="The drill holding it, or (multi-region) for a service lease shared by the "
                                    "drills of a multi-region fault.")
    expires_at: int = Field(description="When the lease lapses (epoch seconds); an expired lease holds nothing.")
    execution_arn: str | None = Field(default=None, description="The holder's execution, when known.")
    members: dict[str, str] = Field(default_factory=dict, description="A shared lease's member drills, each with "
                                                                      "its execution.")


class ChainHead(_Item):
    """The newest manifest of a service's evidence chain (``CHAIN#<service>`` / ``HEAD``)."""

    digest: str = Field(description="SHA-256 of the newest manifest.")
    drill_id: str = Field(description="The drill whose manifest that is.")
    sequence: int = Field(description="Its sequence number: how many drills the chain holds.")


class HistoryEntry(_Item):
    """One drill of a service, as the history index (gsi1) lists it."""

    drill_id: str = Field(description="The drill id.")
    started_at_ms: int = Field(description="When the drill was recorded (epoch ms).")
    ended_at_ms: int | None = Field(default=None, description="When it ended (epoch ms).")
    pattern: str | None = Field(default=None, description="The DR pattern.")
    status: str | None = Field(default=None, description="The drill record's status.")
    verdict: str | None = Field(default=None, description="The verdict, when there is one.")
    rto_seconds: float | None = Field(default=None, description="RTO at the entrypoint, when measured.")
    outage_observed: bool | None = Field(default=None, description="False: the entrypoint never failed during the "
                                        "fault (no outage observed, so no RTO); None: unknown or RTO does not apply.")
    manifest_digest: str | None = Field(default=None, description="SHA-256 of its manifest, once linked.")
    sequence: int | None = Field(default=None, description="Its manifest's place in the service's chain.")


class RestoreRefusal(BaseModel):
    """A restore livefire refused because someone else changed the target since the snapshot: the fault may still be
    live, and only a person may decide. What the report's first line says (docs/architecture.md §9)."""

    target: str = Field(description="The object, e.g. 'VirtualService payments/payments on eks:payments-use1'.")
    differs: list[str] = Field(description="What differs from the snapshot ('spec.http', 'metadata.labels', or "
                                           "'the object was deleted').")
    command: str = Field(description="The exact command that puts the snapshot back by hand, once a person has "
                                     "looked at the change.")


class FaultRecord(_Item):
    """One fault of a drill (``DRILL#<id>`` / ``FAULT#<fault-id>``), written only by the fault lifecycle
    (``livefire/faults/lifecycle.py``); listed in gsi2 for the sweeper until it is RESTORED or SKIPPED.

    Instants are UTC epoch milliseconds and come in brackets [request sent, answer received]: the fault (or its
    end) may take effect anywhere in between (docs/architecture.md §5)."""

    drill_id: str = Field(description="The drill the fault belongs to.")
    fault_id: str = Field(description="The fault's id within the drill (PlannedFault.fault_id).")
    status: FaultStatus = Field(description="PENDING (written before anything is touched), INJECTED, RESTORED, "
                                            "CONFLICT (restore refused: the target changed since the snapshot), "
                                            "FAILED (the last apply or restore failed; still swept) or SKIPPED "
                                            "(fenced by a rollback, or a dry run).")
    planned: PlannedFault = Field(description="The planned fault: kind, target object, cluster, lease.")
    snapshot_key: str = Field(description="S3 key of the fault's document: the target's snapshot for a mesh fault, "
                                          "what was started and every call for FIS and webhook faults; empty when "
                                          "fenced.")
    expires_at: int = Field(description="Epoch seconds after which the sweeper restores the fault whatever the "
                                        "state of its execution; 0 when fenced.")
    pending_at_ms: int | None = Field(default=None, description="When the write-ahead record was written: no write "
                                                               "of the fault can predate it.")
    injected_at_ms: int | None = Field(default=None, description="When the request that started the fault was "
                                                                "sent (the earliest it can have taken effect).")
    injection_answered_at_ms: int | None = Field(default=None, description="When the answer to that request came "
                                                                          "back (the fault is in effect by then).")
    restore_requested_at_ms: int | None = Field(default=None, description="When the request that ended the fault "
                                                                         "was sent.")
    restored_at_ms: int | None = Field(default=None, description="When the answer to that request came back (for "
                                                                "FIS, when the experiment ended).")
    restored_by: str | None = Field(default=None, description="Who closed the record: rollback, "
                                                             "emergency-rollback, guardian, sweeper, or inject (a "
                                                             "late undo).")
    external_id: str | None = Field(default=None, description="What identifies the fault outside the mesh (an FIS "
                                                             "experiment id).")
    detail: str | None = Field(default=None, description="What happened last, in one line (at most 1000 characters).")
    dry_run_problems: list[str] = Field(default_factory=list, description="A dry run: why the fault or its restore "
                                                                          "would fail (empty: it would work).")
    refusal: RestoreRefusal | None = Field(default=None, description="CONFLICT: the target, what differs and the "
                                                                     "command to restore it by hand.")
