"""The verbs of the sandbox's fake Kubernetes API over a ``ClusterStore``: get, list (in a namespace or across
all, with label and field selectors), create, update (PUT, with resourceVersion preconditions), patch (merge, JSON
and — on deployments and their scale only, as real servers — strategic merge) and delete, each with ``dryRun=All``.

Writes to Istio kinds are admitted as a real server admits them against the CRD schema (schema.py): an object that
breaks it is refused with 422 ``Invalid``; fields it does not know are pruned with a warning, or refused with
``fieldValidation=Strict``.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import Any

from livefire.mesh.jsonpatch import JsonPatchError, json_patch
from livefire_local.sandbox.kube_wire import ApiError, Reply, field_matches, matches, merge_patch, selector_string
from livefire_local.sandbox.resources import Resource
from livefire_local.sandbox.schema import check, crd_schemas, prune
from livefire_local.sandbox.store import ClusterStore

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
_SERVER_META = ("uid", "creationTimestamp", "generation", "resourceVersion")


def _scale(deployment: dict[str, Any]) -> dict[str, Any]:
    meta = deployment["metadata"]
    replicas = int(deployment.get("spec", {}).get("replicas", 1))
    match_labels = deployment.get("spec", {}).get("selector", {}).get("matchLabels", {})
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {key: meta[key] for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if key in meta},
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas, "selector": selector_string(match_labels)},
    }


def _invalid(resource: Resource, name: str, errors: list[str]) -> ApiError:
    shown = errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]"
    causes = [{"reason": "FieldValueInvalid", "field": field, "message": message.strip()}
              for field, _, message in (error.partition(":") for error in errors)]
    return ApiError(422, f'{resource.kind}.{resource.group} "{name}" is invalid: {shown}',
                    {**resource.details(name), "kind": resource.kind, "causes": causes})


class Verbs:
    def __init__(self, store: ClusterStore) -> None:
        self.store = store

    def _present(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        return _scale(obj) if resource.sub == "scale" else resource.present(obj)

    # -- admission

    def _admit(self, resource: Resource, name: str, obj: dict[str, Any], query: dict[str, str]) -> list[str]:
        """Check ``obj`` against its schema: raise on errors, prune unknown fields; the warnings to send."""
        for field in ("labels", "annotations"):
            value = obj["metadata"].get(field)
            if value is not None and not (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())):
                raise _invalid(resource, name, [f"metadata.{field}: Invalid value: values must be strings"])
        if not resource.custom:
            return []
        found = check(obj, crd_schemas()[(resource.group, resource.plural, resource.version)])
        if found.errors:
            raise _invalid(resource, name, found.errors)
        if found.unknown and query.get("fieldValidation") == "Strict":
            unknown = ", ".join(f'unknown field "{path}"' for path in found.unknown)
            raise ApiError(400, f'{resource.kind} in version "{resource.version}" cannot be handled as a '
                                f"{resource.kind}: strict decoding error: {unknown}")
        prune(obj, found.unknown)
        return [] if query.get("fieldValidation") == "Ignore" else [f'unknown field "{p}"' for p in found.unknown]

    # -- reads

    def get(self, resource: Resource, query: dict[str, str]) -> Reply:
        if resource.name is not None:
            obj = self.store.get(resource.key())
            if obj is None:
                raise resource.not_found()
            return Reply(200, self._present(resource, obj))
        labels, fields = query.get("labelSelector", ""), query.get("fieldSelector", "")
        with self.store.lock:
            found = self.store.list(resource.group, resource.plural, resource.namespace)
            version = self.store.current_version()
        items = [self._present(resource, obj) for obj in found
                 if matches(obj["metadata"].get("labels") or {}, labels) and field_matches(obj, fields)]
        return Reply(200, {"apiVersion": resource.api_version, "kind": f"{resource.kind}List",
                           "metadata": {"resourceVersion": version}, "items": items})

    # -- writes

    def create(self, resource: Resource, body: Any, query: dict[str, str], *, persist: bool) -> Reply:
        if resource.namespace is None or resource.sub is not None:
            raise ApiError(405, "create needs a namespaced collection")
        if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
            raise ApiError(400, "the body must be an object with metadata")
        obj = copy.deepcopy(body)
        meta = obj["metadata"]
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            raise _invalid(resource, "", ["metadata.name: Required value: name or generateName is required"])
        if obj.get("kind") != resource.kind or str(obj.get("apiVersion", "")).split("/")[0] != resource.group:
            raise ApiError(400, f"the body must be a {resource.kind} of {resource.group}")
        if meta.get("namespace", resource.namespace) != resource.namespace:
            raise ApiError(400, "the namespace of the provided object does not match the namespace sent on the "
                                "request")
        for key in _SERVER_META:
            meta.pop(key, None)
        meta["namespace"] = resource.namespace
        obj["apiVersion"] = resource.api_version
        warnings = self._admit(resource, name, obj, query)
        with self.store.lock:
            if self.store.get(resource.key(name)) is not None:
                raise ApiError(409, f'{resource.plural}.{resource.group} "{name}" already exists',
                               resource.details(name), reason="AlreadyExists")
            if persist:
                obj = self.store.create(obj)
            else:
                meta.update(uid=str(uuid.uuid4()), generation=1,
                            creationTimestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        return Reply(201, resource.present(obj), warnings=warnings)

    def patch(self, resource: Resource, content_type: str | None, patch: Any, query: dict[str, str], *,
              persist: bool) -> Reply:
        if resource.name is None:
            raise ApiError(405, "PATCH needs an object name")
        media = (content_type or "").split(";")[0].strip().lower()
        if media == STRATEGIC_PATCH and resource.custom:
            raise ApiError(
                415,
                "the body of the request was in an unknown format - accepted media types include: "
                f"{JSON_PATCH}, {MERGE_PATCH}, application/apply-patch+yaml",
            )
        if media not in (MERGE_PATCH, JSON_PATCH, STRATEGIC_PATCH):
            raise ApiError(415, f"unsupported patch media type {content_type!r}")
        with self.store.lock:
            current = self.store.get(resource.key())
            if current is None:
                raise resource.not_found()
            view = self._present(resource, current)
            if media == JSON_PATCH:
                try:
                    patched = json_patch(view, patch)
                except JsonPatchError as exc:
                    raise ApiError(422, f"the server rejected our request due to an error: {exc}") from None
            else:
                if not isinstance(patch, dict):
                    raise ApiError(400, "a merge patch must be a JSON object")
                patched = merge_patch(view, patch)
            wanted = patched.get("metadata", {}).get("resourceVersion") if isinstance(patched, dict) else None
            if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
                raise resource.conflict()
            return self._store(resource, current, patched, query, persist=persist)

    def put(self, resource: Resource, body: Any, query: dict[str, str], *, persist: bool) -> Reply:
        if resource.name is None:
            raise ApiError(405, "PUT needs an object name")
        if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
            raise ApiError(400, "the body must be an object with metadata")
        if body["metadata"].get("name") not in (None, resource.name):
            raise ApiError(400, "the name of the object does not match the name on the URL")
        with self.store.lock:
            current = self.store.get(resource.key())
            if current is None:
                raise resource.not_found()
            wanted = body["metadata"].get("resourceVersion")
            if wanted is None and resource.custom:
                raise _invalid(resource, resource.name,
                               ["metadata.resourceVersion: Invalid value: 0: must be specified for an update"])
            if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
                raise resource.conflict()
            return self._store(resource, current, body, query, persist=persist)

    def delete(self, resource: Resource, *, persist: bool) -> Reply:
        if resource.name is None or resource.sub is not None:
            raise ApiError(405, "DELETE needs an object name")
        with self.store.lock:
            current = self.store.get(resource.key())
            if current is None:
                raise resource.not_found()
            deleted = self.store.delete(resource.key()) if persist else current
        assert deleted is not None
        return Reply(200, resource.present(deleted))

    def _store(self, resource: Resource, current: dict[str, Any], new: Any, query: dict[str, str], *,
               persist: bool) -> Reply:
        """Admit ``new`` (the client's view of the object after the write) and store it; with ``persist`` False
        (``dryRun=All``) answer what would be stored and store nothing."""
        if not isinstance(new, dict):
            raise ApiError(422, "the object must be a JSON object")
        if resource.sub == "scale":
            replicas = new.get("spec", {}).get("replicas") if isinstance(new.get("spec"), dict) else None
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise ApiError(422, f'Scale.autoscaling "{resource.name}" is invalid: spec.replicas: must be >= 0')
            updated = copy.deepcopy(current)
            updated.setdefault("spec", {})["replicas"] = replicas
            return Reply(200, _scale(self.store.replace(resource.key(), updated) if persist else updated))
        meta = new.get("metadata")
        if not isinstance(meta, dict) or meta.get("name", resource.name) != resource.name:
            raise ApiError(422, f"metadata.name: Invalid value: the name must stay {resource.name!r}")
        if meta.get("namespace", resource.namespace) != resource.namespace:
            raise ApiError(422, "metadata.namespace: Invalid value: the namespace cannot change")
        if new.get("kind", resource.kind) != resource.kind:
            raise ApiError(400, f"kind must be {resource.kind}")
        stored = copy.deepcopy(new)
        stored["kind"] = resource.kind
        stored["apiVersion"] = resource.api_version
        stored_meta = stored["metadata"]
        stored_meta["name"] = resource.name
        stored_meta["namespace"] = resource.namespace
        warnings = self._admit(resource, str(resource.name), stored, query)
        stored["apiVersion"] = current["apiVersion"]
        for key in ("uid", "creationTimestamp", "generation"):
            if key in current["metadata"]:
                stored_meta[key] = current["metadata"][key]
            else:
                stored_meta.pop(key, None)
        if "status" in current:
            stored["status"] = current["status"]
        else:
            stored.pop("status", None)
        result = self.store.replace(resource.key(), stored) if persist else stored
        return Reply(200, resource.present(result), warnings=warnings)
