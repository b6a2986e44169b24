"""What every writer of the drill table shares (livefire/store.py, livefire/leases.py): numbers to and from
DynamoDB, conditional writes, and the sparse index ``gsi2`` the guardian's sweeper reads."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError


def now_ms() -> int:
    return int(time.time() * 1000)


def plain(value: Any) -> Any:
    """DynamoDB returns numbers as Decimal; turn them back into int/float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def stored(value: Any) -> Any:
    """DynamoDB takes no float: a float is stored as a Decimal of its shortest repr."""
    return Decimal(str(value)) if isinstance(value, float) else value


def is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def if_condition_holds(write: Callable[[], object]) -> bool:
    """Run a conditional write: True when it was made, False when its condition did not hold."""
    try:
        write()
    except ClientError as exc:
        if not is_condition_failure(exc):
            raise
        return False
    return True


def query_gsi2(table: Any, partition: str, before: str | None = None) -> list[dict[str, Any]]:
    """Every item of one partition of ``gsi2`` (sorted by expiry), those sorting before ``before`` when given."""
    condition = "gsi2pk = :active" + (" AND gsi2sk < :until" if before is not None else "")
    values: dict[str, Any] = {":active": partition}
    if before is not None:
        values[":until"] = before
    query: dict[str, Any] = {
        "IndexName": "gsi2", "KeyConditionExpression": condition, "ExpressionAttributeValues": values,
    }
    items: list[dict[str, Any]] = []
    while True:
        response = table.query(**query)
        items += response.get("Items", [])
        if "LastEvaluatedKey" not in response:
            return items
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
