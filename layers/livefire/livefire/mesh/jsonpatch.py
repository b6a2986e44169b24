"""RFC 6902 JSON patch, the one implementation: the mesh faults compute the object a patch leads to with it, and
the sandbox's fake Kubernetes API server applies the patches it receives with it (docs/architecture.md §5, §10).
"""

from __future__ import annotations

import copy
import re
from typing import Any

_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")


class JsonPatchError(Exception):
    """A JSON patch could not be applied; ``test_failed`` tells a failed ``test`` op apart."""

    def __init__(self, message: str, *, test_failed: bool = False) -> None:
        super().__init__(message)
        self.test_failed = test_failed


def escape(token: str) -> str:
    """One JSON pointer reference token: ``a/b~c`` -> ``a~1b~0c``."""
    return token.replace("~", "~0").replace("/", "~1")


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise JsonPatchError(f"invalid JSON pointer {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _index(container: list[Any], token: str, *, for_add: bool) -> int:
    if for_add and token == "-":
        return len(container)
    if not _ARRAY_INDEX.fullmatch(token):
        raise JsonPatchError(f"invalid array index {token!r}")
    index = int(token)
    if index > len(container) or (not for_add and index == len(container)):
        raise JsonPatchError(f"array index {index} out of range")
    return index


def _child(node: Any, token: str, path: str) -> Any:
    """The member or element ``token`` of ``node``, which must exist."""
    if isinstance(node, dict):
        if token not in node:
            raise JsonPatchError(f"path {path!r} does not exist")
        return node[token]
    if isinstance(node, list):
        return node[_index(node, token, for_add=False)]
    raise JsonPatchError(f"cannot traverse into {type(node).__name__} at {token!r} of {path!r}")


def _locate(doc: Any, path: str) -> tuple[Any, str]:
    """The container the last token of a non-empty ``path`` refers into, and that token."""
    parts = _pointer(path)
    if not parts:
        raise JsonPatchError("the operation needs a path below the document root")
    node = doc
    for token in parts[:-1]:
        node = _child(node, token, path)
    return node, parts[-1]


def _get(doc: Any, path: str) -> Any:
    if path == "":
        return doc
    parent, token = _locate(doc, path)
    return _child(parent, token, path)


def _add(doc: Any, path: str, value: Any) -> Any:
    if path == "":
        return value
    parent, token = _locate(doc, path)
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, token, for_add=True), value)
    else:
        raise JsonPatchError(f"cannot add at {path!r}")
    return doc


def _remove(doc: Any, path: str) -> Any:
    parent, token = _locate(doc, path)
    _child(parent, token, path)  # it must exist
    if isinstance(parent, dict):
        del parent[token]
    else:
        del parent[_index(parent, token, for_add=False)]
    return doc


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 equals 1.0, but true does not equal 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)


def _apply(doc: Any, operation: Any) -> Any:
    if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
        raise JsonPatchError("every operation needs op and path")
    op, path = operation["op"], operation["path"]
    if not isinstance(path, str):
        raise JsonPatchError("path must be a string")
    if op in ("add", "replace", "test") and "value" not in operation:
        raise JsonPatchError(f"{op} needs a value")
    if op == "add":
        return _add(doc, path, copy.deepcopy(operation["value"]))
    if op == "remove":
        return _remove(doc, path)
    if op == "replace":
        _get(doc, path)
        if path:
            doc = _remove(doc, path)
        return _add(doc, path, copy.deepcopy(operation["value"]))
    if op in ("move", "copy"):
        source = operation.get("from")
        if not isinstance(source, str):
            raise JsonPatchError(f"{op} needs from")
        if op == "move" and (path + "/").startswith(source + "/") and path != source:
            raise JsonPatchError("cannot move a value into one of its children")
        value = copy.deepcopy(_get(doc, source))
        if op == "move":
            doc = _remove(doc, source)
        return _add(doc, path, value)
    if op == "test":
        try:
            actual = _get(doc, path)
        except JsonPatchError as exc:
            raise JsonPatchError(f"test failed: {exc}", test_failed=True) from None
        if not json_equal(actual, operation["value"]):
            raise JsonPatchError(f"test failed: value at {path!r} differs", test_failed=True)
        return doc
    raise JsonPatchError(f"unknown op {op!r}")


def json_patch(document: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test) of a copy of ``document``; all or nothing."""
    if not isinstance(operations, list):
        raise JsonPatchError("a JSON patch must be an array of operations")
    doc = copy.deepcopy(document)
    for operation in operations:
        doc = _apply(doc, operation)
    return doc
