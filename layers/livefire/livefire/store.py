"""The drill table (DynamoDB, single table): drill records, fault records, leases, chain heads.

Keys: ``pk``/``sk``. A drill record is ``DRILL#<id>`` / ``DRILL``; its faults ``DRILL#<id>`` / ``FAULT#<fault-id>``;
a lease ``LEASE#<target>`` / ``LEASE``; the head of a service's evidence chain ``CHAIN#<service>`` / ``HEAD``.
``gsi1`` lists drills by service and time (history); ``gsi2`` is sparse and holds, sorted by expiry, the faults
not yet restored (``ACTIVE_FAULT``) and the leases (``ACTIVE_LEASE``): what the guardian's sweeper checks.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel

from livefire.contracts import FaultStatus, PlannedFault
from livefire.errors import DrillInProgress

ACTIVE_FAULTS = "ACTIVE_FAULT"
ACTIVE_LEASES = "ACTIVE_LEASE"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _plain(value: Any) -> Any:
    """DynamoDB returns numbers as Decimal; turn them back into int/float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class FaultRecord(BaseModel):
    drill_id: str
    fault_id: str
    status: FaultStatus
    planned: PlannedFault
    snapshot_key: str
    expires_at: int
    injected_at_ms: int | None = None
    restored_at_ms: int | None = None
    detail: str | None = None
    restored_by: str | None = None
    external_id: str | None = None  # what identifies a fault outside the mesh (an FIS experiment id)


class Lease(BaseModel):
    lease_key: str
    holder: str
    expires_at: int
    execution_arn: str | None = None


@dataclass(frozen=True)
class ChainHead:
    digest: str
    drill_id: str


class HistoryEntry(BaseModel):
    """One drill of a service, as the history index (gsi1) lists it."""

    drill_id: str
    started_at_ms: int
    ended_at_ms: int | None = None
    pattern: str | None = None
    status: str | None = None
    verdict: str | None = None
    rto_seconds: float | None = None
    manifest_digest: str | None = None


