"""Leases in the drill table (``LEASE#<target>`` / ``LEASE``, listed in gsi2 so the sweeper finds the strays): one
live drill per service and one per object (docs/architecture.md §9).

A lease is a conditional write with an expiry; an expired lease holds nothing and is taken over. Its holder is one
drill, except for a service lease shared by the drills of a multi-region fault (``guardrails.multiRegionFault``):
its holder is ``SHARED_HOLDER`` and it lists its member drills with their executions. Every write here is a
PutItem or DeleteItem conditioned on what was read, so the roles that release leases need nothing more.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any

from botocore.exceptions import ClientError

from livefire.errors import DrillInProgress
from livefire.records import DrillRecord, Lease
from livefire.table import if_condition_holds, is_condition_failure, plain, query_gsi2

ACTIVE_LEASES = "ACTIVE_LEASE"
# The holder of a service lease shared by the drills of a multi-region fault (no drill id has parentheses).
SHARED_HOLDER = "(multi-region)"
# How often a write to a shared lease is tried again when another drill changed it in between.
_SHARED_LEASE_ATTEMPTS = 5
_SAME_VERSION = "holder = :shared AND version = :version"


def _key(lease_key: str) -> dict[str, str]:
    return {"pk": f"LEASE#{lease_key}", "sk": "LEASE"}


def _item(lease_key: str, holder: str, expires_at: int, now: int) -> dict[str, Any]:
    return {**_key(lease_key), "leaseKey": lease_key, "holder": holder, "expiresAt": expires_at, "acquiredAt": now,
            "gsi2pk": ACTIVE_LEASES, "gsi2sk": f"{expires_at:012d}#{lease_key}"}


def _lease(item: dict[str, Any]) -> Lease:
    return Lease.model_validate({"leaseKey": str(item["pk"]).removeprefix("LEASE#"), **item})


class LeaseTable(ABC):
    """The lease part of ``livefire.store.DrillStore``."""

    _table: Any

    @abstractmethod
    def get_drill(self, drill_id: str) -> DrillRecord | None:
        """The drill's record: a member of a shared lease runs while its record is RUNNING."""

    def acquire_lease(self, lease_key: str, drill_id: str, expires_at: int, execution_arn: str | None = None) -> None:
        """One drill per target: a conditional write that also takes over an expired lease, and that its own
        holder may repeat (a retried Plan)."""
        now = int(time.time())
        item = _item(lease_key, drill_id, expires_at, now)
        if execution_arn:
            item["executionArn"] = execution_arn
        condition = "attribute_not_exists(pk) OR expiresAt < :now OR holder = :me"
        values: dict[str, Any] = {":now": now, ":me": drill_id}
        if execution_arn:  # the same drill id started by another execution is another drill
            condition = ("attribute_not_exists(pk) OR expiresAt < :now OR "
                         "(holder = :me AND (attribute_not_exists(executionArn) OR executionArn = :arn))")
            values[":arn"] = execution_arn
        if not if_condition_holds(lambda: self._table.put_item(
                Item=item, ConditionExpression=condition, ExpressionAttributeValues=values)):
            raise DrillInProgress(self._held_by(lease_key))

    def join_shared_lease(self, lease_key: str, drill_id: str, expires_at: int, execution_arn: str) -> None:
        """Take or join the shared lease of a multi-region fault; it excludes every drill that does not share it.
        Joining again with the same execution is a retried Plan. Each write is conditioned on the version read,
        so drills joining at once all end up members; members whose drill has ended are dropped as another
        joins, and the lease lapses at its latest member's expiry."""
        for _ in range(_SHARED_LEASE_ATTEMPTS):
            now = int(time.time())
            current = self._lease_item(lease_key)
            values: dict[str, Any]
            if current is None or current["expiresAt"] < now:
                members, version = {drill_id: execution_arn}, 1
                condition, values = "attribute_not_exists(pk) OR expiresAt < :now", {":now": now}
            elif current["holder"] != SHARED_HOLDER or current["members"].get(drill_id, execution_arn) != execution_arn:
                break  # held by one drill, or shared by this drill id started by another execution
            else:
                members = {**self._live_members(current["members"], drill_id), drill_id: execution_arn}
                expires_at, version = max(expires_at, current["expiresAt"]), current["version"] + 1
                condition, values = _SAME_VERSION, {":shared": SHARED_HOLDER, ":version": current["version"]}
            item = {**_item(lease_key, SHARED_HOLDER, expires_at, now), "members": members, "version": version}
            if self._put_if(item, condition, values):
                return
        raise DrillInProgress(self._held_by(lease_key))

    def _put_if(self, item: dict[str, Any], condition: str, values: dict[str, Any]) -> bool:
        return if_condition_holds(lambda: self._table.put_item(
            Item=item, ConditionExpression=condition, ExpressionAttributeValues=values))

    def lease(self, lease_key: str) -> Lease | None:
        """The lease item, expired or not."""
        item = self._lease_item(lease_key)
        return _lease(item) if item else None

    def lease_holder(self, lease_key: str) -> str | None:
        """The drill holding the target now (an expired lease holds nothing)."""
        lease = self.lease(lease_key)
        if lease is None or lease.expires_at < int(time.time()):
            return None
        return lease.holder

    def release_lease(self, lease_key: str, drill_id: str) -> bool:
        """Release only our own lease, or leave a shared one; releasing twice (or a lease taken over since) is fine.
        True when this call deleted the drill's lease or left the shared lease it was a member of."""
        try:
            response = self._table.delete_item(
                Key=_key(lease_key),
                ConditionExpression="attribute_not_exists(pk) OR holder = :me",
                ExpressionAttributeValues={":me": drill_id},
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            return self._leave_shared_lease(lease_key, drill_id)
        return bool(response.get("Attributes"))

    def release_expired_lease(self, lease: Lease, now: int) -> bool:
        """Delete a lease that expired before ``now`` and is still held by the same drill."""
        return if_condition_holds(lambda: self._table.delete_item(
            Key=_key(lease.lease_key),
            ConditionExpression="holder = :holder AND expiresAt < :now",
            ExpressionAttributeValues={":holder": lease.holder, ":now": now},
        ))

    def active_leases(self) -> list[Lease]:
        """Every lease in the table (gsi2, oldest expiry first): what the sweeper checks."""
        return [_lease(plain(item)) for item in query_gsi2(self._table, ACTIVE_LEASES)]

    def leases_held_by(self, drill_id: str) -> list[Lease]:
        """The leases the drill holds, or shares as a member."""
        return [lease for lease in self.active_leases() if lease.holder == drill_id or drill_id in lease.members]

    def _leave_shared_lease(self, lease_key: str, drill_id: str) -> bool:
        """The last live member deletes the shared lease (conditioned on the version read); while other members
        run nothing is written: each member's own record says when it ended. True when the drill was a member."""
        for _ in range(_SHARED_LEASE_ATTEMPTS):
            current = self._lease_item(lease_key)
            if current is None or current["holder"] != SHARED_HOLDER or drill_id not in current["members"]:
                return False
            if self._live_members(current["members"], drill_id) or self._delete_if(lease_key, current["version"]):
                return True
        return True  # others keep joining: they are live members, and the last of them deletes it

    def _delete_if(self, lease_key: str, version: int) -> bool:
        return if_condition_holds(lambda: self._table.delete_item(
            Key=_key(lease_key), ConditionExpression=_SAME_VERSION,
            ExpressionAttributeValues={":shared": SHARED_HOLDER, ":version": version}))

    def _live_members(self, members: dict[str, str], leaving: str) -> dict[str, str]:
        """The members other than ``leaving`` that may still run: the record of the same execution is RUNNING,
        or there is none yet (a Plan in flight)."""
        live = {}
        for member, execution_arn in members.items():
            if member == leaving:
                continue
            record = self.get_drill(member)
            if record is None or (record.status == "RUNNING" and record.execution_arn == execution_arn):
                live[member] = execution_arn
        return live

    def _lease_item(self, lease_key: str) -> dict[str, Any] | None:
        item = self._table.get_item(Key=_key(lease_key), ConsistentRead=True).get("Item")
        return plain(item) if item else None

    def _held_by(self, lease_key: str) -> str:
        lease = self.lease(lease_key)
        if lease is not None and lease.holder == SHARED_HOLDER:
            return (f"target {lease_key} is held by the drills of a multi-region fault "
                    f"({', '.join(sorted(lease.members))}); only a drill with guardrails.multiRegionFault may join")
        return f"target {lease_key} is held by drill {lease.holder if lease is not None else None}"
