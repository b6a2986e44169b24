"""The sandbox's outage control: the loopback endpoint a ``webhook`` fault calls to start and end an outage.

``POST /outages/<region>?seconds=2.5&status=503`` starts an outage of that region's service at once (without
``seconds``: until it is ended); ``DELETE /outages/<region>`` ends the region's outages. The query string carries
the parameters (the sandbox's HTTP server does not keep request bodies). With a ``token``, a request must carry
``Authorization: Bearer <token>``. Every outage started is kept in ``outages``, with its true start and end in
epoch milliseconds: the ground truth a test compares the drill's measurement with.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from livefire_local.sandbox.loopback import LoopbackServed, LoopbackServer, Request, Response, json_response
from livefire_local.sandbox.services import RegionalService

UNTIL_ENDED_S = 3600.0


@dataclass
class ScriptedOutage:
    region: str
    status: int
    start_ms: float
    end_ms: float  # when it ends, or ended (moved earlier by a DELETE)


class OutageControl(LoopbackServed):
    def __init__(self, services: Mapping[str, RegionalService], *, token: str | None = None) -> None:
        self._services = dict(services)
        self._token = token
        self._lock = threading.Lock()
        self.outages: list[ScriptedOutage] = []
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, authorized or not
        self._server = LoopbackServer(self.handle)


    def handle(self, request: Request) -> Response:
        parts = urlsplit(request.path)
        with self._lock:
            self.requests.append((request.method, parts.path))
        if self._token is not None and request.headers.get("authorization") != f"Bearer {self._token}":
            return json_response(401, {"error": "unauthorized"})
        prefix, _, region = parts.path.rpartition("/")
        service = self._services.get(region)
        if prefix != "/outages" or service is None:
            return json_response(404, {"error": f"no region {region!r}: use /outages/<region>"})
        if request.method == "POST":
            return self._start(region, service, parse_qs(parts.query))
        if request.method == "DELETE":
            return self._end(region, service)
        return json_response(405, {"error": "use POST or DELETE"})

    def _start(self, region: str, service: RegionalService, query: dict[str, list[str]]) -> Response:
        try:
            seconds = float(query.get("seconds", [UNTIL_ENDED_S])[0])
            status = int(query.get("status", ["503"])[0])
        except ValueError:
            return json_response(400, {"error": "seconds must be a number and status an integer"})
        if not (math.isfinite(seconds) and seconds > 0) or not 500 <= status <= 599:
            return json_response(400, {"error": "seconds must be positive and status a 5xx"})
        wall_ms, mono = time.time() * 1000.0, service.clock()
        outage = service.script_outage(0.0, seconds, status)
        start_ms = wall_ms + (outage.start - mono) * 1000.0
        scripted = ScriptedOutage(region, status, start_ms, start_ms + seconds * 1000.0)
        with self._lock:
            self.outages.append(scripted)
        return json_response(201, {"region": region, "startMs": scripted.start_ms, "endMs": scripted.end_ms})

    def _end(self, region: str, service: RegionalService) -> Response:
        ended = service.end_outages()
        now_ms = time.time() * 1000.0
        with self._lock:
            for outage in self.outages:
                if outage.region == region and outage.end_ms > now_ms:
                    outage.end_ms = now_ms
        return json_response(200, {"region": region, "ended": ended})
