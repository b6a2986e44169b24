"""Local mode's moto DynamoDB keeps DynamoDB's guarantee that a conditional write is atomic
(livefire_local/atomic_dynamodb.py): of writers racing for one key, exactly one wins."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from livefire_local.atomic_dynamodb import make_dynamodb_atomic

WRITERS, ROUNDS = 8, 25


@pytest.fixture
def table() -> Iterator[object]:
    with mock_aws():
        resource = boto3.resource("dynamodb", region_name="us-east-1")
        yield resource.create_table(
            TableName="leases", BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )


def race(table: object, key: str) -> int:
    """WRITERS threads put ``key`` if absent, released together; how many succeeded."""
    start, won = threading.Barrier(WRITERS), []

    def writer(holder: int) -> None:
        start.wait()
        try:
            table.put_item(Item={"pk": key, "holder": holder},  # type: ignore[attr-defined]
                           ConditionExpression="attribute_not_exists(pk)")
            won.append(holder)
        except table.meta.client.exceptions.ConditionalCheckFailedException:  # type: ignore[attr-defined]
            pass

    threads = [threading.Thread(target=writer, args=(holder,)) for holder in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return len(won)


def test_of_writers_racing_for_one_lease_exactly_one_wins_every_time(table: object) -> None:
    make_dynamodb_atomic()
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can: the race at its widest
    try:
        winners = [race(table, f"LEASE#{n}") for n in range(ROUNDS)]
    finally:
        sys.setswitchinterval(switch)

    assert winners == [1] * ROUNDS
