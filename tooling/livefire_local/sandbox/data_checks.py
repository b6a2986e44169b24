"""The sandbox side of a drill's ``dataChecks``: the marker stores its checks use, with the lag of
``<mesh_dir>/markers.yaml`` (``markers.py``), paused while the primary region's sandbox service fails.

An ``http`` check whose write URL is a sandbox host (``*.sandbox``) is served by one ``MarkerServer`` (all its
URLs must then be sandbox hosts); a ``dynamodb`` check gets per-region moto tables and a ``TableReplicator``
once moto is up (``aws()``, inside the local stack). Checks on real hosts are left alone (contacted for real).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from livefire.errors import InvalidDrillSpec
from livefire.spec import DrillSpec
from livefire_local.sandbox.loopback import Request
from livefire_local.sandbox.marker_tables import TableReplicator
from livefire_local.sandbox.markers import LOOPBACK, LagProfile, MarkerServer, ReplicatedMarkers, load_profiles
from livefire_local.sandbox.services import RegionalService


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


class DataCheckSandbox:
    def __init__(self, spec: DrillSpec, mesh_dir: Path | None, regional: Mapping[str, RegionalService],
                 is_sandbox_host: Callable[[str], bool]) -> None:
        """``is_sandbox_host``: the sandbox's one rule of which hosts it serves (``mesh.is_sandbox_host``)."""
        self.stores: dict[str, ReplicatedMarkers] = {}
        self.urls: list[str] = []
        self.tables: list[TableReplicator] = []
        self.server: MarkerServer | None = None
        # a spec with data checks has a primary region (livefire/spec/datachecks.py); one without needs nothing
        primary = next((r for r in spec.regions if r.role == "primary"), None)
        if not spec.data_checks or primary is None:
            return
        profiles = load_profiles(mesh_dir) if mesh_dir is not None else {"http": {}, "dynamodb": {}}
        service = regional.get(primary.name)
        path = urlsplit(primary.endpoint).path or "/"

        def primary_failing() -> bool:
            return service is not None and service.handle(Request("GET", path, {})).status >= 500

        sandboxed = is_sandbox_host
        routes: dict[str, tuple[ReplicatedMarkers, str]] = {}
        for index, check in enumerate(spec.data_checks):
            if check.http is not None and sandboxed(_host(check.http.write_url)):
                urls = [check.http.write_url, *check.http.read_urls.values()]
                if not all(sandboxed(_host(url)) for url in urls):
                    raise InvalidDrillSpec(f"dataChecks.{index}.http: a sandbox write URL needs sandbox read URLs "
                                           "(*.sandbox): the sandbox's store replicates only to itself")
                profile = profiles["http"].get(_host(check.http.write_url), LagProfile())
                store = ReplicatedMarkers(primary.name, list(check.http.read_urls), profile,
                                          primary_failing=primary_failing)
                self.stores[check.name] = store
                routes[_host(check.http.write_url)] = (store, primary.name)
                routes.update({_host(url): (store, region) for region, url in check.http.read_urls.items()})
                self.urls += urls
            elif check.dynamodb is not None:
                profile = profiles["dynamodb"].get(check.dynamodb.table, LagProfile())
                self.tables.append(TableReplicator(check.dynamodb, check.name, profile,
                                                   standby_writes=check.standby_writes,
                                                   primary_failing=primary_failing))
        self.server = MarkerServer(routes) if routes else None

    def start(self) -> None:
        if self.server is not None:
            self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def resolve(self) -> dict[str, str]:
        """``host:port`` of every sandbox marker URL -> the loopback marker server."""
        if self.server is None:
            return {}
        return {f"{_host(url)}:{_port(url)}": f"{LOOPBACK}:{self.server.port}" for url in self.urls}

    @contextmanager
    def aws(self) -> Iterator[None]:
        """The ``dynamodb`` checks' tables and their replication, while moto is active (the local stack)."""
        for table in self.tables:
            table.create_tables()
            table.start()
        try:
            yield
        finally:
            for table in self.tables:
                table.stop()

    def markers_left(self) -> int:
        """Markers still anywhere in the sandbox's stores (0 once every drill cleaned up); tables need moto."""
        return sum(store.markers_left() for store in self.stores.values()) + sum(
            table.markers_left() for table in self.tables)
