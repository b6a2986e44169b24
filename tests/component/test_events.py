"""Every file in events/ (the `sam local invoke -e` samples) is invoked against its handler on the sandbox, in the
order a drill sends them, and what the handler returns is what the next state expects (its contract model)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from livefire.approval import ApprovalAnnouncement
from livefire.campaign.model import CampaignSummary
from livefire.contracts import (
    AssessSummary,
    EvidenceResult,
    InjectResult,
    Plan,
    ProbeSummary,
    RollbackResult,
    SteadyResult,
)
from livefire.guardian import GuardianReport
from livefire.spec import parse_spec
from livefire_local.template import LocalTemplate
from tests.component.event_replay import ORDER, SCHEDULED_DRILL_ID, Step, event_files, function_of, load_event, replay
from tests.conftest import ROOT

CONTRACTS: dict[str, type[BaseModel]] = {
    "PlanFunction": Plan, "ProbeFunction": ProbeSummary, "InjectFunction": InjectResult,
    "RollbackFunction": RollbackResult, "EvidenceFunction": EvidenceResult, "GuardianFunction": GuardianReport,
    "ApprovalFunction": ApprovalAnnouncement, "CampaignFunction": CampaignSummary,
}


def contract_of(step: Step) -> type[BaseModel]:
    if step.function == "AssessFunction":
        return SteadyResult if step.event["check"] == "steady" else AssessSummary
    return CONTRACTS[step.function]


def event_steps() -> dict[str, Step]:
    return {step.name: step for step in replay().steps if step.name in ORDER}


def test_every_event_file_is_replayed_and_names_a_function_of_the_template() -> None:
    functions = LocalTemplate.load(ROOT).resources_of_type("AWS::Serverless::Function")

    files = event_files()

    assert files == sorted(ORDER), "a file in events/ is not replayed (add it to ORDER in event_replay.py)"
    assert all(function_of(name) in functions for name in files)
    assert set(functions) <= {function_of(name) for name in files}, "a function has no event"


@pytest.mark.slow
@pytest.mark.parametrize("name", ORDER)
def test_an_event_runs_its_handler_and_returns_what_the_next_state_expects(name: str) -> None:
    step = event_steps()[name]

    assert step.error is None, f"{name}: {step.error} (contracts changed? regenerate: python tools/make_events.py)"
    contract_of(step).model_validate(step.output)


@pytest.mark.slow
def test_the_replayed_drill_restores_its_fault_and_reaches_a_verdict() -> None:
    steps = event_steps()

    inject: dict[str, Any] = steps["inject_http_abort.json"].output
    rollback: dict[str, Any] = steps["rollback_planned.json"].output
    evidence: dict[str, Any] = steps["evidence_completed.json"].output
    failed: dict[str, Any] = steps["evidence_error.json"].output

    assert [fault["status"] for fault in inject["faults"]] == ["INJECTED"]
    assert [fault["status"] for fault in rollback["faults"]] == ["RESTORED"]
    assert evidence["verdict"] in ("PASS", "FAIL", "INCONCLUSIVE")
    assert failed["verdict"] == "ERROR"
    assert steps["guardian_execution_failed.json"].output["drills"] == [
        load_event("guardian_execution_failed.json")["detail"]["name"]]


def test_the_plan_event_is_the_scheduled_drill_input_form_and_the_schedule_input_a_valid_spec() -> None:
    plan_event = load_event("plan_active_passive.json")
    schedule = load_event("schedule_input.json")

    assert set(plan_event) == {"drillId", "executionArn", "executionInput"}
    assert plan_event["executionArn"].endswith(f":{plan_event['drillId']}")
    assert set(schedule) == {"spec"}
    parse_spec(schedule["spec"])


@pytest.mark.slow
def test_the_schedule_input_plans_a_drill() -> None:
    step = event_steps()["schedule_input.json"]

    assert step.error is None
    assert step.output["drillId"] == SCHEDULED_DRILL_ID


def test_the_guardian_event_is_a_step_functions_status_change_of_a_failed_execution() -> None:
    event = load_event("guardian_execution_failed.json")

    assert event["source"] == "aws.states"
    assert event["detail-type"] == "Step Functions Execution Status Change"
    assert event["resources"] == [event["detail"]["executionArn"]]
    assert event["detail"]["status"] == "FAILED"
    assert {"executionArn", "stateMachineArn", "name", "status", "startDate", "stopDate", "input"} <= set(
        event["detail"])
