"""The sandbox's DynamoDB global tables for ``dynamodb`` data checks: one moto table per region, replicated here.

moto has no global tables: nothing copies an item put in one region to another. ``TableReplicator`` plays the
replication, on a thread, with the sandbox store's lag (``markers.py``: ``lag`` + ``jitter``, paused while the
primary fails): every tick each lane looks for the next markers of its check in its source table (by key: moto's
scans are slow) and copies each to its destinations once it is due (``lag`` after the marker's own write time,
``sentMs``). The forward lane copies the primary's markers to every replica; with ``standbyWrites`` a back lane per
replica copies the markers written there to the primary, and with ``dropOnFailback`` those that appear while the
primary fails are never copied (a lossy failback). Once the newest forward marker is gone from the primary (a
cleanup deletes markers in every region itself) nothing more is copied.
The lag is therefore the configured one plus at most one tick (``TICK_S``); while paused, nothing is copied and
the backlog is copied at once when the primary is back.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from livefire.datachecks.stores import KEY_ATTRIBUTE
from livefire.spec.datachecks import MARKER_PREFIX, DynamoMarkers, standby_prefix
from livefire_local.sandbox.markers import LagProfile

TICK_S = 0.2
PROBE_KEYS = 25  # keys looked for per tick: up to 125 new markers a second
_log = logging.getLogger(__name__)


def _client(region: str) -> Any:
    return boto3.client("dynamodb", region_name=region)


def _keys(region: str, table: str) -> set[str]:
    pages = _client(region).get_paginator("scan").paginate(
        TableName=table, ConsistentRead=True, ProjectionExpression="#k", ExpressionAttributeNames={"#k": KEY_ATTRIBUTE})
    return {item[KEY_ATTRIBUTE]["S"] for page in pages for item in page.get("Items", [])}


@dataclass
class _Lane:
    """One direction of replication: the markers under ``prefix`` that appear in ``source``, for ``destinations``."""

    source: str
    destinations: list[str]
    prefix: str
    back: bool  # a standby's markers, on their way back to the primary
    next_seq: int = 0
    pending: list[tuple[float, dict[str, Any]]] = field(default_factory=list)  # (due, item), in order of appearance


class TableReplicator:
    def __init__(self, section: DynamoMarkers, check: str, profile: LagProfile, *, standby_writes: bool = False,
                 primary_failing: Callable[[], bool] = lambda: False, seed: int | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.section = section
        self.check = check
        self.profile = profile
        self.standby_writes = standby_writes
        self._failing = primary_failing
        self._rng = random.Random(seed)
        self._clock = clock
        self._lanes: list[_Lane] = []  # made once the drill's prefix is known
        self.dropped = 0  # standby markers never copied back (``drop_on_failback``)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def create_tables(self) -> None:
        """The table in the primary and in every replica region (moto must be active)."""
        for region in (self.section.primary_region, *self.section.replica_regions):
            _client(region).create_table(
                TableName=self.section.table, BillingMode="PAY_PER_REQUEST",
                KeySchema=[{"AttributeName": KEY_ATTRIBUTE, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": KEY_ATTRIBUTE, "AttributeType": "S"}])

    def _discover(self) -> None:
        """The lanes, once the drill's marker prefix of this check (``livefire-marker/<drill>/<check>/``) is known
        from any marker of it (a scan of one item)."""
        primary, replicas = self.section.primary_region, self.section.replica_regions
        items = _client(primary).scan(TableName=self.section.table, Limit=1).get("Items", [])
        for item in items:
            parts = str(item[KEY_ATTRIBUTE]["S"]).split("/")
            if len(parts) >= 4 and parts[0] == MARKER_PREFIX and parts[2] == self.check:
                prefix = "/".join(parts[:3]) + "/"
                self._lanes = [_Lane(primary, list(replicas), prefix, back=False)] + [
                    _Lane(region, [primary], standby_prefix(prefix, region), back=True)
                    for region in (replicas if self.standby_writes else ())]

    def _appeared(self, lane: _Lane, now: float, drop: bool) -> None:
        """Markers new in the lane's source since the last tick, by key (moto's scans are too slow to repeat);
        ``drop``: seen, never copied."""
        keys = [f"{lane.prefix}{seq:010d}" for seq in range(lane.next_seq, lane.next_seq + PROBE_KEYS)]
        answer = _client(lane.source).batch_get_item(RequestItems={self.section.table: {
            "Keys": [{KEY_ATTRIBUTE: {"S": key}} for key in keys], "ConsistentRead": True}})
        found = sorted(answer.get("Responses", {}).get(self.section.table, []),
                       key=lambda item: str(item[KEY_ATTRIBUTE]["S"]))
        if found:
            lane.next_seq = int(str(found[-1][KEY_ATTRIBUTE]["S"]).rpartition("/")[2]) + 1
        if drop:
            self.dropped += len(found)
            return
        latest = lane.pending[-1][0] if lane.pending else now
        for item in found:  # due ``lag`` after the marker was written (its sentMs), not after this tick saw it
            written_s = float(item.get("sentMs", {}).get("N", now * 1000.0)) / 1000.0
            latest = max(latest, written_s + self.profile.lag_s + self._rng.uniform(0.0, self.profile.jitter_s))
            lane.pending.append((latest, item))

    def _cleaned_up(self) -> bool:
        """Whether the newest marker seen in the primary is gone: the drill's markers were deleted."""
        forward = self._lanes[0]
        newest = f"{forward.prefix}{forward.next_seq - 1:010d}"
        answer = _client(self.section.primary_region).get_item(
            TableName=self.section.table, Key={KEY_ATTRIBUTE: {"S": newest}}, ConsistentRead=True)
        return "Item" not in answer

    def tick(self) -> None:
        failing = self._failing()
        paused = self.profile.pause_on_fault and failing
        dropping = self.profile.drop_on_failback and failing
        if not self._lanes:
            if paused:
                return
            self._discover()
        now = self._clock()
        for lane in self._lanes:
            if not paused or (lane.back and dropping):  # a paused primary takes nothing; a lossy one loses it
                self._appeared(lane, now, drop=lane.back and dropping)
        if paused or not self._lanes:
            return
        if any(lane.pending for lane in self._lanes) and self._cleaned_up():  # no copy may outlive the cleanup
            for lane in self._lanes:
                lane.pending.clear()
            return
        for lane in self._lanes:
            while lane.pending and lane.pending[0][0] <= now:
                _due, item = lane.pending.pop(0)
                for region in lane.destinations:
                    _client(region).put_item(TableName=self.section.table, Item=item)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"sandbox-replication-{self.section.table}",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self.tick()
            except Exception:  # moto is going away at the end of the run, or a table was dropped: say so, go on
                _log.exception("sandbox replication of %s failed", self.section.table)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def markers_left(self) -> int:
        """Marker items left in any region's table."""
        return sum(len(_keys(region, self.section.table))
                   for region in (self.section.primary_region, *self.section.replica_regions))
