"""The sandbox's replicated marker store: what a drill's ``dataChecks`` write to and read from locally
(docs/architecture.md §10).

Markers written in the primary region become visible in each other region once replicated: after the store's
``lag`` plus a uniform ``jitter`` per marker, in write order (a replication log never reorders), and, with
``pauseOnFault``, never while the primary region's service fails (a failed region replicates nothing; its backlog
drains once it is back). The lag of each store is set per sandbox mesh in ``<mesh_dir>/markers.yaml``, by the host
of a data check's write URL (``http``) or by its table (``dynamodb``)::

    http:
      markers.payments.sandbox: {lag: 200ms, jitter: 100ms, pauseOnFault: true}
    dynamodb:
      livefire-markers: {lag: 10s}

``MarkerServer`` serves the README's http marker contract for every write and read URL of the spec's ``http``
checks (``*.sandbox`` hosts only): ``POST`` a marker, ``GET ?prefix=`` the newest a region holds, ``DELETE
?prefix=`` to clean up. The ``dynamodb`` kind replicates between per-region moto tables (``marker_tables.py``).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import yaml

from livefire.datachecks.markers import Marker
from livefire.spec import parse_duration

LOOPBACK = "127.0.0.1"
CONFIG_FILE = "markers.yaml"
TICK_S = 0.05


@dataclass(frozen=True)
class LagProfile:
    """How one sandbox store replicates: ``lag`` + uniform [0, ``jitter``] seconds, paused while the primary
    fails when ``pause_on_fault``."""

    lag_s: float = 0.0
    jitter_s: float = 0.0
    pause_on_fault: bool = True

    @classmethod
    def parse(cls, where: str, raw: Any) -> LagProfile:
        if not isinstance(raw, dict) or set(raw) - {"lag", "jitter", "pauseOnFault"}:
            raise ValueError(f"{where}: must be a mapping of lag, jitter and pauseOnFault")
        return cls(parse_duration(raw.get("lag", 0)), parse_duration(raw.get("jitter", 0)),
                   bool(raw.get("pauseOnFault", True)))


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
    """One marker store: the primary's markers and what each replica region holds. ``tick`` replicates."""

    def __init__(self, primary: str, replicas: list[str], profile: LagProfile, *,
                 primary_failing: Callable[[], bool] = lambda: False, seed: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.primary = primary
        self.profile = profile
        self._failing = primary_failing
        self._rng = random.Random(seed)
        self._clock = clock
        self._lock = threading.Lock()
        self._held: dict[str, dict[str, Marker]] = {region: {} for region in (primary, *replicas)}
        self._queues: dict[str, list[_Pending]] = {region: [] for region in replicas}
        self.paused = False

    def put(self, prefix: str, marker: Marker) -> None:
        now = self._clock()
        with self._lock:
            self._hold(self.primary, prefix, marker)
            for queue in self._queues.values():
                due = now + self.profile.lag_s + self._rng.uniform(0.0, self.profile.jitter_s)
                queue.append(_Pending(max(due, queue[-1].due_s if queue else due), prefix, marker))

    def _hold(self, region: str, prefix: str, marker: Marker) -> None:
        held = self._held[region]
        if prefix not in held or held[prefix].seq < marker.seq:
            held[prefix] = marker

    def tick(self) -> None:
        """Replicate every marker due by now, unless the primary fails (``pauseOnFault``)."""
        paused = self.profile.pause_on_fault and self._failing()
        now = self._clock()
        with self._lock:
            self.paused = paused
            if paused:
                return
            for region, queue in self._queues.items():
                while queue and queue[0].due_s <= now:
                    pending = queue.pop(0)
                    self._hold(region, pending.prefix, pending.marker)

    def newest(self, region: str, prefix: str) -> Marker | None:
        with self._lock:
            return self._held[region].get(prefix)

    def delete(self, prefix: str) -> int:
        """Forget every marker under ``prefix``, held or still replicating; how many stores held some."""
        with self._lock:
            removed = 0
            for held in self._held.values():
                for key in [key for key in held if key.startswith(prefix)]:
                    del held[key]
                    removed += 1
            for region, queue in self._queues.items():
                self._queues[region] = [p for p in queue if not p.prefix.startswith(prefix)]
            return removed

    def markers_left(self) -> int:
        """Markers still held or replicating anywhere (0 once a drill cleaned up)."""
        with self._lock:
            return sum(map(len, self._held.values())) + sum(map(len, self._queues.values()))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, status: int, document: object) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self) -> tuple[ReplicatedMarkers, str] | None:
        host = (self.headers.get("Host") or "").rpartition(":")[0] or self.headers.get("Host") or ""
        return cast(_Server, self.server).routes.get(host.lower())

    def do_POST(self) -> None:
        route = self._route()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if route is None or route[1] != route[0].primary:
            self._answer(404, {"error": "not a write URL"})
            return
        try:
            marker = json.loads(body)
            route[0].put(str(marker["prefix"]), Marker(int(marker["seq"]), float(marker["sentMs"])))
        except (ValueError, KeyError, TypeError):
            self._answer(400, {"error": "expected {prefix, seq, sentMs}"})
            return
        self._answer(201, {"seq": marker["seq"]})

    def do_GET(self) -> None:
        route = self._route()
        prefix = parse_qs(urlsplit(self.path).query).get("prefix", [""])[0]
        if route is None or not prefix:
            self._answer(404, {"error": "not a read URL, or no prefix"})
            return
        marker = route[0].newest(route[1], prefix)
        self._answer(200, {"seq": marker.seq, "sentMs": marker.sent_ms} if marker else {"seq": None})

    def do_DELETE(self) -> None:
        route = self._route()
        prefix = parse_qs(urlsplit(self.path).query).get("prefix", [""])[0]
        if route is None or not prefix:
            self._answer(404, {"error": "not a write URL, or no prefix"})
            return
        self._answer(200, {"deleted": route[0].delete(prefix)})

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a drill writes a marker every interval."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, routes: dict[str, tuple[ReplicatedMarkers, str]]) -> None:
        self.routes = routes
        super().__init__((LOOPBACK, 0), _Handler)


class MarkerServer:
    """The http marker contract on loopback for every host of the given stores, and the thread that replicates
    them. ``routes``: host -> (store, region the host reads or writes)."""

    def __init__(self, routes: dict[str, tuple[ReplicatedMarkers, str]]) -> None:
        self.routes = routes
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def start(self) -> int:
        if self._server is None:
            self._stop.clear()
            self._server = _Server(self.routes)
            self._threads = [
                threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                 name="sandbox-markers", daemon=True),
                threading.Thread(target=self._replicate, name="sandbox-markers-replication", daemon=True),
            ]
            for thread in self._threads:
                thread.start()
        return self.port

    def _replicate(self) -> None:
        stores = {id(store): store for store, _ in self.routes.values()}
        while not self._stop.wait(TICK_S):
            for store in stores.values():
                store.tick()

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the marker server is not started")
        return int(self._server.server_address[1])
