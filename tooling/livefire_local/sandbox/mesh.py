"""The sandbox mesh of a drill: what the local runner starts, for the parts of the drill that opt in by name.

The sandbox is opt-in (docs/architecture.md §10): it serves only hosts under its own domain (``is_sandbox_host``:
``sandbox`` and ``*.sandbox``) and only regions whose cluster is ``{sandbox: NAME}``; every other URL (probe,
entrypoint, webhook) is contacted for real, and a ``{kubeconfig: ...}`` cluster is the real cluster it names.
- Per sandbox cluster a ClusterStore seeded from ``<mesh_dir>/<cluster>.yaml`` and a fake Kubernetes API server.
- Per region whose endpoint is a sandbox host a RegionalService; with no cluster it is a plain service with no
  mesh objects (one healthy v1 pod). A sandbox cluster's region must have a sandbox endpoint (its service is
  what obeys the cluster), and a sandbox endpoint cannot belong to a real cluster.
- A sandbox entrypoint: one Entrypoint over the sandbox regions, whose DestinationRule is the primary cluster's.
- Webhook URLs on a sandbox host: the OutageControl, so a webhook drill can start and end an outage of a sandbox
  region. The inject and rollback URLs are both sandbox hosts or both real (a real outage must be ended for real).
A drill with none of these starts no server at all. ``environment()`` tells the drill's functions where
everything is: the sandbox's DNS (added to a ``LIVEFIRE_RESOLVE`` set by hand, which is kept) and which
``host:port``s are the sandbox's (``LIVEFIRE_SANDBOX_HOSTS``: Plan marks each target real or sandbox from it).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from livefire.egress import SANDBOX_HOSTS_ENV, host_port
from livefire.errors import InvalidDrillSpec
from livefire.spec import DrillSpec
from livefire_local.sandbox.control import OutageControl
from livefire_local.sandbox.data_checks import DataCheckSandbox
from livefire_local.sandbox.entrypoint import Entrypoint
from livefire_local.sandbox.istio_metrics import MeteredEntrypoint, MeteredService
from livefire_local.sandbox.kube_api import FakeKubeApi
from livefire_local.sandbox.loopback import LOOPBACK
from livefire_local.sandbox.services import RegionalService
from livefire_local.sandbox.store import ClusterStore, ObjectKey
from livefire_local.sandbox.tls import ServerCertificate

ENV_CLUSTERS = "LIVEFIRE_SANDBOX_CLUSTERS"
ENV_TOKEN = "LIVEFIRE_SANDBOX_TOKEN"
ENV_RESOLVE = "LIVEFIRE_RESOLVE"
ENV_HOSTS = SANDBOX_HOSTS_ENV
SANDBOX_DOMAIN = "sandbox"


def is_sandbox_host(host: str | None) -> bool:
    """Whether the sandbox answers for ``host``: its own domain, ``sandbox`` and every name under it
    (``use1.payments.sandbox``). The one rule of what the sandbox serves; every other host is real."""
    name = (host or "").lower().rstrip(".")
    return name == SANDBOX_DOMAIN or name.endswith(f".{SANDBOX_DOMAIN}")


def in_sandbox(url: str) -> bool:
    return is_sandbox_host(urlsplit(url).hostname)


def sandbox_clusters(spec: DrillSpec) -> dict[str, str]:
    """Region name -> sandbox cluster name, for the regions whose cluster is ``{sandbox: NAME}``. A kubeconfig
    cluster is the real cluster it names; an EKS cluster cannot be reached by a local run (AWS is moto here)."""
    clusters: dict[str, str] = {}
    for index, region in enumerate(spec.regions):
        if region.cluster is None or region.cluster.kubeconfig:
            continue
        cluster = region.cluster.sandbox
        if not cluster:
            raise InvalidDrillSpec(
                f"regions.{index}.cluster: region {region.name!r} names an EKS cluster, which a local run cannot "
                "reach (AWS is simulated here); use cluster: {kubeconfig: PATH, context: NAME} or {sandbox: NAME}"
            )
        clusters[region.name] = cluster
    return clusters


def check_sandbox_use(spec: DrillSpec) -> None:
    """InvalidDrillSpec (naming the field) for a drill whose sandbox and real parts cannot work together."""
    for index, region in enumerate(spec.regions):
        cluster, sandbox_endpoint = region.cluster, in_sandbox(region.endpoint)
        if cluster is not None and cluster.sandbox and not sandbox_endpoint:
            raise InvalidDrillSpec(
                f"regions.{index}.endpoint: region {region.name!r} has a sandbox cluster, so its endpoint must be "
                f"a sandbox host (*.{SANDBOX_DOMAIN}): only the sandbox's own service obeys that cluster"
            )
        if cluster is not None and not cluster.sandbox and sandbox_endpoint:
            raise InvalidDrillSpec(
                f"regions.{index}.endpoint: region {region.name!r} has a real cluster, but its endpoint is a sandbox "
                f"host (*.{SANDBOX_DOMAIN}), served by a sandbox service that cluster does not configure"
            )
    if in_sandbox(spec.entrypoint) and not any(in_sandbox(region.endpoint) for region in spec.regions):
        raise InvalidDrillSpec(
            f"entrypoint: a sandbox entrypoint (*.{SANDBOX_DOMAIN}) fronts the sandbox's regions, and no region's "
            "endpoint is a sandbox host"
        )
    webhook = spec.fault.webhook
    if webhook is not None and in_sandbox(webhook.inject.url) != in_sandbox(webhook.rollback.url):
        raise InvalidDrillSpec(
            f"fault.webhook: the inject and rollback URLs must both be sandbox hosts (*.{SANDBOX_DOMAIN}, the "
            "sandbox's outage control) or both real: a fault started on one side is never ended on the other"
        )


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
    def __init__(self, spec: DrillSpec, stores: dict[str, ClusterStore], *, seed: int | None = None,
                 mesh_dir: Path | None = None) -> None:
        self.spec = spec
        self.stores = stores
        self.clusters = sandbox_clusters(spec)  # region name -> sandbox cluster name
        for index, region in enumerate(spec.regions):
            if region.name in self.clusters and self.clusters[region.name] not in stores:
                raise InvalidDrillSpec(
                    f"regions.{index}.cluster.sandbox: no sandbox cluster {self.clusters[region.name]!r}"
                )
        check_sandbox_use(spec)
        self.token = secrets.token_urlsafe(32)
        self.regional: dict[str, RegionalService] = {  # each exports Istio's metrics (istio_metrics.py)
            region.name: MeteredService(
                region.name,
                stores[self.clusters[region.name]] if region.name in self.clusters
                else plain_store(region.name, spec.metadata.service),
                spec.metadata.service,
                seed=None if seed is None else f"{seed}:{region.name}",
            )
            for region in spec.regions if in_sandbox(region.endpoint)
        }
        webhook = spec.fault.webhook
        self.serves_entrypoint = in_sandbox(spec.entrypoint)  # then some region is a sandbox one too
        self.serves_webhook = webhook is not None and in_sandbox(webhook.inject.url)
        self._entrypoint = (MeteredEntrypoint(list(self.regional.values()), self._destination_rule)
                            if self.serves_entrypoint else None)
        self.control = OutageControl(self.regional)  # started only when the webhook's host is the sandbox's
        self.data_checks = DataCheckSandbox(spec, mesh_dir, self.regional, is_sandbox_host)  # marker stores
        self.api_urls: dict[str, str] = {}
        self.tls: ServerCertificate | None = None  # set before start(): the API servers speak TLS (sandbox up)
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
        return cls(spec, stores, seed=seed, mesh_dir=mesh_dir)

    @property
    def entrypoint(self) -> Entrypoint:
        """The sandbox entrypoint; RuntimeError when the spec's entrypoint is real."""
        if self._entrypoint is None:
            raise RuntimeError(f"the entrypoint {self.spec.entrypoint} is real: the sandbox serves none")
        return self._entrypoint

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
                api = FakeKubeApi(store, token=self.token, tls=self.tls)
                self._apis[cluster] = api
                self.api_urls[cluster] = api.start()
            for service in self.regional.values():
                service.start()
            if self._entrypoint is not None:
                self._entrypoint.start()
            if self.serves_webhook:
                self.control.start()
            self.data_checks.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.data_checks.stop()
        self.control.stop()
        if self._entrypoint is not None:
            self._entrypoint.stop()
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
        """The sandbox's DNS: each sandbox host of the spec (``host:port``) -> the loopback server answering for it.
        Hosts outside the sandbox's domain are not in it: they are contacted for real."""
        mapping = {
            host_port(region.endpoint): f"{LOOPBACK}:{self.regional[region.name].port}"
            for region in self.spec.regions if region.name in self.regional
        }
        if self._entrypoint is not None:
            mapping[host_port(self.spec.entrypoint)] = f"{LOOPBACK}:{self._entrypoint.port}"
        webhook = self.spec.fault.webhook
        if webhook is not None and self.serves_webhook:
            for call in (webhook.inject, webhook.rollback):
                mapping.setdefault(host_port(call.url), f"{LOOPBACK}:{self.control.port}")
        mapping.update(self.data_checks.resolve())
        return mapping

    def environment(self, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
        """What the drill's functions need: the sandbox clusters' API servers and token, the DNS the probes and
        webhooks use (a ``LIVEFIRE_RESOLVE`` already in ``environ`` is kept, for real hosts only) and the
        ``host:port``s that are the sandbox's."""
        if not self._started:
            raise RuntimeError("the sandbox mesh is not started")
        own = self.resolve()
        raw = environ.get(ENV_RESOLVE, "").strip()
        try:
            by_hand = json.loads(raw) if raw else {}
        except ValueError:
            by_hand = None
        if not isinstance(by_hand, dict):
            raise ValueError(f'{ENV_RESOLVE} must be a JSON object of "host:port": "ip:port" strings')
        clash = sorted(host for host in by_hand if is_sandbox_host(str(host).rpartition(":")[0]))
        if clash:
            raise ValueError(f"{ENV_RESOLVE} maps {', '.join(clash)}: hosts under .{SANDBOX_DOMAIN} are the "
                             "sandbox's own")
        return {
            ENV_CLUSTERS: json.dumps(self.api_urls, sort_keys=True),
            ENV_TOKEN: self.token,
            ENV_RESOLVE: json.dumps({**by_hand, **own}, sort_keys=True),
            ENV_HOSTS: json.dumps(sorted(own)),
        }

    @property
    def apis(self) -> dict[str, FakeKubeApi]:
        """The running fake Kubernetes API server of each sandbox cluster (tests script failures on them)."""
        return dict(self._apis)

    def snapshot(self) -> dict[str, dict[ObjectKey, bytes]]:
        return {cluster: store.snapshot() for cluster, store in self.stores.items()}
