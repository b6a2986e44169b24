"""The drill table (DynamoDB, single table): drill records, fault records, leases, chain heads.

Keys: ``pk``/``sk``. A drill record is ``DRILL#<id>`` / ``DRILL``; its faults ``DRILL#<id>`` / ``FAULT#<fault-id>``;
a lease ``LEASE#<target>`` / ``LEASE`` (livefire/leases.py); the head of a service's evidence chain
``CHAIN#<service>`` / ``HEAD``.
``gsi1`` lists drills by service and time (history); ``gsi2`` is sparse and holds, sorted by expiry, the faults
not yet restored (``ACTIVE_FAULT``) and the leases (``ACTIVE_LEASE``): what the guardian's sweeper checks.
"""

from __future__ import annotations

import json
import re
from typing import Any

from botocore.exceptions import ClientError

from livefire.contracts import FaultStatus, PlannedFault
from livefire.leases import LeaseTable
from livefire.records import ChainHead, DrillRecord, FaultRecord, HistoryEntry, Lease, ManifestSeal, RestoreRefusal
from livefire.table import if_condition_holds, now_ms, plain, query_gsi2, stored

__all__ = ["ChainHead", "DrillRecord", "DrillStore", "FaultRecord", "HistoryEntry", "Lease", "ManifestSeal"]

ACTIVE_FAULTS = "ACTIVE_FAULT"
_NAME = re.compile(r"#(\w+)")  # an attribute a condition names


def _drill_key(drill_id: str) -> dict[str, str]:
    return {"pk": f"DRILL#{drill_id}", "sk": "DRILL"}


def _fault_key(drill_id: str, fault_id: str) -> dict[str, str]:
    return {"pk": f"DRILL#{drill_id}", "sk": f"FAULT#{fault_id}"}


def _fault_item(record: FaultRecord) -> dict[str, Any]:
    """The whole item of a fault record; one not yet closed is listed in gsi2 (the sweeper's index)."""
    attributes = record.model_dump(by_alias=True, exclude_none=True, exclude={"planned"})
    item = {**_fault_key(record.drill_id, record.fault_id), **attributes,
            FaultRecord.attribute("planned"): record.planned.model_dump_json()}
    if record.status not in ("RESTORED", "SKIPPED"):
        item |= {"gsi2pk": ACTIVE_FAULTS, "gsi2sk": f"{record.expires_at:012d}#{record.drill_id}#{record.fault_id}"}
    return item


def _fault_record(item: dict[str, Any]) -> FaultRecord:
    attributes = plain(item)
    attributes[FaultRecord.attribute("planned")] = json.loads(attributes[FaultRecord.attribute("planned")])
    return FaultRecord.model_validate(attributes)


def _drill_item(record: DrillRecord) -> dict[str, Any]:
    """The whole item of a drill record: its attributes, its key and its place in the history index (gsi1)."""
    attributes = {k: stored(v) for k, v in record.model_dump(by_alias=True, exclude_none=True).items()}
    return {
        **_drill_key(record.drill_id), **attributes,
        "gsi1pk": f"SERVICE#{record.service or '(rejected)'}",
        "gsi1sk": f"{record.started_at_ms:015d}#{record.drill_id}",
    }


