"""The wire-level pieces of the sandbox's fake Kubernetes API: a reply, the v1 ``Status`` of an error, the RFC 7386
merge patch, label and field selectors and ``dryRun``. (The RFC 6902 JSON patch is the runtime's own:
livefire.mesh.jsonpatch.)"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

JSON = "application/json"


@dataclass
class Reply:
    """One answer: a JSON ``body`` (or raw bytes of ``content_type``), ``Warning`` headers, or — for a watch — a
    ``stream`` of events written one JSON line per chunk until it ends."""

    code: int
    body: Any = None
    content_type: str = JSON
    warnings: list[str] = field(default_factory=list)
    stream: Iterator[dict[str, Any]] | None = None

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """Answered to the client as a v1 Status."""

    def __init__(self, code: int, message: str, details: dict[str, Any] | None = None,
                 reason: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.reason = reason or _REASONS.get(code, HTTPStatus(code).phrase.replace(" ", ""))

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


_SET_REQUIREMENT = re.compile(r"^(?P<key>[^\s!=(),]+)\s+(?P<op>in|notin)\s+\((?P<values>[^()]*)\)$")


def _requirements(selector: str) -> list[str]:
    """The comma-separated requirements of a label selector (commas inside ``(...)`` separate values)."""
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [part.strip() for part in [*parts, current] if part.strip()]


def matches(labels: dict[str, str], selector: str) -> bool:
    """Label selectors: ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``, ``k in (a,b)``, ``k notin (a,b)``."""
    for raw in _requirements(selector):
        found = _SET_REQUIREMENT.match(raw)
        if found is not None:
            values = {value.strip() for value in found["values"].split(",")}
            inside = labels.get(found["key"]) in values
            if inside != (found["op"] == "in"):
                return False
        elif "!=" in raw:
            key, value = (s.strip() for s in raw.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in raw:
            key, value = (s.strip() for s in raw.replace("==", "=").split("=", 1))
            if labels.get(key) != value:
                return False
        elif raw.startswith("!"):
            if raw[1:].strip() in labels:
                return False
        elif raw not in labels:
            return False
    return True


def field_matches(obj: dict[str, Any], selector: str) -> bool:
    """``fieldSelector`` on ``metadata.name`` and ``metadata.namespace`` (=, ==, !=), what kubectl sends."""
    meta = obj.get("metadata") or {}
    for raw in filter(None, (part.strip() for part in selector.split(","))):
        negate = "!=" in raw
        path, value = (s.strip() for s in raw.replace("!=", "=").replace("==", "=").split("=", 1))
        if path not in ("metadata.name", "metadata.namespace"):
            raise ApiError(400, f'"{path}" is not a known field selector: only "metadata.name", "metadata.namespace"')
        if (meta.get(path.split(".")[1]) == value) == negate:
            return False
    return True


def selector_string(match_labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))


def dry_run(query: dict[str, str]) -> bool:
    """``dryRun=All``: validate and admit the write, persist nothing (the only value a real server accepts)."""
    value = query.get("dryRun")
    if value is None:
        return False
    if value != "All":
        raise ApiError(400, f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return True
