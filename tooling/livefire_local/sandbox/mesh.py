"""The whole sandbox mesh of a drill: what the local runner starts.

Per sandbox cluster a ClusterStore seeded from ``<mesh_dir>/<cluster>.yaml`` and a fake Kubernetes API
server, per region a RegionalService, and one Entrypoint whose DestinationRule is the primary cluster's.
A region with no cluster (a drill whose fault is outside the mesh needs none) still gets a RegionalService: a
plain service with no mesh objects (one healthy v1 pod) and no API server. The OutageControl server answers the
host of a ``webhook`` fault's URLs, so a webhook drill can start and end an outage of a region.
``environment()`` tells the drill's functions where everything is.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from livefire.errors import InvalidDrillSpec
from livefire.spec import DrillSpec
from livefire_local.sandbox.control import OutageControl
from livefire_local.sandbox.entrypoint import Entrypoint
from livefire_local.sandbox.kube_api import FakeKubeApi
from livefire_local.sandbox.services import LOOPBACK, RegionalService
from livefire_local.sandbox.store import ClusterStore, ObjectKey

ENV_CLUSTERS = "LIVEFIRE_SANDBOX_CLUSTERS"
ENV_TOKEN = "LIVEFIRE_SANDBOX_TOKEN"
ENV_RESOLVE = "LIVEFIRE_RESOLVE"


def host_port(url: str) -> str:
    """``host:port`` of a URL, with the scheme's default port (``http://a.b/x`` -> ``a.b:80``)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def sandbox_clusters(spec: DrillSpec) -> dict[str, str]:
    """Region name -> sandbox cluster name, for the regions that name a cluster (it must be a sandbox one)."""
    clusters: dict[str, str] = {}
    for index, region in enumerate(spec.regions):
        if region.cluster is None:
            continue
        cluster = region.cluster.sandbox
        if not cluster:
            raise InvalidDrillSpec(
                f"regions.{index}.cluster: region {region.name!r} has no sandbox cluster; "
                "a local run needs cluster: {sandbox: NAME} (or no cluster at all)"
            )
        clusters[region.name] = cluster
    return clusters


def plain_store(region: str, service: str) -> ClusterStore:
    """The service of a region with no cluster: no mesh objects, one healthy pod of version v1."""
    store = ClusterStore(f"plain-{region}")
    labels = {"app": service, "version": "v1"}
    store.seed([{
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": f"{service}-v1", "namespace": service, "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}}},
    }])
    return store


class SandboxMesh:
    def __init__(self, spec: DrillSpec, stores: dict[str, ClusterStore], *, seed: int | None = None) -> None:
        self.spec = spec
        self.stores = stores
        self.clusters = sandbox_clusters(spec)  # region name -> sandbox cluster name
        for index, region in enumerate(spec.regions):
            if region.name in self.clusters and self.clusters[region.name] not in stores:
                raise InvalidDrillSpec(
                    f"regions.{index}.cluster.sandbox: no sandbox cluster {self.clusters[region.name]!r}"
                )
        self.token = secrets.token_urlsafe(32)
        self.regional: dict[str, RegionalService] = {
            region.name: RegionalService(
                region.name,
                stores[self.clusters[region.name]] if region.name in self.clusters
                else plain_store(region.name, spec.metadata.service),
                spec.metadata.service,
                seed=None if seed is None else f"{seed}:{region.name}",
            )
            for region in spec.regions
        }
        self.entrypoint = Entrypoint(list(self.regional.values()), self._destination_rule)
        self.control = OutageControl(self.regional)
        self.api_urls: dict[str, str] = {}
        self._apis: dict[str, FakeKubeApi] = {}
        self._started = False

    @classmethod
    def from_spec(cls, spec: DrillSpec, mesh_dir: Path, *, seed: int | None = None) -> SandboxMesh:
        """Seed one ClusterStore per sandbox cluster of the spec from ``mesh_dir / f"{cluster}.yaml"``."""
        stores: dict[str, ClusterStore] = {}
        for index, cluster in enumerate(sandbox_clusters(spec).values()):
            if cluster in stores:
                continue
            seed_file = Path(mesh_dir) / f"{cluster}.yaml"
            if not seed_file.is_file():
                raise InvalidDrillSpec(
                    f"regions.{index}.cluster.sandbox: no seed file {seed_file} "
                    f"for sandbox cluster {cluster!r}"
                )
            store = ClusterStore(cluster)
            store.seed(yaml.safe_load_all(seed_file.read_text(encoding="utf-8")))
            stores[cluster] = store
        return cls(spec, stores, seed=seed)

    def _primary_cluster(self) -> str | None:
        primary = next((r for r in self.spec.regions if r.role == "primary"), self.spec.regions[0])
        return self.clusters.get(primary.name)

    def _destination_rule(self) -> dict[str, Any] | None:
        """The DestinationRule of the service in the primary region's cluster (read on every request)."""
        service = self.spec.metadata.service
        cluster = self._primary_cluster()
        if cluster is None:
            return None  # no mesh in front of the primary: requests are spread, nothing is ever ejected
        for rule in self.stores[cluster].list("networking.istio.io", "destinationrules"):
            if str((rule.get("spec") or {}).get("host", "")).split(".")[0] == service:
                return rule
        return None

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._started:
            return
        self._started = True
        try:
            for cluster, store in self.stores.items():
                api = FakeKubeApi(store, token=self.token)
                self._apis[cluster] = api
                self.api_urls[cluster] = api.start()
            for service in self.regional.values():
                service.start()
            self.entrypoint.start()
            self.control.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.control.stop()
        self.entrypoint.stop()
        for service in self.regional.values():
            service.stop()
        for api in self._apis.values():
            api.stop()
        self._apis.clear()
        self._started = False
        self.api_urls.clear()

    def __enter__(self) -> SandboxMesh:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- what the drill sees ---------------------------------------------------------------------------
    def resolve(self) -> dict[str, str]:
        """Every endpoint host of the spec (``host:port``) -> the loopback server answering for it."""
        mapping = {
            host_port(region.endpoint): f"{LOOPBACK}:{self.regional[region.name].port}"
            for region in self.spec.regions
        }
        mapping[host_port(self.spec.entrypoint)] = f"{LOOPBACK}:{self.entrypoint.port}"
        webhook = self.spec.fault.webhook
        for call in (webhook.inject, webhook.rollback) if webhook is not None else ():
            mapping.setdefault(host_port(call.url), f"{LOOPBACK}:{self.control.port}")
        return mapping

    def environment(self) -> dict[str, str]:
        if not self._started:
            raise RuntimeError("the sandbox mesh is not started")
        return {
            ENV_CLUSTERS: json.dumps(self.api_urls, sort_keys=True),
            ENV_TOKEN: self.token,
            ENV_RESOLVE: json.dumps(self.resolve(), sort_keys=True),
        }

    @property
    def apis(self) -> dict[str, FakeKubeApi]:
        """The running fake Kubernetes API server of each sandbox cluster (tests script failures on them)."""
        return dict(self._apis)

    def snapshot(self) -> dict[str, dict[ObjectKey, bytes]]:
        return {cluster: store.snapshot() for cluster, store in self.stores.items()}
