"""In-memory fakes for unit tests that need no AWS (docs/architecture.md §11).

``FakeTable`` stands in for a boto3 DynamoDB ``Table`` resource as ``livefire.store`` uses it: items keyed by
``pk``/``sk``, the condition, key-condition and update expressions the store writes (comparisons, AND / OR / NOT,
parentheses, ``attribute_exists``, ``attribute_not_exists``, ``begins_with``; ``SET`` and ``REMOVE``), global
secondary indexes by name (``<name>pk`` / ``<name>sk``), query paging by ``Limit``, and
``meta.client.transact_write_items``. Like DynamoDB it refuses floats and hands numbers back as Decimal, so a
store that forgets either conversion fails here too.
"""

from __future__ import annotations

import copy
import io
import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

Item = dict[str, Any]
_TOKEN = re.compile(r"\s*(<>|<=|>=|[=<>(),]|[#:]?[A-Za-z_][A-Za-z0-9_.]*)")


def _client_error(code: str, operation: str, **extra: Any) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, **extra}, operation)


def _stored(value: Any) -> Any:
    if isinstance(value, float):
        raise TypeError("Float types are not supported. Use Decimal types instead.")
    if isinstance(value, bool) or value is None or isinstance(value, str | Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, dict):
        return {k: _stored(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_stored(v) for v in value]
    raise TypeError(f"unsupported type {type(value).__name__}")


class _Expression:
    """A parsed condition or key-condition expression, evaluated against one item."""

    def __init__(self, text: str, names: dict[str, str], values: dict[str, Any]) -> None:
        self._tokens = [t for t in _TOKEN.findall(text) if t]
        if "".join(self._tokens).replace(" ", "") != re.sub(r"\s+", "", text):
            raise ValueError(f"the fake cannot parse {text!r}")
        self._names, self._values, self._at = names, {k: _stored(v) for k, v in values.items()}, 0

    def matches(self, item: Item | None) -> bool:
        self._at = 0
        result = self._or(item or {})
        if self._at != len(self._tokens):
            raise ValueError(f"unexpected {self._tokens[self._at]!r}")
        return result

    def _peek(self) -> str | None:
        return self._tokens[self._at] if self._at < len(self._tokens) else None

    def _take(self, expected: str | None = None) -> str:
        token = self._tokens[self._at]
        if expected is not None and token.upper() != expected:
            raise ValueError(f"expected {expected}, got {token!r}")
        self._at += 1
        return token

    def _or(self, item: Item) -> bool:
        return any(self._joined(item, "OR", self._and))

    def _and(self, item: Item) -> bool:
        return all(self._joined(item, "AND", self._not))

    def _joined(self, item: Item, keyword: str, operand: Callable[[Item], bool]) -> list[bool]:
        """Every operand joined by ``keyword`` (each is evaluated: the whole expression must parse)."""
        results = [operand(item)]
        while (self._peek() or "").upper() == keyword:
            self._take()
            results.append(operand(item))
        return results

    def _not(self, item: Item) -> bool:
        if (self._peek() or "").upper() == "NOT":
            self._take()
            return not self._not(item)
        return self._atom(item)

    def _atom(self, item: Item) -> bool:
        if self._peek() == "(":
            self._take()
            result = self._or(item)
            self._take(")")
            return result
        token = self._take()
        if token in ("attribute_exists", "attribute_not_exists", "begins_with"):
            self._take("(")
            name = self._name(self._take())
            if token == "begins_with":
                self._take(",")
                prefix = self._operand(self._take(), item)
                self._take(")")
                return isinstance(item.get(name), str) and item[name].startswith(prefix)
            self._take(")")
            return (name in item) == (token == "attribute_exists")
        left = self._operand(token, item)
        operator = self._take()
        right = self._operand(self._take(), item)
        if left is None or right is None:
            return operator == "<>" and left != right
        comparisons: dict[str, Callable[[Any, Any], bool]] = {
            "=": lambda a, b: a == b, "<>": lambda a, b: a != b, "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
        }
        return comparisons[operator](left, right)

    def _name(self, token: str) -> str:
        return self._names[token] if token.startswith("#") else token

    def _operand(self, token: str, item: Item) -> Any:
        return self._values[token] if token.startswith(":") else item.get(self._name(token))


def _apply_update(item: Item, expression: str, names: dict[str, str], values: dict[str, Any]) -> None:
    clauses = re.split(r"\b(SET|REMOVE)\b", expression)
    for keyword, body in zip(clauses[1::2], clauses[2::2], strict=True):
        for part in (p.strip() for p in body.split(",") if p.strip()):
            if keyword == "SET":
                target, value = (side.strip() for side in part.split("=", 1))
                item[names.get(target, target)] = _stored(values[value])
            else:
                item.pop(names.get(part, part), None)


class _Meta:
    def __init__(self, table: FakeTable) -> None:
        self.client = _FakeClient(table)


class _FakeClient:
    """The Table's ``meta.client``: only ``transact_write_items`` on this one table."""

    def __init__(self, table: FakeTable) -> None:
        self._table = table

    def transact_write_items(self, *, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        reasons, writes = [], []
        for entry in TransactItems:
            (kind, request), = entry.items()
            if request["TableName"] != self._table.name or kind != "Update":
                raise ValueError(f"the fake supports Update items of {self._table.name} only, not {kind}")
            key = (request["Key"]["pk"], request["Key"]["sk"])
            names, values = request.get("ExpressionAttributeNames", {}), request.get("ExpressionAttributeValues", {})
            condition = request.get("ConditionExpression")
            ok = condition is None or _Expression(condition, names, values).matches(self._table.items.get(key))
            reasons.append({"Code": "None" if ok else "ConditionalCheckFailed"})
            writes.append((key, request["UpdateExpression"], names, values))
        if any(reason["Code"] != "None" for reason in reasons):
            raise _client_error("TransactionCanceledException", "TransactWriteItems", CancellationReasons=reasons)
        for key, update, names, values in writes:
            item = self._table.items.setdefault(key, {"pk": key[0], "sk": key[1]})
            _apply_update(item, update, names, values)
        return {}


class FakeTable:
    """A DynamoDB table in memory, for the calls ``livefire.store`` makes."""

    def __init__(self, name: str = "fake-drill-table", indexes: tuple[str, ...] = ("gsi1", "gsi2")) -> None:
        self.name = name
        self.indexes = indexes
        self.items: dict[tuple[str, str], Item] = {}
        self.meta = _Meta(self)

    def _check(self, key: tuple[str, str], condition: str | None, names: dict[str, str],
               values: dict[str, Any], operation: str) -> None:
        if condition is not None and not _Expression(condition, names, values).matches(self.items.get(key)):
            raise _client_error("ConditionalCheckFailedException", operation)

    def put_item(self, *, Item: Item, ConditionExpression: str | None = None,  # noqa: N803
                 ExpressionAttributeNames: dict[str, str] | None = None,  # noqa: N803
                 ExpressionAttributeValues: dict[str, Any] | None = None) -> dict[str, Any]:  # noqa: N803
        key = (Item["pk"], Item["sk"])
        self._check(key, ConditionExpression, ExpressionAttributeNames or {}, ExpressionAttributeValues or {},
                    "PutItem")
        self.items[key] = _stored(copy.deepcopy(Item))
        return {}

    def get_item(self, *, Key: dict[str, str], ConsistentRead: bool = False,  # noqa: N803
                 ProjectionExpression: str | None = None) -> dict[str, Any]:  # noqa: N803
        item = self.items.get((Key["pk"], Key["sk"]))
        if item is None:
            return {}
        if ProjectionExpression is not None:
            wanted = {name.strip() for name in ProjectionExpression.split(",")}
            return {"Item": {k: copy.deepcopy(v) for k, v in item.items() if k in wanted}}
        return {"Item": copy.deepcopy(item)}

    def update_item(self, *, Key: dict[str, str], UpdateExpression: str,  # noqa: N803
                    ConditionExpression: str | None = None,  # noqa: N803
                    ExpressionAttributeNames: dict[str, str] | None = None,  # noqa: N803
                    ExpressionAttributeValues: dict[str, Any] | None = None) -> dict[str, Any]:  # noqa: N803
        key = (Key["pk"], Key["sk"])
        names, values = ExpressionAttributeNames or {}, ExpressionAttributeValues or {}
        self._check(key, ConditionExpression, names, values, "UpdateItem")
        _apply_update(self.items.setdefault(key, {"pk": key[0], "sk": key[1]}), UpdateExpression, names, values)
        return {}

    def delete_item(self, *, Key: dict[str, str], ConditionExpression: str | None = None,  # noqa: N803
                    ExpressionAttributeNames: dict[str, str] | None = None,  # noqa: N803
                    ExpressionAttributeValues: dict[str, Any] | None = None,  # noqa: N803
                    ReturnValues: str = "NONE") -> dict[str, Any]:  # noqa: N803
        key = (Key["pk"], Key["sk"])
        self._check(key, ConditionExpression, ExpressionAttributeNames or {}, ExpressionAttributeValues or {},
                    "DeleteItem")
        old = self.items.pop(key, None)
        return {"Attributes": old} if ReturnValues == "ALL_OLD" and old is not None else {}

    def query(self, *, KeyConditionExpression: str, ExpressionAttributeValues: dict[str, Any],  # noqa: N803
              IndexName: str | None = None, ScanIndexForward: bool = True, Limit: int | None = None,  # noqa: N803
              ExclusiveStartKey: dict[str, Any] | None = None, ConsistentRead: bool = False,  # noqa: N803
              ExpressionAttributeNames: dict[str, str] | None = None) -> dict[str, Any]:  # noqa: N803
        if IndexName is not None and IndexName not in self.indexes:
            raise _client_error("ValidationException", "Query")
        pk, sk = (f"{IndexName}pk", f"{IndexName}sk") if IndexName else ("pk", "sk")
        condition = _Expression(KeyConditionExpression, ExpressionAttributeNames or {}, ExpressionAttributeValues)
        found = sorted((item for item in self.items.values() if pk in item and sk in item and condition.matches(item)),
                       key=lambda item: (item[sk], item["pk"], item["sk"]), reverse=not ScanIndexForward)
        start = 0
        if ExclusiveStartKey is not None:
            start = next(i for i, item in enumerate(found)
                         if (item["pk"], item["sk"]) == (ExclusiveStartKey["pk"], ExclusiveStartKey["sk"])) + 1
        page = found[start:start + Limit] if Limit is not None else found[start:]
        response: dict[str, Any] = {"Items": copy.deepcopy(page), "Count": len(page)}
        if Limit is not None and start + Limit < len(found):
            response["LastEvaluatedKey"] = {"pk": page[-1]["pk"], "sk": page[-1]["sk"]}
        return response


class FakeBlobs:
    """The evidence bucket as ``Runtime.put_json`` / ``get_json`` use it: JSON documents by key, in memory."""

    def __init__(self) -> None:
        self.documents: dict[str, Any] = {}

    def put_json(self, key: str, document: Any) -> None:
        self.documents[key] = copy.deepcopy(document)

    def get_json(self, key: str) -> Any:
        if key not in self.documents:
            raise KeyError(f"no document {key}")
        return copy.deepcopy(self.documents[key])


class InMemoryS3:
    """An S3 bucket in memory, as boto3's client calls it (keys to bytes; a missing key is NoSuchKey): counts the
    lists and gets and records when each key was asked for."""

    def __init__(self, objects: dict[str, bytes] | None = None) -> None:
        self.objects: dict[str, bytes] = objects if objects is not None else {}
        self.lists = 0
        self.gets = 0
        self.asked: list[tuple[str, float]] = []  # (key, epoch seconds) of every get

    def put_object(self, *, Key: str, Body: bytes, **_: Any) -> None:  # noqa: N803 (boto3's names)
        self.objects[Key] = Body

    def get_object(self, *, Key: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        self.gets += 1
        self.asked.append((Key, time.time()))
        if Key not in self.objects:
            raise _client_error("NoSuchKey", "GetObject")
        return {"Body": io.BytesIO(self.objects[Key])}

    def list_objects_v2(self, *, Prefix: str, MaxKeys: int = 1000, StartAfter: str = "",  # noqa: N803
                        **_: Any) -> dict[str, Any]:
        self.lists += 1
        keys = sorted(k for k in self.objects if k.startswith(Prefix) and k > StartAfter)[:MaxKeys]
        return {"Contents": [{"Key": k} for k in keys]} if keys else {}

    def get_paginator(self, _name: str) -> InMemoryS3:
        return self

    def paginate(self, *, Prefix: str, **_: Any) -> list[dict[str, Any]]:  # noqa: N803
        return [{"Contents": [{"Key": k} for k in sorted(self.objects) if k.startswith(Prefix)]}]
