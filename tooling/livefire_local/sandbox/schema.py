"""Istio's published CRD schemas (crds/istio.yaml) and the checks a real API server makes with them.

A real server prunes fields its structural schema does not know (warning about them, or refusing them with
``fieldValidation=Strict``) and refuses an object that breaks the schema with 422 ``Invalid``. This module does the
same for the OpenAPI v3 subset Istio's CRDs use: type, properties, required, enum, items, additionalProperties,
minimum / maximum, length and size limits, int32, ``x-kubernetes-int-or-string``, ``nullable``,
``x-kubernetes-preserve-unknown-fields``, oneOf / anyOf / allOf / not, and the CEL rules those CRDs carry (each by
its exact text: a rule this module does not know is refused at load, so no rule is silently skipped).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CRD_FILE = Path(__file__).with_name("crds") / "istio.yaml"
_INT32 = (-(2**31), 2**31 - 1)
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,), "integer": (int,),
    "number": (int, float),
}
_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number",
               type(None): "null"}
_GO_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration_seconds(text: str) -> float | None:
    """Seconds of a Go duration (``1.5s``, ``1m30s``); None when ``text`` is not one."""
    if not _GO_DURATION.match(text):
        return None
    return sum(float(n) * _GO_UNITS[u] for n, u in _DURATION_PART.findall(text))


def _port_key(key: str) -> bool:
    return key.isdigit() and 0 < int(key) <= 65535


def _port_level_mtls_needs_selector(value: Any) -> bool:
    selector = value.get("selector") if isinstance(value, dict) else None
    labels = selector.get("matchLabels") if isinstance(selector, dict) else None
    return "portLevelMtls" not in value or bool(labels)


# The CEL rules of the vendored CRDs, by their exact text: self -> holds.
_RULES: dict[str, Callable[[Any], bool]] = {
    "duration(self) >= duration('1ms')":
        lambda v: (go_duration_seconds(v) or 0.0) >= 0.001 if isinstance(v, str) else False,
    'self.all(key, !key.contains("*"))': lambda v: all("*" not in key for key in v),
    "self.all(key, key.size() != 0)": lambda v: all(key != "" for key in v),
    '!self.contains("*")': lambda v: "*" not in v,
    "self.all(key, 0 < int(key) && int(key) <= 65535)": lambda v: all(_port_key(key) for key in v),
    "has(self.portLevelMtls) ? (((has(self.selector) && has(self.selector.matchLabels)) ? "
    "self.selector.matchLabels : {}).size() > 0) : true": _port_level_mtls_needs_selector,
}


@dataclass
class Checked:
    """What validation found: errors (the object is refused) and unknown fields (pruned, or refused if strict)."""

    errors: list[str]
    unknown: list[str]


def _check(value: Any, schema: dict[str, Any], path: str, found: Checked) -> None:
    errors = found.errors
    if value is None and schema.get("nullable"):
        return
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(value, int | str) or isinstance(value, bool):
            errors.append(f"{path}: Invalid value: must be an integer or a string")
            return
    elif "type" in schema:
        kind = schema["type"]
        if not isinstance(value, _TYPES[kind]) or (isinstance(value, bool) and kind != "boolean"):
            shown = _JSON_TYPES.get(type(value), type(value).__name__)
            errors.append(f'{path}: Invalid value: "{shown}": {path} in body must be of type {kind}: "{shown}"')
            return
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(f'"{v}"' for v in schema["enum"])
        errors.append(f'{path}: Unsupported value: "{value}": supported values: {allowed}')
    if isinstance(value, int | float) and not isinstance(value, bool):
        low, high = schema.get("minimum"), schema.get("maximum")
        if schema.get("format") == "int32" and isinstance(value, int) and not _INT32[0] <= value <= _INT32[1]:
            errors.append(f"{path}: Invalid value: {value}: {path} in body must be a 32-bit integer")
        if low is not None and value < low:
            errors.append(f"{path}: Invalid value: {value}: {path} in body should be greater than or equal to {low}")
        if high is not None and value > high:
            errors.append(f"{path}: Invalid value: {value}: {path} in body should be less than or equal to {high}")
    if isinstance(value, str) and "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(f"{path}: Too long: may not be longer than {schema['maxLength']}")
    if isinstance(value, dict):
        _check_object(value, schema, path, found)
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{path}: Too many: {len(value)}: must have at most {schema['maxItems']} items")
        if isinstance(schema.get("items"), dict):
            for index, item in enumerate(value):
                _check(item, schema["items"], f"{path}[{index}]", found)
    _check_combinators(value, schema, path, found)
    for rule in schema.get("x-kubernetes-validations", []):
        if not _RULES[rule["rule"]](value):
            errors.append(f"{path}: Invalid value: {rule.get('message', rule['rule'])}")


def _check_object(value: dict[str, Any], schema: dict[str, Any], path: str, found: Checked) -> None:
    properties = schema.get("properties", {})
    found.errors.extend(f"{path}.{name}: Required value" for name in schema.get("required", []) if name not in value)
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        found.errors.append(f"{path}: Invalid value: should have at least {schema['minProperties']} properties")
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        found.errors.append(f"{path}: Too many: may have at most {schema['maxProperties']} properties")
    for key, item in value.items():
        if key in properties:
            _check(item, properties[key], f"{path}.{key}", found)
        elif isinstance(schema.get("additionalProperties"), dict):
            _check(item, schema["additionalProperties"], f"{path}.{key}", found)
        elif not schema.get("x-kubernetes-preserve-unknown-fields"):
            found.unknown.append(f"{path}.{key}")


def _matches(value: Any, schema: dict[str, Any], path: str) -> bool:
    """Whether ``value`` satisfies ``schema`` (a oneOf/anyOf alternative: these name fields, never add them)."""
    trial = Checked([], [])
    _check(value, schema, path, trial)
    return not trial.errors


def _check_combinators(value: Any, schema: dict[str, Any], path: str, found: Checked) -> None:
    if "oneOf" in schema:
        passing = sum(_matches(value, option, path) for option in schema["oneOf"])
        if passing != 1:
            found.errors.append(f"{path}: Invalid value: must validate one and only one schema (oneOf), "
                                f"found {passing}")
    if "anyOf" in schema and not any(_matches(value, option, path) for option in schema["anyOf"]):
        found.errors.append(f"{path}: Invalid value: must validate at least one schema (anyOf)")
    for option in schema.get("allOf", []):
        _check(value, option, path, found)
    if "not" in schema and _matches(value, schema["not"], path):
        found.errors.append(f"{path}: Invalid value: must not validate the schema (not)")


def check_value(value: Any, schema: dict[str, Any], path: str) -> Checked:
    """Check one value (``spec`` at ``path``) against its schema."""
    found = Checked([], [])
    _check(value, schema, path, found)
    return found


def check(obj: dict[str, Any], schema: dict[str, Any]) -> Checked:
    """Check an object (``spec``, ``status``; metadata, kind and apiVersion are the server's) against its
    CRD version's ``openAPIV3Schema``."""
    found = Checked([], [])
    properties = schema.get("properties", {})
    for key, value in obj.items():
        if key in ("apiVersion", "kind", "metadata"):
            continue
        if key in properties:
            _check(value, properties[key], key, found)
        else:
            found.unknown.append(key)
    return found


def prune(obj: dict[str, Any], unknown: list[str]) -> None:
    """Remove the ``unknown`` field paths (from ``check``) from ``obj`` in place, as a real server prunes them."""
    for field_path in unknown:
        parts = re.findall(r"[^.\[\]]+|\[\d+\]", field_path)
        target: Any = obj
        for part in parts[:-1]:
            target = target[int(part[1:-1])] if part.startswith("[") else target[part]
        target.pop(parts[-1], None)


def _rules_in(schema: Any) -> set[str]:
    if isinstance(schema, dict):
        found = {rule["rule"] for rule in schema.get("x-kubernetes-validations", [])}
        return found.union(*(_rules_in(value) for value in schema.values()))
    if isinstance(schema, list):
        return set().union(*(_rules_in(value) for value in schema))
    return set()


@functools.cache
def _crds() -> tuple[dict[str, Any], ...]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with CRD_FILE.open(encoding="utf-8") as handle:
        documents = tuple(doc for doc in yaml.load_all(handle, Loader=loader) if doc)
    unknown = set().union(*(_rules_in(doc) for doc in documents)) - set(_RULES)
    if unknown:
        raise ValueError(f"{CRD_FILE} has validation rules the sandbox cannot check: {sorted(unknown)}")
    return documents


def crd_schemas() -> dict[tuple[str, str, str], dict[str, Any]]:
    """(group, plural, version) -> openAPIV3Schema, for every served version of every vendored CRD."""
    return {
        (crd["spec"]["group"], crd["spec"]["names"]["plural"], version["name"]): version["schema"]["openAPIV3Schema"]
        for crd in _crds() for version in crd["spec"]["versions"] if version.get("served")
    }


def crd_names() -> dict[tuple[str, str], dict[str, Any]]:
    """(group, plural) -> the CRD's ``names`` (kind, singular, shortNames, categories): what discovery shows."""
    return {(crd["spec"]["group"], crd["spec"]["names"]["plural"]): crd["spec"]["names"] for crd in _crds()}
