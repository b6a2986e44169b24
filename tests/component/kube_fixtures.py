"""Helpers for tests against the fake Kubernetes API: a seeded sandbox cluster and an Istio CRD validator."""

from __future__ import annotations

import functools
import json
import re
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
from livefire_local.sandbox.store import ClusterStore, ObjectKey

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "drills" / "sandbox" / "mesh" / "payments-use1.yaml"
CRDS = ROOT.parent / "shared" / "istio" / "customresourcedefinitions.gen.yaml"
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

_GO_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
}


def _go_duration_seconds(text: str) -> float | None:
    if not _GO_DURATION.match(text):
        return None
    return sum(float(n) * _GO_UNITS[u] for n, u in _DURATION_PART.findall(text))


def schema_errors(value: Any, schema: dict[str, Any], path: str = "spec") -> list[str]:
    """Errors of ``value`` against the OpenAPI v3 subset Istio's CRDs use (unknown fields are errors)."""
    errors: list[str] = []
    if value is None and schema.get("nullable"):
        return errors
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(value, int | str) or isinstance(value, bool):
            errors.append(f"{path}: must be an integer or a string")
    elif "type" in schema:
        kinds = _TYPES[schema["type"]]
        if not isinstance(value, kinds) or (isinstance(value, bool) and schema["type"] != "boolean"):
            return [f"{path}: must be of type {schema['type']}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: {value} is below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: {value} is above the maximum {schema['maximum']}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        errors += [f"{path}: missing required field {r}" for r in schema.get("required", []) if r not in value]
        for key, item in value.items():
            if key in properties:
                errors += schema_errors(item, properties[key], f"{path}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += schema_errors(item, schema["additionalProperties"], f"{path}.{key}")
            elif not schema.get("x-kubernetes-preserve-unknown-fields") and properties:
                errors.append(f"{path}: unknown field {key}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            errors += schema_errors(item, schema["items"], f"{path}[{index}]")
    if "oneOf" in schema:
        passing = sum(not schema_errors(value, option, path) for option in schema["oneOf"])
        if passing != 1:
            errors.append(f"{path}: matches {passing} of the oneOf alternatives, not exactly one")
    if "anyOf" in schema and not any(not schema_errors(value, o, path) for o in schema["anyOf"]):
        errors.append(f"{path}: matches none of the anyOf alternatives")
    for option in schema.get("allOf", []):
        errors += schema_errors(value, option, path)
    if "not" in schema and not schema_errors(value, schema["not"], path):
        errors.append(f"{path}: matches a schema it must not match")
    for rule in schema.get("x-kubernetes-validations", []):
        if rule.get("rule", "").startswith("duration(self)") and isinstance(value, str):
            seconds = _go_duration_seconds(value)
            if seconds is None or seconds < 0.001:
                errors.append(f"{path}: {value!r} {rule.get('message', 'is not a valid duration')}")
    return errors


@functools.cache
def _crds() -> tuple[dict[str, Any], ...]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with CRDS.open() as handle:
        return tuple(doc for doc in yaml.load_all(handle, Loader=loader) if doc)


def crd_spec_schema(kind: str, version: str = "v1") -> dict[str, Any]:
    """The ``spec`` schema of an Istio kind; skips the test (saying why) when the CRD file is absent."""
    if not CRDS.is_file():
        pytest.skip(f"Istio CRD schemas not found at {CRDS} (shared data, present in CI)")
    for doc in _crds():
        if doc.get("spec", {}).get("names", {}).get("kind") == kind:
            for served in doc["spec"]["versions"]:
                if served["name"] == version:
                    schema: dict[str, Any] = served["schema"]["openAPIV3Schema"]["properties"]["spec"]
                    return schema
    raise LookupError(f"no CRD for {kind} {version} in {CRDS}")
