"""`livefire start` / `livefire status` against a stack hosted by moto: CloudFormation outputs name the real drill
state machine (statemachines/drill.asl.json, built by local_stack) and its table and bucket; the Lambda tasks run
in-process on the sandbox mesh."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from livefire.spec import parse_spec
from livefire_local.aws import LocalStack
from livefire_local.cli import main
from livefire_local.runner import sandbox_session
from tests.conftest import FAST_PHASES, MESH_DIR, ROOT, sandbox_spec_document


def create_stack(name: str, outputs: dict[str, str]) -> None:
    """A plain CloudFormation stack whose outputs are what `sam deploy` of template.yaml would output."""
    body = {
        "Resources": {"Marker": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": f"/livefire/{name}"}}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(body))


def livefire_stack_outputs(stack: LocalStack) -> dict[str, str]:
    return {"StateMachineArn": stack.state_machine_arn, "DrillTableName": stack.table,
            "EvidenceBucketName": stack.bucket, "EventBusName": "default"}


@pytest.fixture
def deployed() -> Iterator[LocalStack]:
    with sandbox_session(parse_spec(sandbox_spec_document()), MESH_DIR, ROOT) as (_mesh, stack):
        yield stack


@pytest.mark.slow
def test_start_runs_a_drill_on_the_stack_found_by_its_outputs_and_prints_the_verdict(
    deployed: LocalStack, unique_id: str, write_spec: Callable[[dict[str, Any]], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    create_stack(unique_id, livefire_stack_outputs(deployed))
    # A recovery that outlasts the sandbox's second ejection (10 s): on a loaded machine a Rollback late past the
    # first (5 s) left the primary failing again, and a 4 s recovery never saw it serve.
    spec = write_spec(sandbox_spec_document(phases={**FAST_PHASES, "recovery": "12s"}))

    code = main(["start", str(spec), "--stack", unique_id])

    out = capsys.readouterr().out
    assert code == 0, out
    assert "VERDICT: PASS" in out
    assert "RTO: —" not in out  # the verdict line's dash: no RTO
    for state in ("> Plan", "> Inject", "< Rollback", "> Evidence"):
        assert state in out, state
    executions = deployed.sfn.list_executions(stateMachineArn=deployed.state_machine_arn)["executions"]
    assert len(executions) == 1 and executions[0]["status"] == "SUCCEEDED"
    drill_id = executions[0]["name"]
    assert drill_id.startswith("payments-active-passive-")
    assert f"report: s3://{deployed.bucket}/drills/payments/{drill_id}/report." in out

    status = main(["status", drill_id, "--stack", unique_id])

    out = capsys.readouterr().out
    assert status == 0
    lines = dict(line.split(None, 1) for line in out.splitlines() if line.strip() and not line.startswith("fault "))
    assert lines["verdict"].strip() == "PASS"
    assert lines["status"].strip() == "COMPLETED"
    assert lines["execution"].strip() == executions[0]["executionArn"]
    assert "fault http-abort-us-east-1" in out and "RESTORED" in out


def test_start_refuses_an_invalid_spec_and_starts_nothing(
    deployed: LocalStack, unique_id: str, write_spec: Callable[[dict[str, Any]], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    create_stack(unique_id, livefire_stack_outputs(deployed))
    document = sandbox_spec_document()
    document["phases"]["fault"] = "-3s"
    spec = write_spec(document)

    code = main(["start", str(spec), "--stack", unique_id])

    captured = capsys.readouterr()
    assert code == 2
    assert "phases.fault" in captured.err
    assert deployed.sfn.list_executions(stateMachineArn=deployed.state_machine_arn)["executions"] == []


def test_start_names_a_stack_that_does_not_exist(
    deployed: LocalStack, unique_id: str, write_spec: Callable[[dict[str, Any]], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = write_spec(sandbox_spec_document())

    code = main(["start", str(spec), "--stack", unique_id])

    err = capsys.readouterr().err
    assert code == 2
    assert unique_id in err and "does not exist" in err
    assert "Traceback" not in err


def test_start_says_when_a_stack_is_not_a_livefire_stack(
    deployed: LocalStack, unique_id: str, write_spec: Callable[[dict[str, Any]], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    create_stack(unique_id, {"SomethingElse": "x"})
    spec = write_spec(sandbox_spec_document())

    code = main(["start", str(spec), "--stack", unique_id])

    err = capsys.readouterr().err
    assert code == 2
    assert "StateMachineArn" in err and "is it a livefire stack?" in err


def test_status_of_an_unknown_drill_is_an_error_naming_it(
    deployed: LocalStack, unique_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    create_stack(unique_id, livefire_stack_outputs(deployed))

    code = main(["status", f"{unique_id}-nope", "--stack", unique_id])

    assert code == 2
    assert f"no drill {unique_id}-nope" in capsys.readouterr().err
