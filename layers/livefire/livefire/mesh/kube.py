"""Kubernetes API clients per cluster: EKS (STS token, endpoint and CA from DescribeCluster in the cluster's own
region), kubeconfig, or a sandbox cluster of the local runner (URL from ``LIVEFIRE_SANDBOX_CLUSTERS``).

Clients are cached per cluster for the life of the container. Bearer tokens never reach a log: the
client's debug switch (which would print request headers) is locked off.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError
from kubernetes.client import ApiClient, Configuration
from kubernetes.config import ConfigException, new_client_from_config

from livefire.accounts import session_for
from livefire.errors import MeshAccessError
from livefire.mesh.eks import eks_token
from livefire.spec import ClusterRef, EksCluster

SANDBOX_CLUSTERS_ENV = "LIVEFIRE_SANDBOX_CLUSTERS"
SANDBOX_TOKEN_ENV = "LIVEFIRE_SANDBOX_TOKEN"
TOKEN_REFRESH_SECONDS = 12 * 60  # EKS tokens live ~15 minutes; refresh well before 14

_clients: dict[str, ApiClient] = {}
_clients_lock = threading.Lock()


class SafeConfiguration(Configuration):
    """A Configuration whose debug switch cannot be turned on (httplib debug output prints headers)."""

    @property
    def debug(self) -> bool:
        return False

    @debug.setter
    def debug(self, value: bool) -> None:
        Configuration.debug.fset(self, False)  # type: ignore[attr-defined]


def _safe_configuration() -> Configuration:
    config = SafeConfiguration()
    config.debug = False
    return config


def _bearer(config: Configuration, token: str) -> None:
    config.api_key["authorization"] = token
    config.api_key_prefix["authorization"] = "Bearer"


def _sandbox_client(cluster: ClusterRef) -> tuple[str, Callable[[], ApiClient]]:
    raw = os.environ.get(SANDBOX_CLUSTERS_ENV)
    if not raw:
        raise MeshAccessError(f"{SANDBOX_CLUSTERS_ENV} is not set: no sandbox cluster is running")
    try:
        urls = json.loads(raw)
    except ValueError:
        raise MeshAccessError(f"{SANDBOX_CLUSTERS_ENV} is not a JSON object") from None
    url = urls.get(cluster.sandbox) if isinstance(urls, dict) else None
    if not isinstance(url, str):
        raise MeshAccessError(f"sandbox cluster {cluster.sandbox!r} is not in {SANDBOX_CLUSTERS_ENV}")
    token = os.environ.get(SANDBOX_TOKEN_ENV)
    token_id = hashlib.sha256(token.encode()).hexdigest()[:16] if token else "-"
    config = _safe_configuration()
    config.host = url.rstrip("/")
    if token:
        _bearer(config, token)
    return f"{cluster.key}|{url}|{token_id}", lambda: ApiClient(configuration=config)


def _eks_client(cluster: EksCluster, role_arn: str | None = None) -> ApiClient:
    """A client of an EKS cluster, described in the cluster's own region (never a region name of the spec), as the
    function itself or, for a cluster of another account, as the role the spec names there (livefire/accounts.py)."""
    session = session_for(role_arn)
    try:
        described = session.client("eks", region_name=cluster.region).describe_cluster(name=cluster.name)["cluster"]
        endpoint = described["endpoint"]
        ca_pem = base64.b64decode(described["certificateAuthority"]["data"]).decode()
        arn = described.get("arn")
    except (BotoCoreError, ClientError, KeyError, ValueError) as exc:
        raise MeshAccessError(f"cannot describe EKS cluster {cluster.qualified_name!r}: {exc}") from None
    if cluster.arn is not None and arn != cluster.arn:  # a same-named cluster of this account is another cluster
        raise MeshAccessError(f"EKS cluster {cluster.qualified_name!r} of this account is {arn}, not the cluster "
                              f"the spec names ({cluster.arn})")
    sts = session.client("sts", region_name=cluster.region)
    config = _safe_configuration()
    config.host = endpoint
    config.ca_cert_data = ca_pem  # kept in memory: urllib3 loads PEM data without a file
    issued_at = [time.monotonic()]
    _bearer(config, eks_token(cluster.name, sts))

    def refresh(conf: Configuration) -> None:
        if time.monotonic() - issued_at[0] >= TOKEN_REFRESH_SECONDS:
            _bearer(conf, eks_token(cluster.name, sts))
            issued_at[0] = time.monotonic()

    config.refresh_api_key_hook = refresh  # type: ignore[assignment]
    return ApiClient(configuration=config)


def _kubeconfig_client(cluster: ClusterRef) -> ApiClient:
    try:
        client: ApiClient = new_client_from_config(
            config_file=cluster.kubeconfig,
            context=cluster.context,
            persist_config=False,
            client_configuration=_safe_configuration(),
        )
    except (ConfigException, OSError) as exc:
        # the message names the file or context, never its contents
        raise MeshAccessError(f"cannot load kubeconfig for {cluster.key}: {type(exc).__name__}") from None
    return client


def api_client_for(cluster: ClusterRef) -> ApiClient:
    """The (cached) API client of a cluster; an EKS cluster is reached in the region it is named with."""
    build: Callable[[], ApiClient] | None = None
    if cluster.sandbox:
        key, build = _sandbox_client(cluster)
    else:
        key = f"{cluster.key}|{cluster.eks or ''}|{cluster.kubeconfig or ''}|{cluster.assume_role or ''}"
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            eks = cluster.eks_cluster
            if build is not None:
                client = build()
            elif eks is not None:
                client = _eks_client(eks, cluster.assume_role)
            else:
                client = _kubeconfig_client(cluster)
            _clients[key] = client
        return client