class DrillStore:
    def __init__(self, table: Any) -> None:
        """``table`` is a boto3 DynamoDB Table resource."""
        self._table = table

    # -- drill records -------------------------------------------------------------------------------
    def record_rejected_attempt(self, drill_id: str, execution_arn: str, reason: str) -> None:
        """An invalid spec is still an attempt: the auditor sees it was tried and why it was refused."""
        now = _now_ms()
        self._table.put_item(
            Item={
                "pk": f"DRILL#{drill_id}", "sk": "DRILL", "drillId": drill_id,
                "executionArn": execution_arn, "status": "REJECTED", "verdict": "REJECTED",
                "reason": reason[:2000], "startedAtMs": now, "endedAtMs": now,
                "gsi1pk": "SERVICE#(rejected)", "gsi1sk": f"{now:015d}#{drill_id}",
            }
        )

    def create_drill(
        self, *, drill_id: str, execution_arn: str, service: str, pattern: str, mode: str,
        spec_digest: str, started_at_ms: int, lease_keys: list[str],
    ) -> None:
        self._table.put_item(
            Item={
                "pk": f"DRILL#{drill_id}", "sk": "DRILL", "drillId": drill_id,
                "executionArn": execution_arn, "service": service, "pattern": pattern, "mode": mode,
                "specDigest": spec_digest, "status": "RUNNING", "startedAtMs": started_at_ms,
                "leaseKeys": lease_keys,
                "gsi1pk": f"SERVICE#{service}", "gsi1sk": f"{started_at_ms:015d}#{drill_id}",
            },
            ConditionExpression="attribute_not_exists(pk)",
        )

    def finish_drill(self, drill_id: str, **attributes: Any) -> None:
        attributes = {k: v for k, v in attributes.items() if v is not None}
        attributes["endedAtMs"] = _now_ms()
        names = {f"#{k}": k for k in attributes}
        values = {f":{k}": Decimal(str(v)) if isinstance(v, float) else v for k, v in attributes.items()}
        self._table.update_item(
            Key={"pk": f"DRILL#{drill_id}", "sk": "DRILL"},
            UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in attributes),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def get_drill(self, drill_id: str) -> dict[str, Any] | None:
        item = self._table.get_item(Key={"pk": f"DRILL#{drill_id}", "sk": "DRILL"}).get("Item")
        return _plain(item) if item else None

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
            for item in map(_plain, response.get("Items", [])):
                entries.append(HistoryEntry(
                    drill_id=item["drillId"], started_at_ms=item["startedAtMs"], ended_at_ms=item.get("endedAtMs"),
                    pattern=item.get("pattern"), status=item.get("status"), verdict=item.get("verdict"),
                    rto_seconds=item.get("rtoSeconds"), manifest_digest=item.get("manifestDigest"),
                ))
            if "LastEvaluatedKey" not in response:
                break
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return entries

    # -- leases --------------------------------------------------------------------------------------
    def acquire_lease(self, lease_key: str, drill_id: str, expires_at: int, execution_arn: str | None = None) -> None:
        """One drill per target: a conditional write that also takes over an expired lease, and that its own
        holder may repeat (a retried Plan). Leases are listed in gsi2 so the sweeper finds the strays."""
        now = int(time.time())
        item: dict[str, Any] = {
            "pk": f"LEASE#{lease_key}", "sk": "LEASE", "leaseKey": lease_key, "holder": drill_id,
            "expiresAt": expires_at, "acquiredAt": now,
            "gsi2pk": ACTIVE_LEASES, "gsi2sk": f"{expires_at:012d}#{lease_key}",
        }
        if execution_arn:
            item["executionArn"] = execution_arn
        condition = "attribute_not_exists(pk) OR expiresAt < :now OR holder = :me"
        values: dict[str, Any] = {":now": now, ":me": drill_id}
        if execution_arn:  # the same drill id started by another execution is another drill
            condition = ("attribute_not_exists(pk) OR expiresAt < :now OR "
                         "(holder = :me AND (attribute_not_exists(executionArn) OR executionArn = :arn))")
            values[":arn"] = execution_arn
        try:
            self._table.put_item(Item=item, ConditionExpression=condition, ExpressionAttributeValues=values)
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            holder = self.lease_holder(lease_key)
            raise DrillInProgress(f"target {lease_key} is held by drill {holder}") from None

    def lease(self, lease_key: str) -> Lease | None:
        """The lease item, expired or not."""
        key = {"pk": f"LEASE#{lease_key}", "sk": "LEASE"}
        item = self._table.get_item(Key=key, ConsistentRead=True).get("Item")
        return self._lease(item) if item else None

    def lease_holder(self, lease_key: str) -> str | None:
        """The drill holding the target now (an expired lease holds nothing)."""
        lease = self.lease(lease_key)
        if lease is None or lease.expires_at < int(time.time()):
            return None
        return lease.holder

    def release_lease(self, lease_key: str, drill_id: str) -> bool:
        """Release only our own lease; releasing twice (or a lease taken over since) is fine.
        True when this call deleted the drill's lease."""
        try:
            response = self._table.delete_item(
                Key={"pk": f"LEASE#{lease_key}", "sk": "LEASE"},
                ConditionExpression="attribute_not_exists(pk) OR holder = :me",
                ExpressionAttributeValues={":me": drill_id},
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            return False
        return bool(response.get("Attributes"))

    def release_expired_lease(self, lease: Lease, now: int) -> bool:
        """Delete a lease that expired before ``now`` and is still held by the same drill."""
        try:
            self._table.delete_item(
                Key={"pk": f"LEASE#{lease.lease_key}", "sk": "LEASE"},
                ConditionExpression="holder = :holder AND expiresAt < :now",
                ExpressionAttributeValues={":holder": lease.holder, ":now": now},
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            return False
        return True

    def active_leases(self) -> list[Lease]:
        """Every lease in the table (gsi2, oldest expiry first): what the sweeper checks."""
        return [self._lease(item) for item in self._query_gsi2(ACTIVE_LEASES)]

    def leases_held_by(self, drill_id: str) -> list[Lease]:
        return [lease for lease in self.active_leases() if lease.holder == drill_id]

    @staticmethod
    def _lease(item: dict[str, Any]) -> Lease:
        item = _plain(item)
        return Lease(
            lease_key=item.get("leaseKey") or str(item["pk"]).removeprefix("LEASE#"), holder=item["holder"],
            expires_at=item["expiresAt"], execution_arn=item.get("executionArn"),
        )

    def _query_gsi2(self, partition: str, before: str | None = None) -> list[dict[str, Any]]:
        condition = "gsi2pk = :active" + (" AND gsi2sk < :until" if before is not None else "")
        values: dict[str, Any] = {":active": partition}
        if before is not None:
            values[":until"] = before
        query: dict[str, Any] = {
            "IndexName": "gsi2", "KeyConditionExpression": condition, "ExpressionAttributeValues": values,
        }
        items: list[dict[str, Any]] = []
        while True:
            response = self._table.query(**query)
            items += response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return items
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # -- evidence hash chain -------------------------------------------------------------------------
    def chain_head(self, service: str) -> ChainHead | None:
        """The newest manifest of the service's chain (its digest and drill), or None before the first drill."""
        item = self._table.get_item(Key={"pk": f"CHAIN#{service}", "sk": "HEAD"}, ConsistentRead=True).get("Item")
        return ChainHead(digest=str(item["digest"]), drill_id=str(item["drillId"])) if item else None

    def advance_chain(self, service: str, previous: str | None, digest: str, drill_id: str, manifest_key: str) -> bool:
        """Move the chain head from ``previous`` to ``digest`` and record the digest on the drill, in one
        transaction; False if another drill moved the head first."""
        condition = "attribute_not_exists(pk)" if previous is None else "digest = :previous"
        values: dict[str, Any] = {":digest": digest, ":drill": drill_id, ":at": _now_ms()}
        if previous is not None:
            values[":previous"] = previous
        client = self._table.meta.client  # a resource's client: it takes plain values, like the Table
        try:
            client.transact_write_items(TransactItems=[
                {"Update": {
                    "TableName": self._table.name, "Key": {"pk": f"CHAIN#{service}", "sk": "HEAD"},
                    "UpdateExpression": "SET digest = :digest, drillId = :drill, updatedAtMs = :at",
                    "ConditionExpression": condition,
                    "ExpressionAttributeValues": values,
                }},
                {"Update": {
                    "TableName": self._table.name, "Key": {"pk": f"DRILL#{drill_id}", "sk": "DRILL"},
                    "UpdateExpression": "SET manifestDigest = :digest, manifestKey = :key",
                    "ExpressionAttributeValues": {":digest": digest, ":key": manifest_key},
                }},
            ])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                reasons = exc.response.get("CancellationReasons") or []
                if any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons):
                    return False
            raise
        return True

    def linked_manifest(self, drill_id: str) -> str | None:
        """The digest of the drill's manifest once it is linked into its service's chain."""
        item = self._table.get_item(
            Key={"pk": f"DRILL#{drill_id}", "sk": "DRILL"}, ConsistentRead=True,
            ProjectionExpression="manifestDigest",
        ).get("Item")
        return str(item["manifestDigest"]) if item and item.get("manifestDigest") else None

    # -- fault records (write-ahead) -----------------------------------------------------------------
    def put_fault_pending(self, drill_id: str, planned: PlannedFault, snapshot_key: str, expires_at: int) -> bool:
        """Written *before* the mesh is touched, so every later path knows what to restore. False when the fault
        already has a record (a concurrent Inject, or a rollback that fenced it): then touch nothing."""
        try:
            self._table.put_item(
                Item={
                    "pk": f"DRILL#{drill_id}", "sk": f"FAULT#{planned.fault_id}", "drillId": drill_id,
                    "faultId": planned.fault_id, "status": "PENDING", "planned": planned.model_dump_json(),
                    "snapshotKey": snapshot_key, "expiresAt": expires_at,
                    "gsi2pk": ACTIVE_FAULTS, "gsi2sk": f"{expires_at:012d}#{drill_id}#{planned.fault_id}",
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            return False
        return True

    def fence_fault(self, drill_id: str, planned: PlannedFault, actor: str) -> bool:
        """A rollback that finds no record for a planned fault writes a SKIPPED one, so an Inject still in flight
        (a branch stopped mid-call, a late retry) can no longer start it. False when a record exists."""
        try:
            self._table.put_item(
                Item={
                    "pk": f"DRILL#{drill_id}", "sk": f"FAULT#{planned.fault_id}", "drillId": drill_id,
                    "faultId": planned.fault_id, "status": "SKIPPED", "planned": planned.model_dump_json(),
                    "snapshotKey": "", "expiresAt": 0, "restoredBy": actor,
                    "detail": f"fenced by {actor}: the drill was rolled back before this fault was injected",
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            return False
        return True

    def mark_fault(
        self, drill_id: str, fault_id: str, status: FaultStatus, *, expect: FaultStatus | None = None,
        **attributes: Any,
    ) -> bool:
        """Move an existing fault record to ``status`` (only from ``expect``, when given); False if it could not.
        RESTORED and SKIPPED leave the sweeper's index."""
        sets = {"status": status, **{k: v for k, v in attributes.items() if v is not None}}
        expression = "SET " + ", ".join(f"#{k} = :{k}" for k in sets)
        if status in ("RESTORED", "SKIPPED"):
            expression += " REMOVE gsi2pk, gsi2sk"
        values = {f":{k}": v for k, v in sets.items()}
        condition = "attribute_exists(pk)"
        if expect is not None:
            condition += " AND #status = :expected"
            values[":expected"] = expect
        try:
            self._table.update_item(
                Key={"pk": f"DRILL#{drill_id}", "sk": f"FAULT#{fault_id}"},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames={f"#{k}": k for k in sets},
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            return False
        return True

    def reopen_fault(self, record: FaultRecord, detail: str) -> None:
        """A fault that is live again after its record said otherwise: FAILED, and back in the sweeper's index."""
        self._table.update_item(
            Key={"pk": f"DRILL#{record.drill_id}", "sk": f"FAULT#{record.fault_id}"},
            UpdateExpression="SET #status = :failed, #detail = :detail, gsi2pk = :active, gsi2sk = :sort",
            ExpressionAttributeNames={"#status": "status", "#detail": "detail"},
            ExpressionAttributeValues={
                ":failed": "FAILED", ":detail": detail[:1000], ":active": ACTIVE_FAULTS,
                ":sort": f"{record.expires_at:012d}#{record.drill_id}#{record.fault_id}",
            },
        )

    def fault(self, drill_id: str, fault_id: str) -> FaultRecord | None:
        key = {"pk": f"DRILL#{drill_id}", "sk": f"FAULT#{fault_id}"}
        item = self._table.get_item(Key=key, ConsistentRead=True).get("Item")
        return self._fault(item) if item else None

    def faults_of(self, drill_id: str) -> list[FaultRecord]:
        query: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :fault)",
            "ExpressionAttributeValues": {":pk": f"DRILL#{drill_id}", ":fault": "FAULT#"},
            "ConsistentRead": True,
        }
        records: list[FaultRecord] = []
        while True:
            response = self._table.query(**query)
            records += [self._fault(item) for item in response.get("Items", [])]
            if "LastEvaluatedKey" not in response:
                return records
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def active_faults(self) -> list[FaultRecord]:
        """Every fault not yet RESTORED or SKIPPED, of any drill (gsi2, earliest expiry first)."""
        return [self._fault(item) for item in self._query_gsi2(ACTIVE_FAULTS)]

    def faults_expired_before(self, epoch_seconds: int) -> list[FaultRecord]:
        return [self._fault(item) for item in self._query_gsi2(ACTIVE_FAULTS, before=f"{epoch_seconds:012d}")]

    @staticmethod
    def _fault(item: dict[str, Any]) -> FaultRecord:
        item = _plain(item)
        return FaultRecord(
            drill_id=item["drillId"], fault_id=item["faultId"], status=item["status"],
            planned=PlannedFault.model_validate(json.loads(item["planned"])),
            snapshot_key=item["snapshotKey"], expires_at=item["expiresAt"],
            injected_at_ms=item.get("injectedAtMs"), restored_at_ms=item.get("restoredAtMs"),
            detail=item.get("detail"), restored_by=item.get("restoredBy"), external_id=item.get("externalId"),
        )

    # -- the guardian's mark on a drill record -------------------------------------------------------
    def mark_guarded(self, drill_id: str, **attributes: Any) -> bool:
        """Record on an existing drill record how its execution ended and what the guardian did."""
        sets = {k: v for k, v in attributes.items() if v is not None}
        if not sets:
            return False
        try:
            self._table.update_item(
                Key={"pk": f"DRILL#{drill_id}", "sk": "DRILL"},
                UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in sets),
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={f"#{k}": k for k in sets},
                ExpressionAttributeValues={f":{k}": v for k, v in sets.items()},
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            return False
        return True