class DrillStore(LeaseTable):
    def __init__(self, table: Any) -> None:
        """``table`` is a boto3 DynamoDB Table resource."""
        self._table = table

    # -- drill records -------------------------------------------------------------------------------
    def record_rejected_attempt(self, drill_id: str, execution_arn: str, reason: str) -> bool:
        """A refused spec is still an attempt: the auditor sees it was tried and why it was refused. A conditional
        write: a drill id that already has a record (another run's, finished or not: execution names are reusable
        while evidence is kept) keeps it. False when the record was left as it was."""
        now = now_ms()
        record = DrillRecord(drill_id=drill_id, execution_arn=execution_arn, status="REJECTED", verdict="REJECTED",
                             reason=reason[:2000], started_at_ms=now, ended_at_ms=now)
        return if_condition_holds(lambda: self._table.put_item(
            Item=_drill_item(record), ConditionExpression="attribute_not_exists(pk)"))

    def create_drill(
        self, *, drill_id: str, execution_arn: str, service: str, pattern: str, mode: str,
        spec_digest: str, started_at_ms: int, lease_keys: list[str],
    ) -> None:
        """The RUNNING record of a planned drill; ClientError (ConditionalCheckFailed) when the id has one."""
        record = DrillRecord(
            drill_id=drill_id, execution_arn=execution_arn, service=service, pattern=pattern, mode=mode,
            spec_digest=spec_digest, status="RUNNING", started_at_ms=started_at_ms, lease_keys=lease_keys,
        )
        self._table.put_item(Item=_drill_item(record), ConditionExpression="attribute_not_exists(pk)")

    def finish_drill(
        self, drill_id: str, *, status: str, verdict: str, rto_seconds: float | None = None,
        outage_observed: bool | None = None,
        report_key: str | None = None, markdown_report_key: str | None = None,
    ) -> None:
        """What the Evidence step concluded; fields given as None are left as they are. A go/no-go gate's task
        token, if one is still there, goes: the drill no longer waits."""
        self._set_drill(drill_id, None, status=status, verdict=verdict, rto_seconds=rto_seconds,
                        outage_observed=outage_observed,
                        report_key=report_key, markdown_report_key=markdown_report_key, ended_at_ms=now_ms(),
                        remove=(DrillRecord.attribute("approval_token"),))

    def restore_drill(self, record: DrillRecord) -> bool:
        """Put back the record of a drill an earlier local run finished (its table is gone), so the history
        sees it; a drill id that already has a record keeps it. False when the record was left as it was."""
        return if_condition_holds(lambda: self._table.put_item(
            Item=_drill_item(record), ConditionExpression="attribute_not_exists(pk)"))

    def get_drill(self, drill_id: str) -> DrillRecord | None:
        item = self._table.get_item(Key=_drill_key(drill_id), ConsistentRead=True).get("Item")
        return DrillRecord.model_validate(plain(item)) if item else None

    def history(self, service: str, limit: int = 20) -> list[HistoryEntry]:
        """The service's drills, newest first (gsi1: ``SERVICE#<service>`` / ``<started ms>#<drill id>``)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        entries: list[HistoryEntry] = []
        query: dict[str, Any] = {
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :service",
            "ExpressionAttributeValues": {":service": f"SERVICE#{service}"},
            "ScanIndexForward": False,
        }
        while len(entries) < limit:
            response = self._table.query(**query, Limit=limit - len(entries))
            entries += [HistoryEntry.model_validate(plain(item)) for item in response.get("Items", [])]
            if "LastEvaluatedKey" not in response:
                break
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return entries

    def _set_drill(self, drill_id: str, condition: str | None, *, remove: tuple[str, ...] = (),
                   values: dict[str, Any] | None = None, **fields: Any) -> bool:
        """SET the given DrillRecord fields (None: left alone) on the drill's item and REMOVE the ``remove``
        attributes, if ``condition`` holds (``values``: the condition's own placeholders)."""
        sets = {DrillRecord.attribute(name): stored(value) for name, value in fields.items() if value is not None}
        expression = "SET " + ", ".join(f"#{k} = :{k}" for k in sets)
        if remove:
            expression += " REMOVE " + ", ".join(f"#{k}" for k in remove)
        update: dict[str, Any] = {
            "Key": _drill_key(drill_id),
            "UpdateExpression": expression,
            "ExpressionAttributeNames": {f"#{k}": k for k in (*sets, *remove, *_NAME.findall(condition or ""))},
            "ExpressionAttributeValues": {f":{k}": v for k, v in sets.items()} | (values or {}),
        }
        if condition is not None:
            update["ConditionExpression"] = condition
        return if_condition_holds(lambda: self._table.update_item(**update))

    # -- the go/no-go gate (livefire/approval.py) ----------------------------------------------------------
    def await_approval(self, drill_id: str, *, token: str, requested_at_ms: int, deadline_ms: int,
                       approvers: list[str]) -> bool:
        """The gate waits: its task token (a retried invocation's newer one replaces it) on the RUNNING drill's
        record. False when the drill has no RUNNING record."""
        return self._set_drill(
            drill_id, "attribute_exists(pk) AND #status = :running", values={":running": "RUNNING"},
            approval_status="PENDING", approval_token=token, approval_requested_at_ms=requested_at_ms,
            approval_deadline_ms=deadline_ms, approval_approvers=approvers,
        )

    def decide_approval(self, drill_id: str, *, token: str, approved: bool, by: str, reason: str | None,
                        decided_at_ms: int) -> bool:
        """Record who decided, once: only while the gate still waits with ``token``; the token goes. False when
        the gate was decided already (or waits with another token)."""
        token_attribute = DrillRecord.attribute("approval_token")
        return self._set_drill(
            drill_id, f"#approvalStatus = :pending AND #{token_attribute} = :token",
            values={":pending": "PENDING", ":token": token}, remove=(token_attribute,),
            approval_status="APPROVED" if approved else "REJECTED", approval_decided_by=by,
            approval_reason=reason[:1000] if reason else None, approval_decided_at_ms=decided_at_ms,
        )

    def mark_approval_undelivered(self, drill_id: str) -> bool:
        """The recorded decision never reached the gate (it had timed out, or the drill had ended)."""
        return self._set_drill(drill_id, "attribute_exists(pk)", approval_status="UNDELIVERED")

    # -- evidence hash chain -------------------------------------------------------------------------
    def chain_head(self, service: str) -> ChainHead | None:
        """The newest manifest of the service's chain (its digest and drill), or None before the first drill."""
        item = self._table.get_item(Key={"pk": f"CHAIN#{service}", "sk": "HEAD"}, ConsistentRead=True).get("Item")
        return ChainHead.model_validate(plain(item)) if item else None

    def continue_chain(self, service: str, head: ChainHead) -> bool:
        """Let a fresh table continue a chain kept elsewhere (local runs, livefire_local/local_chain.py): the head
        is written only where the service has none, so no chain is ever cut; False when it has one."""
        item = {"pk": f"CHAIN#{service}", "sk": "HEAD", **head.model_dump(by_alias=True)}
        return if_condition_holds(
            lambda: self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)"))

    def advance_chain(self, service: str, previous: ChainHead | None, drill_id: str, seal: ManifestSeal) -> bool:
        """Move the service's chain head from ``previous`` to the drill's manifest and write the seal on the drill's
        record, in one transaction; False if another drill moved the head first, or the drill is sealed already."""
        head_values: dict[str, Any] = {":digest": seal.manifest_digest, ":drill": drill_id,
                                       ":sequence": seal.sequence, ":at": now_ms()}
        if previous is not None:
            head_values[":previous"] = previous.digest
        sets = {DrillRecord.attribute(name): value for name, value in seal.model_dump().items() if value is not None}
        client = self._table.meta.client  # a resource's client: it takes plain values, like the Table
        try:
            client.transact_write_items(TransactItems=[
                {"Update": {
                    "TableName": self._table.name, "Key": {"pk": f"CHAIN#{service}", "sk": "HEAD"},
                    "UpdateExpression": "SET digest = :digest, drillId = :drill, #sequence = :sequence, "
                                        "updatedAtMs = :at",
                    "ConditionExpression": "attribute_not_exists(pk)" if previous is None else "digest = :previous",
                    "ExpressionAttributeNames": {"#sequence": "sequence"},
                    "ExpressionAttributeValues": head_values,
                }},
                {"Update": {
                    "TableName": self._table.name, "Key": _drill_key(drill_id),
                    "UpdateExpression": "SET " + ", ".join(f"#{k} = :{k}" for k in sets),
                    "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(manifestDigest)",
                    "ExpressionAttributeNames": {f"#{k}": k for k in sets},
                    "ExpressionAttributeValues": {f":{k}": v for k, v in sets.items()},
                }},
            ])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                reasons = exc.response.get("CancellationReasons") or []
                if any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons):
                    return False
            raise
        return True

    # -- fault records (written only by livefire/faults/lifecycle.py) ---------------------------------------
    def put_fault_pending(self, drill_id: str, planned: PlannedFault, *, snapshot_key: str, expires_at: int,
                          pending_at_ms: int) -> bool:
        """Written *before* the target is touched, so every later path knows what to restore. False when the fault
        already has a record (a concurrent Inject, or a rollback that fenced it): then touch nothing."""
        return self._put_new_fault(FaultRecord(
            drill_id=drill_id, fault_id=planned.fault_id, status="PENDING", planned=planned,
            snapshot_key=snapshot_key, expires_at=expires_at, pending_at_ms=pending_at_ms))

    def fence_fault(self, drill_id: str, planned: PlannedFault, *, actor: str) -> bool:
        """A rollback that finds no record for a planned fault writes a SKIPPED one, so an Inject still in flight
        (a branch stopped mid-call, a late retry) can no longer start it. False when a record exists."""
        return self._put_new_fault(FaultRecord(
            drill_id=drill_id, fault_id=planned.fault_id, status="SKIPPED", planned=planned, snapshot_key="",
            expires_at=0, restored_by=actor,
            detail=f"fenced by {actor}: the drill was rolled back before this fault was injected"))

    def _put_new_fault(self, record: FaultRecord) -> bool:
        """Write a fault record that must not exist yet; False when it does."""
        return if_condition_holds(lambda: self._table.put_item(
            Item=_fault_item(record), ConditionExpression="attribute_not_exists(pk)"))

    def mark_fault(
        self, drill_id: str, fault_id: str, status: FaultStatus, *, expect: FaultStatus | None = None,
        injected_at_ms: int | None = None, injection_answered_at_ms: int | None = None,
        restore_requested_at_ms: int | None = None, restored_at_ms: int | None = None,
        restored_by: str | None = None, external_id: str | None = None, detail: str | None = None,
        dry_run_problems: list[str] | None = None, refusal: RestoreRefusal | None = None,
    ) -> bool:
        """Move an existing fault record to ``status`` (only from ``expect``, when given), setting the fields given
        (None: left alone); False if it could not. RESTORED and SKIPPED leave the sweeper's index."""
        fields: dict[str, Any] = {
            "status": status, "injected_at_ms": injected_at_ms, "injection_answered_at_ms": injection_answered_at_ms,
            "restore_requested_at_ms": restore_requested_at_ms, "restored_at_ms": restored_at_ms,
            "restored_by": restored_by, "external_id": external_id,
            "detail": detail[:1000] if detail is not None else None, "dry_run_problems": dry_run_problems,
            "refusal": refusal.model_dump() if refusal is not None else None,
        }
        sets = {FaultRecord.attribute(name): value for name, value in fields.items() if value is not None}
        expression = "SET " + ", ".join(f"#{k} = :{k}" for k in sets)
        if status in ("RESTORED", "SKIPPED"):
            expression += " REMOVE gsi2pk, gsi2sk"
        values = {f":{k}": v for k, v in sets.items()}
        condition = "attribute_exists(pk)"
        if expect is not None:
            condition += " AND #status = :expected"
            values[":expected"] = expect
        return if_condition_holds(lambda: self._table.update_item(
            Key=_fault_key(drill_id, fault_id), UpdateExpression=expression, ConditionExpression=condition,
            ExpressionAttributeNames={f"#{k}": k for k in sets}, ExpressionAttributeValues=values,
        ))

    def reopen_fault(self, record: FaultRecord, detail: str, *, external_id: str | None = None) -> None:
        """A fault that is live again after its record said otherwise: FAILED, and back in the sweeper's index."""
        reopened = record.model_copy(update={"status": "FAILED", "detail": detail[:1000],
                                             "external_id": external_id or record.external_id})
        item = _fault_item(reopened)
        sets = {k: v for k, v in item.items() if k in ("status", "detail", "externalId", "gsi2pk", "gsi2sk")}
        self._table.update_item(
            Key=_fault_key(record.drill_id, record.fault_id),
            UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in sets),
            ExpressionAttributeNames={f"#{k}": k for k in sets},
            ExpressionAttributeValues={f":{k}": v for k, v in sets.items()},
        )

    def fault(self, drill_id: str, fault_id: str) -> FaultRecord | None:
        item = self._table.get_item(Key=_fault_key(drill_id, fault_id), ConsistentRead=True).get("Item")
        return _fault_record(item) if item else None

    def faults_of(self, drill_id: str) -> list[FaultRecord]:
        query: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :fault)",
            "ExpressionAttributeValues": {":pk": f"DRILL#{drill_id}", ":fault": "FAULT#"},
            "ConsistentRead": True,
        }
        records: list[FaultRecord] = []
        while True:
            response = self._table.query(**query)
            records += [_fault_record(item) for item in response.get("Items", [])]
            if "LastEvaluatedKey" not in response:
                return records
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def active_faults(self) -> list[FaultRecord]:
        """Every fault not yet RESTORED or SKIPPED, of any drill (gsi2, earliest expiry first)."""
        return [_fault_record(item) for item in query_gsi2(self._table, ACTIVE_FAULTS)]

    def faults_expired_before(self, epoch_seconds: int) -> list[FaultRecord]:
        return [_fault_record(item) for item in query_gsi2(self._table, ACTIVE_FAULTS, before=f"{epoch_seconds:012d}")]

    # -- the guardian's mark on a drill record -------------------------------------------------------
    def mark_guarded(
        self, drill_id: str, *, execution_status: str, execution_error: str | None, guarded_at_ms: int,
        restored: int, released: int, failures: str | None, status: str | None = None, verdict: str | None = None,
    ) -> bool:
        """Record on an existing drill record how its execution ended and what the guardian did (``status`` and
        ``verdict`` only for a drill whose Evidence step never ran). False when there is no such record."""
        return self._set_drill(
            drill_id, "attribute_exists(pk)", execution_status=execution_status, execution_error=execution_error,
            guarded_at_ms=guarded_at_ms, guardian_restored=restored, guardian_released=released,
            guardian_failures=failures, status=status, verdict=verdict,
        )

    def mark_swept(self, drill_id: str, *, swept_at_ms: int, restored: int) -> bool:
        """Record on an existing drill record that the sweeper restored its faults."""
        return self._set_drill(drill_id, "attribute_exists(pk)", swept_at_ms=swept_at_ms, sweeper_restored=restored)
