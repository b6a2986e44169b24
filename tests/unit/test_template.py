"""template.yaml (and probe-vantage.yaml) against the code: handlers, substitutions, settings, outputs, and the
parameters that switch encryption, Object Lock, the VPC and the alarms."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from livefire_local.aws_cli import OUTPUTS
from livefire_local.template import ACCOUNT, LocalTemplate
from tests.conftest import ROOT

KMS_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/0b9e6c3e-1f7c-4a53-9d5e-2c1c3a4b5d6e"
TEMPLATES = ["template.yaml", "probe-vantage.yaml"]


def load(parameters: dict[str, str] | None = None, template_file: str = "template.yaml") -> LocalTemplate:
    return LocalTemplate.load(ROOT, template_file=template_file, parameters=parameters or {})


def resolved(template: LocalTemplate, logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = template.resolve(template.resources[logical_id])["Properties"]
    return properties


def fail_states(definition: dict[str, Any]) -> dict[str, str]:
    return {name: state["Error"] for name, state in definition["States"].items() if state["Type"] == "Fail"}


@pytest.mark.parametrize("template_file", TEMPLATES)
def test_every_function_handler_exists_and_runs_python_312_on_arm64(template_file: str) -> None:
    template = load(template_file=template_file)
    globals_ = template.document.get("Globals", {}).get("Function", {})

    for logical_id, resource in template.resources_of_type("AWS::Serverless::Function").items():
        properties = {**globals_, **resource["Properties"]}
        module, _, attribute = properties["Handler"].rpartition(".")
        source = ROOT / properties["CodeUri"] / f"{module}.py"

        assert source.is_file(), logical_id
        assert re.search(rf"^def {attribute}\(", source.read_text(), re.MULTILINE), logical_id
        assert properties["Runtime"] == "python3.12" and properties["Architectures"] == ["arm64"], logical_id
        assert properties["Tracing"] == "Active", logical_id
    layer = template.resources["LivefireLayer"]
    assert layer["Properties"]["ContentUri"] == "layers/livefire/"
    assert layer["Metadata"] == {"BuildMethod": "python3.12", "BuildArchitecture": "arm64"}


def test_every_substitution_is_used_by_the_state_machine_and_every_placeholder_substituted() -> None:
    template = load()
    properties = template.resources["DrillStateMachine"]["Properties"]
    definition = (ROOT / properties["DefinitionUri"]).read_text()

    placeholders = set(re.findall(r"\$\{(\w+)\}", definition))

    assert placeholders == set(properties["DefinitionSubstitutions"])
    assert "${" not in template.state_machine_definition()


def test_the_functions_get_every_setting_the_runtime_reads_from_the_environment() -> None:
    settings = (ROOT / "layers" / "livefire" / "livefire" / "config.py").read_text()
    read = set(re.findall(r'os\.environ\.get\("([A-Z_]+)"', settings))

    for function in load().functions():
        # the manifest signing key is the sealing steps' alone: a drill's Evidence step and a campaign's
        # (docs/architecture.md §8, docs/campaigns.md)
        assert read - {"SIGNING_KEY_ID"} <= set(function.environment), function.logical_id
        assert ("SIGNING_KEY_ID" in function.environment) == (function.logical_id in ("EvidenceFunction",
                                                                                      "CampaignFunction"))
        assert function.environment["POWERTOOLS_SERVICE_NAME"] == "livefire"
        assert function.environment["POWERTOOLS_LOG_LEVEL"] == "INFO"


def test_the_outputs_name_what_livefire_start_and_status_look_up() -> None:
    outputs = load().document["Outputs"]

    assert set(OUTPUTS.values()) <= set(outputs)
    assert outputs["StateMachineArn"]["Value"] == {"Ref": "DrillStateMachine"}
    assert outputs["DrillTableName"]["Value"] == {"Ref": "DrillTable"}
    assert outputs["EvidenceBucketName"]["Value"] == {"Ref": "EvidenceBucket"}
    assert "EventBusName" in outputs


def test_without_a_kms_key_the_evidence_is_encrypted_with_s3_keys_and_with_one_with_that_key() -> None:
    plain = resolved(load(), "EvidenceBucket")["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    kms = resolved(load({"KmsKeyArn": KMS_KEY}), "EvidenceBucket")["BucketEncryption"][
        "ServerSideEncryptionConfiguration"][0]

    assert plain["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert kms["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KMS_KEY}
    assert kms["BucketKeyEnabled"] is True


@pytest.mark.parametrize("mode", ["GOVERNANCE", "COMPLIANCE"])
def test_object_lock_is_configured_only_when_a_mode_is_chosen(mode: str) -> None:
    off = resolved(load({"ObjectLockMode": "NONE"}), "EvidenceBucket")
    on = resolved(load({"ObjectLockMode": mode, "ObjectLockRetentionDays": "730"}), "EvidenceBucket")

    assert "ObjectLockEnabled" not in off and "ObjectLockConfiguration" not in off
    assert on["ObjectLockEnabled"] is True
    assert on["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": mode, "Days": "730"}}}
    assert on["VersioningConfiguration"] == {"Status": "Enabled"}


def test_the_evidence_bucket_refuses_plain_http_and_public_access_and_outlives_the_stack() -> None:
    template = load()
    bucket = template.resources["EvidenceBucket"]
    policy = resolved(template, "EvidenceBucketPolicy")["PolicyDocument"]["Statement"]

    assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain"
    assert set(bucket["Properties"]["PublicAccessBlockConfiguration"].values()) == {True}
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
               for s in policy)
    assert template.resources["DrillTable"]["DeletionPolicy"] == "Retain"


def test_the_table_expires_idempotency_records_by_the_attribute_powertools_writes() -> None:
    idempotency = (ROOT / "layers" / "livefire" / "livefire" / "idempotency.py").read_text()
    ttl = load().resources["DrillTable"]["Properties"]["TimeToLiveSpecification"]

    assert "expiry_attr" not in idempotency  # Powertools' default attribute, "expiration", is in use
    assert ttl == {"AttributeName": "expiration", "Enabled": True}


def test_the_alarm_counts_failed_executions_except_a_failing_verdict() -> None:
    template = load()
    definition = json.loads(template.state_machine_definition())
    metric_filter = template.resources["UnexpectedFailureMetricFilter"]["Properties"]
    alarm = template.resources["UnexpectedFailureAlarm"]["Properties"]
    logging = template.resources["DrillStateMachine"]["Properties"]["Logging"]

    verdict_fail = fail_states(definition)["VerdictFail"]
    pattern = metric_filter["FilterPattern"]

    assert f'$.details.error != "{verdict_fail}"' in pattern
    assert '$.type = "ExecutionFailed"' in pattern and '$.type = "ExecutionTimedOut"' in pattern
    assert metric_filter["LogGroupName"] == {"Ref": "DrillStateMachineLogGroup"}
    assert logging["Level"] in ("ERROR", "ALL") and logging["IncludeExecutionData"] is True
    transformation = metric_filter["MetricTransformations"][0]
    assert (alarm["Namespace"], alarm["MetricName"]) == (transformation["MetricNamespace"],
                                                         transformation["MetricName"])
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" and alarm["Threshold"] == 1


def test_alarms_notify_the_topic_only_when_one_is_given() -> None:
    topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:oncall"

    quiet = resolved(load(), "UnexpectedFailureAlarm")
    loud = resolved(load({"AlarmTopicArn": topic}), "GuardianFailedAlarm")

    assert "AlarmActions" not in quiet
    assert loud["AlarmActions"] == [topic]


def test_the_guardian_rule_matches_this_state_machine_ending_badly_and_failures_go_to_a_queue() -> None:
    guardian = load().resources["GuardianFunction"]["Properties"]
    pattern = guardian["Events"]["ExecutionEndedBadly"]["Properties"]["Pattern"]

    assert pattern["detail"]["status"] == ["FAILED", "TIMED_OUT", "ABORTED"]
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": "DrillStateMachine"}]
    assert guardian["Events"]["Sweep"]["Properties"]["Input"] == json.dumps({"sweep": True})
    assert guardian["DeadLetterQueue"]["TargetArn"] == {"Fn::GetAtt": ["GuardianDeadLetterQueue", "Arn"]}


def test_the_scheduled_drill_is_created_disabled_with_the_spec_parameters() -> None:
    schedule = load().resources["DrillStateMachine"]["Properties"]["Events"]["ScheduledDrill"]["Properties"]
    parameters = load().document["Parameters"]

    assert schedule == {"ScheduleExpression": {"Ref": "ScheduleExpression"}, "State": {"Ref": "ScheduleState"},
                        "Input": {"Ref": "ScheduledDrillSpec"}}
    assert parameters["ScheduleState"]["Default"] == "DISABLED"
    assert "spec" in json.loads(parameters["ScheduledDrillSpec"]["Default"])


@pytest.mark.parametrize("template_file", TEMPLATES)
def test_every_log_group_keeps_logs_for_the_retention_parameter(template_file: str) -> None:
    template = load(template_file=template_file)

    log_groups = template.resources_of_type("AWS::Logs::LogGroup")

    assert log_groups
    assert all(g["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"} for g in log_groups.values())


def test_the_probe_vantage_stack_writes_to_the_main_stack_bucket_and_nothing_else() -> None:
    vantage = load({"EvidenceBucketName": "livefire-evidence-123"}, "probe-vantage.yaml")
    main = load()

    functions = vantage.functions()
    statements = resolved(vantage, "ProbeFunctionRole")["Policies"][0]["PolicyDocument"]["Statement"]

    assert [f.logical_id for f in functions] == ["ProbeFunction"]
    assert functions[0].environment["EVIDENCE_BUCKET"] == "livefire-evidence-123"
    assert vantage.resources["ProbeFunction"]["Properties"]["CodeUri"] == \
        main.resources["ProbeFunction"]["Properties"]["CodeUri"]
    assert {"Effect": "Allow", "Action": ["s3:GetObject"],
            "Resource": "arn:aws:s3:::livefire-evidence-123/drills/*"} in statements
    assert {"Effect": "Allow", "Action": ["s3:PutObject"],
            "Resource": "arn:aws:s3:::livefire-evidence-123/drills/*/samples/*"} in statements
    assert not any("s3:PutObject" in s["Action"] and s["Resource"].endswith("/drills/*") for s in statements)
    assert "ProbeFunctionArn" in vantage.document["Outputs"]


def test_local_resolution_drops_what_a_false_condition_removes() -> None:
    template = load()

    value = template.resolve({"A": {"Fn::If": ["UseKms", "x", {"Ref": "AWS::NoValue"}]}, "B": [
        {"Fn::If": ["InVpc", "y", {"Ref": "AWS::NoValue"}]}, "z"]})

    assert value == {"B": ["z"]}
    assert template.condition("ObjectLockOn") is True  # GOVERNANCE by default
    assert load({"ObjectLockMode": "NONE"}).condition("ObjectLockOn") is False
    with pytest.raises(KeyError):
        load({"NoSuchParameter": "x"})


@pytest.mark.parametrize(("parameter", "accepted", "refused"), [
    ("AllowedFisTemplates", ["", "EXTa1b2c3", "EXTa1b2c3,EXT9z8y7"], ["EXTa, EXTb", "EXTa,", ",EXTa", "arn:aws:fis"]),
    ("AllowedWebhookSecrets", ["", "hooks", "livefire/webhooks/runbook,chaos-bot"], ["a, b", "a,", "a*", "a,,b"]),
])
def test_the_allow_lists_outside_the_mesh_refuse_what_their_split_would_turn_into_a_wrong_arn(
        parameter: str, accepted: list[str], refused: list[str]) -> None:
    declared = load().document["Parameters"][parameter]
    pattern = re.compile(declared["AllowedPattern"])

    assert declared["Default"] == ""
    assert [value for value in accepted if not pattern.fullmatch(value)] == []
    assert [value for value in refused if pattern.fullmatch(value)] == []


def test_local_resolution_builds_one_arn_per_listed_name_with_split_sub_and_join() -> None:
    template = load({"AllowedFisTemplates": "EXTa,EXTb"})
    expression = {"Fn::Split": [",", {"Fn::Sub": ["p/${Ids}", {"Ids": {"Fn::Join": [",p/", {
        "Fn::Split": [",", {"Ref": "AllowedFisTemplates"}]}]}}]}]}

    assert template.resolve(expression) == ["p/EXTa", "p/EXTb"]
    assert template.condition("HasFisTemplates") is True
    assert load().condition("HasFisTemplates") is False
    assert load().condition("HasWebhookSecrets") is False
