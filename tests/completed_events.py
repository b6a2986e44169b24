"""The ``Drill Completed`` events a test's drills send, captured on moto's event bus by a rule and a queue."""

from __future__ import annotations

import json
from typing import Any

import boto3

RULE = "test-drill-completed"


class CompletedEvents:
    """From creation on, every ``Drill Completed`` event on the default bus is kept; ``of`` takes a drill's."""

    def __init__(self) -> None:
        events, self._sqs = boto3.client("events"), boto3.client("sqs")
        self._url = self._sqs.create_queue(QueueName=RULE)["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=RULE, State="ENABLED",
                        EventPattern=json.dumps({"source": ["livefire"], "detail-type": ["Drill Completed"]}))
        events.put_targets(Rule=RULE, Targets=[{"Id": "queue", "Arn": arn}])
        self._kept: list[dict[str, Any]] = []

    def of(self, drill_id: str) -> list[dict[str, Any]]:
        for _batch in range(20):  # bounded: moto delivers at once
            messages = self._sqs.receive_message(QueueUrl=self._url, MaxNumberOfMessages=10,
                                                 WaitTimeSeconds=0).get("Messages", [])
            if not messages:
                break
            for message in messages:
                self._kept.append(json.loads(message["Body"]))
                self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        return [event for event in self._kept if event["detail"]["drillId"] == drill_id]
