"""The drill table (DynamoDB, single table): drill records, fault records, leases, chain heads.

Keys: ``pk``/``sk``. A drill record is ``DRILL#<id>`` / ``DRILL``; its faults ``DRILL#<id>`` / ``FAULT#<fault-id>``;
a lease ``LEASE#<target>`` / ``LEASE``. ``gsi1`` lists drills by service and time (history); ``gsi2`` is sparse
and holds only faults not yet restored, sorted by expiry, for the sweeper.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel

from livefire.contracts import FaultStatus, PlannedFault
from livefire.errors import DrillInProgress

ACTIVE_FAULTS = "ACTIVE_FAULT"


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

    # -- leases --------------------------------------------------------------------------------------
    def acquire_lease(self, lease_key: str, drill_id: str, expires_at: int) -> None:
        """One drill per target: a conditional write that also takes over an expired lease."""
        now = int(time.time())
        try:
            self._table.put_item(
                Item={"pk": f"LEASE#{lease_key}", "sk": "LEASE", "holder": drill_id,
                      "expiresAt": expires_at, "acquiredAt": now},
                ConditionExpression="attribute_not_exists(pk) OR expiresAt < :now OR holder = :me",
                ExpressionAttributeValues={":now": now, ":me": drill_id},
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            holder = self.lease_holder(lease_key)
            raise DrillInProgress(f"target {lease_key} is held by drill {holder}") from None

    def lease_holder(self, lease_key: str) -> str | None:
        item = self._table.get_item(Key={"pk": f"LEASE#{lease_key}", "sk": "LEASE"}).get("Item")
        if not item or int(item["expiresAt"]) < int(time.time()):
            return None
        return str(item["holder"])

    def release_lease(self, lease_key: str, drill_id: str) -> None:
        """Release only our own lease; releasing twice (or a lease taken over since) is fine."""
        try:
            self._table.delete_item(
                Key={"pk": f"LEASE#{lease_key}", "sk": "LEASE"},
                ConditionExpression="attribute_not_exists(pk) OR holder = :me",
                ExpressionAttributeValues={":me": drill_id},
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise

    # -- evidence hash chain -------------------------------------------------------------------------
    def chain_head(self, service: str) -> str | None:
        item = self._table.get_item(Key={"pk": f"CHAIN#{service}", "sk": "HEAD"}, ConsistentRead=True).get("Item")
        return str(item["digest"]) if item else None

    def advance_chain(self, service: str, previous: str | None, digest: str, drill_id: str) -> bool:
        """Move the chain head from ``previous`` to ``digest``; False if another drill moved it first."""
        condition = "attribute_not_exists(pk)" if previous is None else "digest = :previous"
        values: dict[str, Any] = {":digest": digest, ":drill": drill_id, ":at": _now_ms()}
        if previous is not None:
            values[":previous"] = previous
        try:
            self._table.update_item(
                Key={"pk": f"CHAIN#{service}", "sk": "HEAD"},
                UpdateExpression="SET digest = :digest, drillId = :drill, updatedAtMs = :at",
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True

    # -- fault records (write-ahead) -----------------------------------------------------------------
    def put_fault_pending(self, drill_id: str, planned: PlannedFault, snapshot_key: str, expires_at: int) -> None:
        """Written *before* the mesh is touched, so every later path knows what to restore."""
        self._table.put_item(
            Item={
                "pk": f"DRILL#{drill_id}", "sk": f"FAULT#{planned.fault_id}", "drillId": drill_id,
                "faultId": planned.fault_id, "status": "PENDING", "planned": planned.model_dump_json(),
                "snapshotKey": snapshot_key, "expiresAt": expires_at,
                "gsi2pk": ACTIVE_FAULTS, "gsi2sk": f"{expires_at:012d}#{drill_id}#{planned.fault_id}",
            },
            ConditionExpression="attribute_not_exists(pk)",
        )

    def mark_fault(self, drill_id: str, fault_id: str, status: FaultStatus, **attributes: Any) -> None:
        sets = {"status": status, **{k: v for k, v in attributes.items() if v is not None}}
        expression = "SET " + ", ".join(f"#{k} = :{k}" for k in sets)
        if status in ("RESTORED", "SKIPPED"):
            expression += " REMOVE gsi2pk, gsi2sk"
        self._table.update_item(
            Key={"pk": f"DRILL#{drill_id}", "sk": f"FAULT#{fault_id}"},
            UpdateExpression=expression,
            ExpressionAttributeNames={f"#{k}": k for k in sets},
            ExpressionAttributeValues={f":{k}": v for k, v in sets.items()},
        )

    def faults_of(self, drill_id: str) -> list[FaultRecord]:
        response = self._table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :fault)",
            ExpressionAttributeValues={":pk": f"DRILL#{drill_id}", ":fault": "FAULT#"},
            ConsistentRead=True,
        )
        return [self._fault(item) for item in response.get("Items", [])]

    def faults_expired_before(self, epoch_seconds: int) -> list[FaultRecord]:
        response = self._table.query(
            IndexName="gsi2",
            KeyConditionExpression="gsi2pk = :active AND gsi2sk < :until",
            ExpressionAttributeValues={":active": ACTIVE_FAULTS, ":until": f"{epoch_seconds:012d}"},
        )
        return [self._fault(item) for item in response.get("Items", [])]

    @staticmethod
    def _fault(item: dict[str, Any]) -> FaultRecord:
        item = _plain(item)
        return FaultRecord(
            drill_id=item["drillId"], fault_id=item["faultId"], status=item["status"],
            planned=PlannedFault.model_validate(json.loads(item["planned"])),
            snapshot_key=item["snapshotKey"], expires_at=item["expiresAt"],
            injected_at_ms=item.get("injectedAtMs"), restored_at_ms=item.get("restoredAtMs"),
            detail=item.get("detail"),
        )
