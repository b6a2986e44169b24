"""The sandbox's replicated marker store: what a drill's ``dataChecks`` write to and read from locally
(docs/architecture.md §10).

Markers written in the primary region become visible in each other region once replicated: after the store's
``lag`` plus a uniform ``jitter`` per marker, in write order (a replication log never reorders), and, with
``pauseOnFault``, never while the primary region's service fails (a failed region replicates nothing; its backlog
drains once it is back). A marker written in another region (a data check's ``standbyWrites``) is replicated back
to the primary the same way, unless ``dropOnFailback``: what a standby took while the primary failed then never
reaches the primary (a lossy failback). The lag of each store is set per sandbox mesh in
``<mesh_dir>/markers.yaml``, by the host of a data check's write URL (``http``) or by its table (``dynamodb``)::

    http:
      markers.payments.sandbox: {lag: 200ms, jitter: 100ms, pauseOnFault: true}
    dynamodb:
      livefire-markers: {lag: 10s, dropOnFailback: true}

``MarkerServer`` answers the README's http marker contract (``respond``, behind a ``LoopbackServer``) for every
write and read URL of the spec's ``http`` checks (``*.sandbox`` hosts only): ``POST`` a marker in the URL's region,
``GET ?prefix=`` the newest a region holds (``&seq=``: that one marker), ``DELETE ?prefix=`` to clean up; its
replication thread ticks the stores. The ``dynamodb`` kind replicates between per-region moto tables
(``marker_tables.py``).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from livefire.datachecks.markers import Marker
from livefire.spec import parse_duration
from livefire_local.sandbox.loopback import LoopbackServed, LoopbackServer, Request, Response, json_response

LOOPBACK = "127.0.0.1"
CONFIG_FILE = "markers.yaml"
TICK_S = 0.05
_PROFILE_KEYS = {"lag", "jitter", "pauseOnFault", "dropOnFailback"}


@dataclass(frozen=True)
class LagProfile:
    """How one sandbox store replicates: ``lag`` + uniform [0, ``jitter``] seconds, paused while the primary
    fails when ``pause_on_fault``; with ``drop_on_failback``, a standby's writes taken while the primary fails are
    never replicated back to it."""

    lag_s: float = 0.0
    jitter_s: float = 0.0
    pause_on_fault: bool = True
    drop_on_failback: bool = False

    @classmethod
    def parse(cls, where: str, raw: Any) -> LagProfile:
        if not isinstance(raw, dict) or set(raw) - _PROFILE_KEYS:
            raise ValueError(f"{where}: must be a mapping of {', '.join(sorted(_PROFILE_KEYS))}")
        return cls(parse_duration(raw.get("lag", 0)), parse_duration(raw.get("jitter", 0)),
                   bool(raw.get("pauseOnFault", True)), bool(raw.get("dropOnFailback", False)))


def load_profiles(mesh_dir: Path) -> dict[str, dict[str, LagProfile]]:
    """``{"http": {host: profile}, "dynamodb": {table: profile}}`` from ``<mesh_dir>/markers.yaml`` (empty: none)."""
    path = Path(mesh_dir) / CONFIG_FILE
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    profiles: dict[str, dict[str, LagProfile]] = {"http": {}, "dynamodb": {}}
    for kind, stores in (raw or {}).items():
        if kind not in profiles or not isinstance(stores, dict):
            raise ValueError(f"{path}: {kind}: expected http or dynamodb, each a mapping of stores")
        profiles[kind] = {str(name): LagProfile.parse(f"{path}: {kind}.{name}", value)
                          for name, value in stores.items()}
    return profiles


@dataclass(order=True)
class _Pending:
    due_s: float
    prefix: str = field(compare=False)
    marker: Marker = field(compare=False)


class ReplicatedMarkers:
    """One marker store: the markers each region holds, and what is replicating to each. ``tick`` replicates."""

    def __init__(self, primary: str, replicas: list[str], profile: LagProfile, *,
                 primary_failing: Callable[[], bool] = lambda: False, seed: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.primary = primary
        self.profile = profile
        self._failing = primary_failing
        self._rng = random.Random(seed)
        self._clock = clock
        self._lock = threading.Lock()
        self._held: dict[str, dict[str, dict[int, Marker]]] = {region: {} for region in (primary, *replicas)}
        self._queues: dict[str, list[_Pending]] = {region: [] for region in (primary, *replicas)}  # by destination
        self.paused = False
        self.dropped = 0  # standby writes never replicated back (``drop_on_failback``)

    def put(self, prefix: str, marker: Marker, region: str | None = None) -> None:
        """A marker written in ``region`` (the primary when None): held there at once, and replicated to every
        replica when written in the primary, back to the primary when written in a replica."""
        written_in = region or self.primary
        dropped = written_in != self.primary and self.profile.drop_on_failback and self._failing()
        now = self._clock()
        with self._lock:
            self._held[written_in].setdefault(prefix, {})[marker.seq] = marker
            if dropped:
                self.dropped += 1
                return
            back = written_in != self.primary
            destinations = [self.primary] if back else [r for r in self._queues if r != self.primary]
            for destination in destinations:
                queue = self._queues[destination]
                due = now + self.profile.lag_s + self._rng.uniform(0.0, self.profile.jitter_s)
                queue.append(_Pending(max(due, queue[-1].due_s if queue else due), prefix, marker))

    def tick(self) -> None:
        """Replicate every marker due by now, unless the primary fails (``pauseOnFault``): it neither sends its
        markers nor takes the standbys' back."""
        paused = self.profile.pause_on_fault and self._failing()
        now = self._clock()
        with self._lock:
            self.paused = paused
            if paused:
                return
            for region, queue in self._queues.items():
                while queue and queue[0].due_s <= now:
                    pending = queue.pop(0)
                    self._held[region].setdefault(pending.prefix, {})[pending.marker.seq] = pending.marker

    def newest(self, region: str, prefix: str) -> Marker | None:
        with self._lock:
            held = self._held[region].get(prefix)
            return held[max(held)] if held else None

    def held(self, region: str, prefix: str, seq: int) -> Marker | None:
        """Marker ``seq`` under ``prefix`` if ``region`` holds it."""
        with self._lock:
            return self._held[region].get(prefix, {}).get(seq)

    def delete(self, prefix: str) -> int:
        """Forget every marker under ``prefix``, held or still replicating; how many were held."""
        with self._lock:
            removed = 0
            for held in self._held.values():
                for key in [key for key in held if key.startswith(prefix)]:
                    removed += len(held.pop(key))
            for region, queue in self._queues.items():
                self._queues[region] = [p for p in queue if not p.prefix.startswith(prefix)]
            return removed

    def markers_left(self) -> int:
        """Markers still held or replicating anywhere (0 once a drill cleaned up)."""
        with self._lock:
            return sum(len(markers) for held in self._held.values() for markers in held.values()) + sum(
                map(len, self._queues.values()))


