"""The object store of one sandbox cluster: what its fake Kubernetes API serves and its services obey.

Objects are plain dicts as a real API server returns them. Every write bumps a cluster-wide
``resourceVersion`` (a string, as in Kubernetes) and is serialized by one lock, so the fake API server
and the sandbox services see one consistent state. The last ``HISTORY`` changes are kept, in order, for watches
(``changes_since``; a watch from an older version is told it expired, as a real server answers 410 Gone).
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# kind -> (group, plural); the core group is "".
KINDS: dict[str, tuple[str, str]] = {
    "VirtualService": ("networking.istio.io", "virtualservices"),
    "DestinationRule": ("networking.istio.io", "destinationrules"),
    "PeerAuthentication": ("security.istio.io", "peerauthentications"),
    "Deployment": ("apps", "deployments"),
}


HISTORY = 1000  # changes kept for watches


@dataclass(frozen=True, order=True)
class ObjectKey:
    group: str
    plural: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: dict[str, Any]) -> ObjectKey:
        group, plural = KINDS[obj["kind"]]
        meta = obj["metadata"]
        return cls(group, plural, meta.get("namespace", "default"), meta["name"])


def canonical_bytes(obj: dict[str, Any]) -> bytes:
    """A byte-exact, order-independent rendering of what a user owns in an object (spec, labels,
    annotations), used to prove an object came back unchanged. Server-managed fields such as
    ``resourceVersion`` and ``generation`` move on every write and are left out."""
    meta = obj.get("metadata", {})
    owned = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "labels": meta.get("labels") or {},
        "annotations": meta.get("annotations") or {},
        "spec": obj.get("spec"),
    }
    return json.dumps(owned, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Change:
    """One write, as a watch reports it: ``ADDED``, ``MODIFIED`` or ``DELETED`` with the object after it."""

    type: str
    key: ObjectKey
    obj: dict[str, Any]
    version: int
    previous: dict[str, Any] | None = None  # the object before a MODIFIED change


@dataclass
class ClusterStore:
    name: str
    _objects: dict[ObjectKey, dict[str, Any]] = field(default_factory=dict)
    _version: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)
    _history: deque[Change] = field(default_factory=lambda: deque(maxlen=HISTORY))
    _changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self._changed = threading.Condition(self.lock)

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    def _record(self, kind: str, key: ObjectKey, obj: dict[str, Any], previous: dict[str, Any] | None = None) -> None:
        self._history.append(Change(kind, key, copy.deepcopy(obj), self._version, previous))
        self._changed.notify_all()

    def changes_since(self, version: int) -> list[Change] | None:
        """The changes after ``version``, oldest first; None when some of them are no longer kept."""
        with self.lock:
            if version >= self._version:
                return []
            if not self._history or self._history[0].version > version + 1:
                return None
            return [change for change in self._history if change.version > version]

    def wait_for_change(self, after: int, timeout: float) -> None:
        """Block until the store's version passes ``after`` or ``timeout`` seconds have passed."""
        with self._changed:
            self._changed.wait_for(lambda: self._version > after, timeout=timeout)

    @property
    def version(self) -> int:
        with self.lock:
            return self._version

    def current_version(self) -> str:
        """The cluster-wide resourceVersion of the last write (what a LIST reports)."""
        with self.lock:
            return str(self._version)

    def seed(self, documents: Iterable[dict[str, Any]]) -> None:
        """Create objects from ordinary Istio/Kubernetes YAML documents."""
        for doc in documents:
            if doc and doc.get("kind") in KINDS:
                self.create(doc)

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            stored = copy.deepcopy(obj)
            meta = stored.setdefault("metadata", {})
            meta.setdefault("namespace", "default")
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("generation", 1)
            meta.setdefault("creationTimestamp", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
            meta["resourceVersion"] = self._next_version()
            key = ObjectKey.of(stored)
            self._objects[key] = stored
            self._record("ADDED", key, stored)
            return copy.deepcopy(stored)

    def get(self, key: ObjectKey) -> dict[str, Any] | None:
        with self.lock:
            obj = self._objects.get(key)
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, group: str, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                copy.deepcopy(obj)
                for key, obj in sorted(self._objects.items())
                if key.group == group and key.plural == plural
                and (namespace is None or key.namespace == namespace)
            ]

    def replace(self, key: ObjectKey, obj: dict[str, Any]) -> dict[str, Any]:
        """Store ``obj`` as the new state of ``key`` (the caller checked preconditions under ``lock``)."""
        with self.lock:
            stored = copy.deepcopy(obj)
            previous = self._objects[key]
            if stored.get("spec") != previous.get("spec"):
                stored["metadata"]["generation"] = int(previous["metadata"].get("generation", 1)) + 1
            stored["metadata"]["resourceVersion"] = self._next_version()
            self._objects[key] = stored
            self._record("MODIFIED", key, stored, previous)
            return copy.deepcopy(stored)

    def delete(self, key: ObjectKey) -> dict[str, Any] | None:
        """Remove ``key``; the object as it was deleted (with the deletion's resourceVersion), None if absent."""
        with self.lock:
            removed = self._objects.pop(key, None)
            if removed is None:
                return None
            removed["metadata"]["resourceVersion"] = self._next_version()
            self._record("DELETED", key, removed)
            return copy.deepcopy(removed)

    def snapshot(self) -> dict[ObjectKey, bytes]:
        """Canonical bytes of every object, to compare a cluster before and after a drill."""
        with self.lock:
            return {key: canonical_bytes(obj) for key, obj in self._objects.items()}
