"""The sandbox's DynamoDB global tables for ``dynamodb`` data checks: one moto table per region, replicated here.

moto has no global tables: nothing copies an item put in one region to another. ``TableReplicator`` plays the
replication, on a thread, with the sandbox store's lag (``markers.py``: ``lag`` + ``jitter``, paused while the
primary fails): every tick it looks for the next markers of its check in the primary table (by key: moto's scans
are slow) and copies each to every replica region once it is due (``lag`` after the marker's own write time,
``sentMs``); once the newest marker is gone from the primary (a cleanup deletes markers in every region itself)
it copies nothing more.
The lag is therefore the configured one plus at most one tick (``TICK_S``); while paused, nothing is copied and
the backlog is copied at once when the primary is back.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3

from livefire.datachecks.stores import KEY_ATTRIBUTE
from livefire.spec.datachecks import DynamoMarkers
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


class TableReplicator:
    def __init__(self, section: DynamoMarkers, check: str, profile: LagProfile, *,
                 primary_failing: Callable[[], bool] = lambda: False, seed: int | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.section = section
        self.check = check
        self.profile = profile
        self._failing = primary_failing
        self._rng = random.Random(seed)
        self._clock = clock
        self._prefix: str | None = None  # livefire-marker/<drill>/<check>/, learnt from the first marker
        self._next_seq = 0
        self._pending: list[tuple[float, dict[str, Any]]] = []  # (due, item), in the order the markers appeared
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
        """The drill's marker prefix of this check, from any marker of it (a scan of one item)."""
        items = _client(self.section.primary_region).scan(TableName=self.section.table, Limit=1).get("Items", [])
        for item in items:
            prefix, _, _seq = item[KEY_ATTRIBUTE]["S"].rpartition("/")
            if prefix.endswith(f"/{self.check}"):
                self._prefix = prefix + "/"

    def _appeared(self, now: float) -> None:
        """Markers new in the primary since the last tick, by key (moto's scans are too slow to repeat)."""
        keys = [f"{self._prefix}{seq:010d}" for seq in range(self._next_seq, self._next_seq + PROBE_KEYS)]
        answer = _client(self.section.primary_region).batch_get_item(RequestItems={self.section.table: {
            "Keys": [{KEY_ATTRIBUTE: {"S": key}} for key in keys], "ConsistentRead": True}})
        found = sorted(answer.get("Responses", {}).get(self.section.table, []),
                       key=lambda item: str(item[KEY_ATTRIBUTE]["S"]))
        latest = self._pending[-1][0] if self._pending else now
        for item in found:  # due ``lag`` after the marker was written (its sentMs), not after this tick saw it
            written_s = float(item.get("sentMs", {}).get("N", now * 1000.0)) / 1000.0
            latest = max(latest, written_s + self.profile.lag_s + self._rng.uniform(0.0, self.profile.jitter_s))
            self._pending.append((latest, item))
        if found:
            self._next_seq = int(str(found[-1][KEY_ATTRIBUTE]["S"]).rpartition("/")[2]) + 1

    def _cleaned_up(self) -> bool:
        """Whether the newest marker seen in the primary is gone: the drill's markers were deleted."""
        newest = f"{self._prefix}{self._next_seq - 1:010d}"
        answer = _client(self.section.primary_region).get_item(
            TableName=self.section.table, Key={KEY_ATTRIBUTE: {"S": newest}}, ConsistentRead=True)
        return "Item" not in answer

    def tick(self) -> None:
        if self.profile.pause_on_fault and self._failing():
            return
        now = self._clock()
        if self._prefix is None:
            self._discover()
        if self._prefix is None:
            return
        self._appeared(now)
        if self._pending and self._cleaned_up():  # nothing left to replicate, and no copy may outlive the cleanup
            self._pending.clear()
            return
        while self._pending and self._pending[0][0] <= now:
            _due, item = self._pending.pop(0)
            for region in self.section.replica_regions:
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