def _marker(marker: Marker | None) -> dict[str, Any]:
    return {"seq": marker.seq, "sentMs": marker.sent_ms} if marker is not None else {"seq": None}


class MarkerServer(LoopbackServed):
    """The http marker contract on loopback for every host of the given stores, and the thread that replicates
    them. ``routes``: host -> (store, region the host writes to and reads from)."""

    def __init__(self, routes: dict[str, tuple[ReplicatedMarkers, str]]) -> None:
        self.routes = routes
        self._server = LoopbackServer(self.respond)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def respond(self, request: Request) -> Response:
        host = request.headers.get("host") or ""
        route = self.routes.get((host.rpartition(":")[0] or host).lower())
        query = parse_qs(urlsplit(request.path).query)
        prefix = query.get("prefix", [""])[0]
        if route is None:
            return json_response(404, {"error": "not a marker URL"})
        store, region = route
        if request.method == "POST":
            try:
                marker = json.loads(request.body)
                store.put(str(marker["prefix"]), Marker(int(marker["seq"]), float(marker["sentMs"])), region)
            except (ValueError, KeyError, TypeError):
                return json_response(400, {"error": "expected {prefix, seq, sentMs}"})
            return json_response(201, {"seq": marker["seq"]})
        if not prefix:
            return json_response(404, {"error": "no prefix"})
        if request.method == "DELETE":
            return json_response(200, {"deleted": store.delete(prefix)})
        if request.method != "GET":
            return json_response(405, {"error": "POST, GET or DELETE"})
        if "seq" not in query:
            return json_response(200, _marker(store.newest(region, prefix)))
        try:
            held = store.held(region, prefix, int(query["seq"][0]))
        except ValueError:
            return json_response(400, {"error": "seq is not a number"})
        return json_response(200 if held is not None else 404, _marker(held))

    def start(self) -> str:
        url = super().start()
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._replicate, name="sandbox-markers-replication", daemon=True)
            self._thread.start()
        return url

    def _replicate(self) -> None:
        stores = {id(store): store for store, _ in self.routes.values()}
        while not self._stop.wait(TICK_S):
            for store in stores.values():
                store.tick()

    def stop(self) -> None:
        super().stop()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
