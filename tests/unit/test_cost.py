"""livefire.cost: pricing a drill from its execution history."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from livefire.cost import LIST_PRICES, PriceList, count_state_transitions, drill_cost, execution_history, fis_cost

T0 = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
ACCOUNT_ARN = "arn:aws:lambda:us-east-1:123456789012:function"


class History:
    """Builds an execution history shaped like GetExecutionHistory's, one event at a time."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, kind: str, at_ms: float, previous: int, **details: Any) -> int:
        event_id = len(self.events) + 1
        event: dict[str, Any] = {"id": event_id, "previousEventId": previous, "type": kind,
                                 "timestamp": T0 + timedelta(milliseconds=at_ms)}
        event.update(details)
        self.events.append(event)
        return event_id

    def enter(self, name: str, at_ms: float, previous: int, kind: str = "Task") -> int:
        return self.add(f"{kind}StateEntered", at_ms, previous, stateEnteredEventDetails={"name": name})

    def lambda_task(self, entered: int, function: str, start_ms: float, end_ms: float,
                    outcome: str = "TaskSucceeded") -> int:
        scheduled = self.add("TaskScheduled", start_ms, entered, taskScheduledEventDetails={
            "resourceType": "lambda", "resource": "invoke",
            "parameters": json.dumps({"FunctionName": f"{ACCOUNT_ARN}:{function}", "Payload": {}})})
        started = self.add("TaskStarted", start_ms, scheduled, taskStartedEventDetails={"resourceType": "lambda"})
        return self.add(outcome, end_ms, started)


def test_every_state_entered_is_one_transition_and_every_task_retry_one_more() -> None:
    history = History()
    start = history.add("ExecutionStarted", 0, 0)
    plan = history.enter("Plan", 1, start)
    failed = history.lambda_task(plan, "stack-PlanFunction-A1", 2, 50, outcome="TaskFailed")
    retried = history.add("TaskScheduled", 1050, failed, taskScheduledEventDetails={
        "resourceType": "lambda", "parameters": json.dumps({"FunctionName": "stack-PlanFunction-A1"})})
    started = history.add("TaskStarted", 1050, retried)
    done = history.add("TaskSucceeded", 1100, started)
    exited = history.add("TaskStateExited", 1101, done)
    wait = history.enter("Lead", 1102, exited, kind="Wait")
    history.enter("Passed", 2102, wait, kind="Succeed")

    transitions, retries = count_state_transitions(history.events)

    assert (transitions, retries) == (4, 1)


def test_lambda_time_runs_from_task_started_to_its_end_billed_per_started_millisecond_at_its_memory() -> None:
    history = History()
    assess = history.enter("Assess", 0, 0)
    history.lambda_task(assess, "stack-AssessFunction-X9", 10, 210.4)
    probe = history.enter("ProbeDrill", 300, 0)
    history.lambda_task(probe, "stack-ProbeFunction-Q2", 300, 2300)

    cost = drill_cost(history.events, memory_mb={"AssessFunction": 1024}, default_memory_mb=512)

    by_name = {f.function: f for f in cost.functions}
    assert by_name["stack-AssessFunction-X9"].billed_ms == 201
    assert by_name["stack-AssessFunction-X9"].memory_mb == 1024
    assert by_name["stack-ProbeFunction-Q2"].memory_mb == 512
    assert cost.lambda_gb_seconds == pytest.approx(1.0 * 0.201 + 0.5 * 2.0)
    assert cost.total_usd == pytest.approx(
        2 * LIST_PRICES.state_transition + cost.lambda_gb_seconds * LIST_PRICES.lambda_gb_second
        + 2 * LIST_PRICES.lambda_request)


def test_tasks_of_other_services_are_not_billed_as_lambda() -> None:
    history = History()
    entered = history.enter("Record", 0, 0)
    scheduled = history.add("TaskScheduled", 1, entered, taskScheduledEventDetails={
        "resourceType": "dynamodb", "resource": "putItem", "parameters": "{}"})
    started = history.add("TaskStarted", 1, scheduled)
    history.add("TaskSucceeded", 40, started)

    cost = drill_cost(history.events)

    assert cost.functions == []
    assert cost.state_transitions == 1


