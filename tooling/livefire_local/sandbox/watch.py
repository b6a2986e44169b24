"""``?watch=true``: a stream of ``{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": …}`` events.

From ``resourceVersion`` N the stream replays the changes after N (an N older than the store keeps gets one ERROR
event, a 410 ``Expired`` Status, as a real server sends); without one (or "0") it starts with an ADDED event per
matching object. With selectors, an object that starts matching is ADDED and one that stops matching DELETED, as a
real server reports them. With ``allowWatchBookmarks`` a BOOKMARK carrying the current resourceVersion is sent every
``bookmark_s``. The stream ends after ``timeoutSeconds`` (at most ``MAX_WATCH_S``) or when the server stops.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from livefire_local.sandbox.kube_wire import ApiError, field_matches, matches
from livefire_local.sandbox.resources import Resource
from livefire_local.sandbox.store import Change, ClusterStore

MAX_WATCH_S = 1800.0  # a real API server's --min-request-timeout
_WAKE_S = 0.1  # how often a waiting watch checks whether the server stops


@dataclass(frozen=True)
class WatchRequest:
    resource: Resource
    since: int | None  # None: start with the current objects
    timeout_s: float
    bookmarks: bool
    labels: str
    fields: str

    @classmethod
    def of(cls, resource: Resource, query: dict[str, str]) -> WatchRequest:
        raw = query.get("resourceVersion", "")
        try:
            since = int(raw) if raw not in ("", "0") else None
            timeout = float(query["timeoutSeconds"]) if "timeoutSeconds" in query else MAX_WATCH_S
        except ValueError:
            raise ApiError(400, "resourceVersion and timeoutSeconds must be numbers") from None
        return cls(resource, since, min(max(timeout, 0.0), MAX_WATCH_S),
                   query.get("allowWatchBookmarks") in ("true", "1"),
                   query.get("labelSelector", ""), query.get("fieldSelector", ""))

    def selects(self, obj: dict[str, Any]) -> bool:
        resource = self.resource
        meta = obj.get("metadata") or {}
        return ((resource.namespace is None or meta.get("namespace") == resource.namespace)
                and matches(meta.get("labels") or {}, self.labels) and field_matches(obj, self.fields))


def _expired(version: int) -> dict[str, Any]:
    return {"type": "ERROR", "object": ApiError(410, f"too old resource version: {version}").status()}


def _as_seen(request: WatchRequest, change: Change) -> str | None:
    """The event a watch with selectors sees for ``change``: an object that starts matching is ADDED, one that stops
    matching is DELETED (as a real server reports it), one that never matches is not seen (None)."""
    now = request.selects(change.obj)
    if change.type != "MODIFIED" or change.previous is None:
        return change.type if now else None
    before = request.selects(change.previous)
    if now and before:
        return "MODIFIED"
    if now or before:
        return "ADDED" if now else "DELETED"
    return None


def watch_events(store: ClusterStore, request: WatchRequest, stopping: Callable[[], bool],
                 bookmark_s: float) -> Iterator[dict[str, Any]]:
    """The events of one watch, until its timeout or ``stopping()``."""
    resource = request.resource
    end = time.monotonic() + request.timeout_s
    with store.lock:
        seen = store.version
        current = store.list(resource.group, resource.plural, resource.namespace) if request.since is None else []
    if request.since is not None:
        seen = request.since
    for obj in current:  # written outside the lock: a slow reader never holds the store up
        if request.selects(obj):
            yield {"type": "ADDED", "object": resource.present(obj)}
    next_bookmark = time.monotonic() + bookmark_s
    while not stopping():
        now = time.monotonic()
        if now >= end:
            return
        changes = store.changes_since(seen)
        if changes is None:
            yield _expired(seen)
            return
        for change in changes:
            seen = change.version
            kind = _as_seen(request, change) if (change.key.group, change.key.plural) == (
                resource.group, resource.plural) else None
            if kind is not None:
                yield {"type": kind, "object": resource.present(change.obj)}
        if request.bookmarks and now >= next_bookmark:
            next_bookmark = now + bookmark_s
            yield {"type": "BOOKMARK", "object": {"kind": resource.kind, "apiVersion": resource.api_version,
                                                  "metadata": {"resourceVersion": str(seen)}}}
        store.wait_for_change(seen, timeout=min(_WAKE_S, max(end - time.monotonic(), 0.0)))
