"""Helpers for tests against the fake Kubernetes API: a seeded sandbox cluster and an Istio CRD validator."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient

from livefire.contracts import PlannedFault
from livefire.mesh.kube import SANDBOX_CLUSTERS_ENV, SANDBOX_TOKEN_ENV, api_client_for
from livefire.spec import ClusterRef, Fault
from livefire_local.sandbox.kube_api import FakeKubeApi
from livefire_local.sandbox.schema import check_value, crd_schemas
from livefire_local.sandbox.store import KINDS, ClusterStore, ObjectKey

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "drills" / "sandbox" / "mesh" / "payments-use1.yaml"
VS_KEY = ObjectKey("networking.istio.io", "virtualservices", "payments", "payments")
DEPLOYMENT_KEY = ObjectKey("apps", "deployments", "payments", "payments-v1")


@dataclass
class Sandbox:
    """One seeded sandbox cluster behind a running fake API, and an official client pointed at it."""

    store: ClusterStore
    api: FakeKubeApi
    client: ApiClient
    cluster: ClusterRef
    token: str

    def planned(self, kind: str, object_kind: str = "VirtualService", name: str = "payments") -> PlannedFault:
        return PlannedFault(
            fault_id=f"fault-{uuid.uuid4().hex[:8]}",
            kind=kind,
            region="us-east-1",
            cluster=self.cluster,
            namespace="payments",
            object_kind=object_kind,
            object_name=name,
            lease_key=f"{self.cluster.key}/payments",
        )


def seeded_store(name: str | None = None) -> ClusterStore:
    store = ClusterStore(name or f"cluster-{uuid.uuid4().hex[:8]}")
    with SEED.open() as handle:
        store.seed(yaml.safe_load_all(handle))
    return store


@contextmanager
def running_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    name = f"use1-{uuid.uuid4().hex[:8]}"
    store = seeded_store(name)
    token = f"tok-{secrets.token_hex(16)}"
    with FakeKubeApi(store, token=token) as api:
        monkeypatch.setenv(SANDBOX_CLUSTERS_ENV, json.dumps({name: api.url}))
        monkeypatch.setenv(SANDBOX_TOKEN_ENV, token)
        cluster = ClusterRef(sandbox=name)
        yield Sandbox(store, api, api_client_for(cluster), cluster, token)


def fault_of(kind: str, **extra: Any) -> Fault:
    target: dict[str, Any] = {"namespace": "payments"}
    if kind == "scale-to-zero":
        target["deployment"] = "payments-v1"
    else:
        target["virtualService"] = "payments"
    target.update(extra.pop("target", {}))
    return Fault.model_validate({"kind": kind, "region": "us-east-1", "target": target, **extra})


# ---------------------------------------------------------------- Istio CRD schema validation


def schema_errors(value: Any, schema: dict[str, Any], path: str = "spec") -> list[str]:
    """Errors of ``value`` against a CRD schema, as the sandbox's admission finds them (unknown fields are
    errors here: a real server would drop them, and livefire must write none)."""
    found = check_value(value, schema, path)
    return found.errors + [f"{field}: unknown field" for field in found.unknown]


def crd_spec_schema(kind: str, version: str = "v1") -> dict[str, Any]:
    """The ``spec`` schema of an Istio kind, from the CRDs the sandbox serves."""
    group, plural = KINDS[kind]
    schema: dict[str, Any] = crd_schemas()[(group, plural, version)]["properties"]["spec"]
    return schema