def test_measured_durations_replace_the_timings_of_the_history() -> None:
    history = History()
    entered = history.enter("Plan", 0, 0)
    history.lambda_task(entered, "livefire-PlanFunction", 0, 900)

    cost = drill_cost(history.events, durations=[("livefire-PlanFunction", 0.0304), ("livefire-PlanFunction", 0.01)])

    assert [(f.function, f.invocations, f.billed_ms) for f in cost.functions] == [("livefire-PlanFunction", 2, 41)]


def test_the_report_document_totals_its_lines_and_names_the_prices_date_and_source() -> None:
    history = History()
    entered = history.enter("Probe", 0, 0)
    history.lambda_task(entered, "livefire-ProbeFunction", 0, 60_000)
    prices = PriceList(as_of="2030-01-01", state_transition=0.001)

    document = drill_cost(history.events, prices=prices).to_report()

    assert document.total_usd == pytest.approx(sum(line.usd for line in document.lines))
    assert document.state_transitions == 1
    assert document.lines[0].usd == pytest.approx(0.001)
    assert "2030-01-01" in document.note
    assert "https://aws.amazon.com/step-functions/pricing/" in document.note
    json.dumps(document.model_dump(mode="json"))  # stored as cost.json


@pytest.mark.parametrize(("seconds", "minutes"), [(3.0, 1), (89.0, 1), (90.0, 2), (120.0, 2), (151.0, 3)])
def test_fis_bills_each_action_to_the_nearest_minute_and_at_least_one(seconds: float, minutes: int) -> None:
    assert fis_cost([seconds]) == pytest.approx(minutes * LIST_PRICES.fis_action_minute)


class PagedHistory:
    """A Step Functions client that serves a history in pages, as GetExecutionHistory does past 1,000 events."""

    def __init__(self, pages: list[list[dict[str, Any]]]) -> None:
        self.pages = pages
        self.calls: list[dict[str, Any]] = []

    def get_execution_history(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        index = int(kwargs.get("nextToken", "0"))
        page: dict[str, Any] = {"events": self.pages[index]}
        if index + 1 < len(self.pages):
            page["nextToken"] = str(index + 1)
        return page


def test_the_history_is_read_page_after_page() -> None:
    client = PagedHistory([[{"id": 1}, {"id": 2}], [{"id": 3}], [{"id": 4}]])

    events = execution_history(client, "arn:aws:states:us-east-1:123456789012:execution:m:e")

    assert [e["id"] for e in events] == [1, 2, 3, 4]
    assert [c.get("nextToken") for c in client.calls] == [None, "1", "2"]


def test_a_real_execution_history_counts_one_transition_per_state(unique_id: str) -> None:
    definition = {"StartAt": "First", "States": {
        "First": {"Type": "Pass", "Next": "Second"},
        "Second": {"Type": "Pass", "Next": "Done"},
        "Done": {"Type": "Succeed"},
    }}
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        machine = sfn.create_state_machine(name=unique_id, definition=json.dumps(definition),
                                           roleArn="arn:aws:iam::123456789012:role/sfn")["stateMachineArn"]
        arn = sfn.start_execution(stateMachineArn=machine, name=unique_id)["executionArn"]
        for _ in range(100):
            if sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
                break
            time.sleep(0.05)

        events = execution_history(sfn, arn)

    assert events[0]["type"] == "ExecutionStarted"
    assert count_state_transitions(events) == (3, 0)


def test_the_evidence_step_prices_each_function_at_its_memory_in_the_template() -> None:
    from livefire.evidence.publish import FUNCTION_MEMORY_MB
    from livefire_local.template import LocalTemplate
    from tests.conftest import ROOT

    template = LocalTemplate.load(ROOT)
    default = template.document["Globals"]["Function"]["MemorySize"]
    sizes = {
        logical_id: resource["Properties"].get("MemorySize", default)
        for logical_id, resource in template.resources_of_type("AWS::Serverless::Function").items()
    }

    assert {name: size for name, size in sizes.items() if size != default} == FUNCTION_MEMORY_MB
