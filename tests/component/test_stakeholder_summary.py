"""The Evidence step under moto with a summary topic (SummaryTopicArn): every finished drill's short summary reaches
the topic, in the topic's own region; without a topic nothing is published."""

from __future__ import annotations

import json

import boto3
import pytest

from livefire.evidence.summary import TOPIC_VARIABLE
from tests.component.evidence_stack import EvidenceStack, evidence_stack
from tests.evidence_data import prefix

__all__ = ["evidence_stack"]  # the fixture, imported for pytest
TOPIC_REGION = "eu-west-1"


def subscribed_queue(unique_id: str) -> tuple[str, str]:
    """A topic in another region and a queue subscribed to it (raw delivery): its ARN and the queue's URL."""
    sns, sqs = boto3.client("sns", region_name=TOPIC_REGION), boto3.client("sqs", region_name=TOPIC_REGION)
    topic = sns.create_topic(Name=f"summaries-{unique_id}")["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"summaries-{unique_id}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "false"})
    return topic, queue_url


def test_a_finished_drill_sends_its_summary_to_the_topic(
    evidence_stack: EvidenceStack, unique_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic, queue_url = subscribed_queue(unique_id)
    monkeypatch.setenv(TOPIC_VARIABLE, topic)

    evidence_stack.publish(unique_id)

    sqs = boto3.client("sqs", region_name=TOPIC_REGION)
    (message,) = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    notification = json.loads(message["Body"])
    assert notification["Subject"] == f"livefire payments: PASS ({unique_id})"
    body = notification["Message"].splitlines()
    assert body[:3] == [f"Drill {unique_id} of payments (active-passive): PASS", "RTO: 0.800 s", "RPO: not measured"]
    assert "Findings not passed: none" in body
    assert body[-1] == f"Report: s3://{evidence_stack.bucket}/{prefix(unique_id)}report.html"


def test_without_a_topic_nothing_is_published(
    evidence_stack: EvidenceStack, unique_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, queue_url = subscribed_queue(unique_id)
    monkeypatch.delenv(TOPIC_VARIABLE, raising=False)

    evidence_stack.publish(unique_id)

    sqs = boto3.client("sqs", region_name=TOPIC_REGION)
    assert sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []) == []
