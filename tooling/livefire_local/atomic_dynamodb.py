"""moto's DynamoDB made as atomic as DynamoDB (docs/architecture.md §10).

DynamoDB evaluates a write's ConditionExpression and applies the write as one atomic step. moto checks, then
writes, in Python: two threads of one process can both pass the same condition. Local mode runs every function in
one process, so two Lambdas invoked at once (two Plans taking one service's lease, two deliveries of one Inject
passing idempotency) could both win where DynamoDB lets exactly one. One lock around moto's item operations gives
back DynamoDB's guarantee; reads take it too, so none sees a write half done.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

_LOCK = threading.RLock()
_ITEM_OPERATIONS = ("put_item", "update_item", "delete_item", "transact_write_items", "get_item", "query", "scan")
_INSTALLED = "_livefire_atomic"


def _serialised(operation: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(operation)
    def one_at_a_time(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return operation(*args, **kwargs)

    return one_at_a_time


def make_dynamodb_atomic() -> None:
    """Serialise moto's DynamoDB item operations in this process (idempotent)."""
    if getattr(DynamoDBBackend, _INSTALLED, False):
        return
    for name in _ITEM_OPERATIONS:
        setattr(DynamoDBBackend, name, _serialised(getattr(DynamoDBBackend, name)))
    setattr(DynamoDBBackend, _INSTALLED, True)
