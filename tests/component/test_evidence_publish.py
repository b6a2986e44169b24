"""The Evidence step under moto: both reports in the manifest, the chain (also under a race and a retry), the
drill record, the completion event on the default bus and the EMF metrics on stdout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from livefire.errors import EvidenceError
from livefire.evidence.manifest import manifest_digest, verify_evidence_dir
from livefire.evidence.publish import publish_evidence
from livefire.records import ManifestSeal
from livefire.store import ChainHead, DrillStore
from livefire_local.evidence_sources import download_evidence
from tests.component.evidence_stack import REGION, EvidenceStack, evidence_stack
from tests.evidence_data import prefix
from tests.keys import local_key, local_verifier

__all__ = ["evidence_stack"]  # the fixture, imported for pytest


def manifest_of(stack: EvidenceStack, drill_id: str) -> tuple[bytes, dict[str, str]]:
    response = stack.s3.get_object(Bucket=stack.bucket, Key=f"{prefix(drill_id)}manifest.json")
    return response["Body"].read(), response["Metadata"]


def emf_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]


def test_the_evidence_holds_both_reports_and_verifies_against_the_digest_in_the_record(
    evidence_stack: EvidenceStack, unique_id: str, tmp_path: Path
) -> None:
    request = evidence_stack.stage(unique_id)

    result = publish_evidence(request, evidence_stack.runtime)

    raw, metadata = manifest_of(evidence_stack, unique_id)
    manifest = json.loads(raw)
    names = [a["name"] for a in manifest["artifacts"]]
    assert {"report.html", "report.md", "faults/records.json", "posture.json", "assessment.json"} <= set(names)
    assert "samples/local/drill-0000.jsonl.gz" in manifest["required"]
    assert manifest["signing_key"]["public_key_sha256"] == local_key().key.public_key_sha256
    assert metadata == {"manifest-sha256": manifest_digest(raw)}
    record = evidence_stack.store.get_drill(unique_id)
    assert record is not None
    assert record.seal == ManifestSeal(manifest_digest=manifest_digest(raw), manifest_key=f"{prefix(unique_id)}"
                                       "manifest.json", sequence=1, previous_manifest_digest=None,
                                       previous_drill_id=None, manifest_created_at=manifest["created_at"])
    assert result.manifest_digest == manifest_digest(raw)
    assert (record.verdict, record.report_key) == ("PASS", f"{prefix(unique_id)}report.html")
    download_evidence(evidence_stack.s3, evidence_stack.bucket, prefix(unique_id), tmp_path / unique_id)
    assert verify_evidence_dir(tmp_path / unique_id, verifier=local_verifier(),
                               expected_manifest_digest=result.manifest_digest).ok
    html = (tmp_path / unique_id / "report.html").read_text()
    assert "<title>Drill payments-ap: PASS</title>" in html and "<svg" in html
    assert f"public key sha256 {local_key().key.public_key_sha256}" in html
    assert "sequence 1, the first drill of payments" in html


def test_an_unreachable_mesh_leaves_the_posture_audit_skipped_with_its_reason(
    evidence_stack: EvidenceStack, unique_id: str
) -> None:
    evidence_stack.publish(unique_id)

    posture = evidence_stack.runtime.get_json(f"{prefix(unique_id)}posture.json")

    assert [(p["region"], p["findings"]) for p in posture] == [("east", []), ("west", [])]
    assert all(p["skipped"].startswith("MeshAccessError: LIVEFIRE_SANDBOX_CLUSTERS is not set") for p in posture)


def test_drills_of_one_service_are_chained_in_the_order_they_finished(
    evidence_stack: EvidenceStack, unique_id: str
) -> None:
    first, second = f"{unique_id}-a", f"{unique_id}-b"

    first_digest = evidence_stack.publish(first)
    second_digest = evidence_stack.publish(second)

    first_manifest = json.loads(manifest_of(evidence_stack, first)[0])
    second_manifest = json.loads(manifest_of(evidence_stack, second)[0])
    assert (first_manifest["sequence"], first_manifest["previous_manifest_digest"],
            first_manifest["previous_drill_id"]) == (1, None, None)
    assert (second_manifest["sequence"], second_manifest["previous_manifest_digest"],
            second_manifest["previous_drill_id"]) == (2, first_digest, first)
    assert evidence_stack.store.chain_head("payments") == ChainHead(digest=second_digest, drill_id=second,
                                                                    sequence=2)
    report = evidence_stack.s3.get_object(Bucket=evidence_stack.bucket, Key=f"{prefix(second)}report.md")
    assert f"sequence 2, after drill {first} (manifest sha256 {first_digest})" in report["Body"].read().decode()


class RacingStore(DrillStore):
    """A store in which another drill finishes between our read of the chain head and our move of it."""

    def __init__(self, table: Any, rival: str) -> None:
        super().__init__(table)
        self.rival = rival
        self.raced = False

    def chain_head(self, service: str) -> ChainHead | None:
        head = super().chain_head(service)
        if not self.raced:
            self.raced = True
            self._table.put_item(Item={"pk": f"DRILL#{self.rival}", "sk": "DRILL"})
            seal = ManifestSeal(manifest_digest="ee" * 32, manifest_key=f"drills/{service}/{self.rival}/manifest.json",
                                sequence=1, previous_manifest_digest=None, previous_drill_id=None,
                                manifest_created_at="2024-01-01T00:00:00.000+00:00")
            assert super().advance_chain(service, head, self.rival, seal)
        return head


def test_a_drill_that_loses_the_race_for_the_chain_head_links_onto_the_winner(
    evidence_stack: EvidenceStack, unique_id: str
) -> None:
    request = evidence_stack.stage(unique_id)
    racing = RacingStore(boto3.resource("dynamodb", region_name=REGION).Table(evidence_stack.table), "rival")
    evidence_stack.runtime.__dict__["store"] = racing  # the Runtime's cached store, for this test only

    result = publish_evidence(request, evidence_stack.runtime)

    manifest = json.loads(manifest_of(evidence_stack, unique_id)[0])
    assert racing.raced
    assert (manifest["sequence"], manifest["previous_manifest_digest"], manifest["previous_drill_id"]) == (
        2, "ee" * 32, "rival")
    assert racing.chain_head("payments") == ChainHead(digest=result.manifest_digest, drill_id=unique_id, sequence=2)
    report = evidence_stack.s3.get_object(Bucket=evidence_stack.bucket, Key=f"{prefix(unique_id)}report.md")
    assert "sequence 2, after drill rival" in report["Body"].read().decode()  # re-rendered for the new link


def test_a_retried_evidence_step_keeps_the_linked_manifest_and_never_links_the_drill_to_itself(
    evidence_stack: EvidenceStack, unique_id: str
) -> None:
    request = evidence_stack.stage(unique_id)
    first = publish_evidence(request, evidence_stack.runtime)
    raw_before, _ = manifest_of(evidence_stack, unique_id)

    again = publish_evidence(request, evidence_stack.runtime)

    raw_after, _ = manifest_of(evidence_stack, unique_id)
    assert again.manifest_digest == first.manifest_digest
    assert raw_after == raw_before
    assert json.loads(raw_after)["previous_drill_id"] is None
    assert evidence_stack.store.chain_head("payments") == ChainHead(digest=first.manifest_digest, drill_id=unique_id,
                                                                    sequence=1)


def test_the_drill_completed_event_reaches_the_default_bus(evidence_stack: EvidenceStack, unique_id: str) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    events = boto3.client("events", region_name=REGION)
    queue_url = sqs.create_queue(QueueName=f"completed-{unique_id}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=f"completed-{unique_id}", EventBusName="default",
                    EventPattern=json.dumps({"source": ["livefire"], "detail-type": ["Drill Completed"]}))
    events.put_targets(Rule=f"completed-{unique_id}", EventBusName="default",
                       Targets=[{"Id": "queue", "Arn": queue_arn}])

    digest = evidence_stack.publish(unique_id)

    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]
    assert len(messages) == 1
    event = json.loads(messages[0]["Body"])
    assert (event["source"], event["detail-type"]) == ("livefire", "Drill Completed")
    detail = event["detail"]
    assert (detail["drillId"], detail["service"], detail["pattern"], detail["verdict"]) == (
        unique_id, "payments", "active-passive", "PASS")
    assert detail["rtoSeconds"] == pytest.approx(0.8)
    assert detail["report"] == f"s3://{evidence_stack.bucket}/{prefix(unique_id)}report.html"
    assert detail["manifestDigest"] == digest


def test_metrics_are_printed_as_emf_per_service_and_pattern_with_a_count_per_verdict(
    evidence_stack: EvidenceStack, unique_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()

    evidence_stack.publish(unique_id)

    blobs = emf_lines(capsys.readouterr().out)
    assert len(blobs) == 2
    measures, counts = blobs
    assert measures["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Livefire"
    assert sorted(measures["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) == ["pattern", "service"]
    assert (measures["service"], measures["pattern"]) == ("payments", "active-passive")
    assert measures["RTO"] == [pytest.approx(0.8)]
    assert measures["Availability"] == [pytest.approx(100.0 * (40 - 7 + 40) / 80)]
    assert sorted(counts["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) == ["pattern", "service", "verdict"]
    assert (counts["verdict"], counts["Drills"]) == ("PASS", [1.0])


def test_a_drill_that_was_not_steady_is_published_with_a_report_and_only_the_verdict_count(
    evidence_stack: EvidenceStack, unique_id: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    capsys.readouterr()

    digest = evidence_stack.publish(unique_id, assessed=False)

    blobs = emf_lines(capsys.readouterr().out)
    assert [(b["verdict"], b["Drills"]) for b in blobs] == [("NOT_STEADY", [1.0])]
    record = evidence_stack.store.get_drill(unique_id)
    assert record is not None and (record.verdict, record.manifest_digest) == ("NOT_STEADY", digest)
    assert record.rto_seconds is None
    download_evidence(evidence_stack.s3, evidence_stack.bucket, prefix(unique_id), tmp_path)
    assert verify_evidence_dir(tmp_path, verifier=local_verifier(), expected_manifest_digest=digest).ok
    assert "No assessment: the drill ended with outcome NOT_STEADY" in (tmp_path / "report.html").read_text()


def test_publishing_releases_the_drills_lease(evidence_stack: EvidenceStack, unique_id: str) -> None:
    request = evidence_stack.stage(unique_id)
    lease = request.plan.faults[0].lease_key
    assert evidence_stack.store.lease_holder(lease) == unique_id

    publish_evidence(request, evidence_stack.runtime)

    assert evidence_stack.store.lease_holder(lease) is None


def test_the_drill_is_priced_from_its_execution_history_in_both_reports_and_listed(
    evidence_stack: EvidenceStack, unique_id: str
) -> None:
    staged = evidence_stack.stage(unique_id)
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"m-{unique_id}", roleArn="arn:aws:iam::123456789012:role/livefire-test",
        definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}),
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, name=unique_id)["executionArn"]
    request = staged.model_copy(update={"plan": staged.plan.model_copy(update={"execution_arn": execution})})

    publish_evidence(request, evidence_stack.runtime)

    cost = json.loads(evidence_stack.s3.get_object(Bucket=evidence_stack.bucket,
                                                   Key=f"{prefix(unique_id)}cost.json")["Body"].read())
    html = evidence_stack.s3.get_object(Bucket=evidence_stack.bucket, Key=f"{prefix(unique_id)}report.html")
    markdown = evidence_stack.s3.get_object(Bucket=evidence_stack.bucket, Key=f"{prefix(unique_id)}report.md")
    total = f"Total: ${cost['total_usd']:.6f}"
    assert cost["total_usd"] > 0
    assert total in html["Body"].read().decode()
    assert total in markdown["Body"].read().decode()
    assert "cost.json" in [a["name"] for a in json.loads(manifest_of(evidence_stack, unique_id)[0])["artifacts"]]


def test_an_unreadable_execution_history_leaves_the_cost_out_not_the_evidence(
    evidence_stack: EvidenceStack, unique_id: str
) -> None:
    request = evidence_stack.stage(unique_id)  # its execution does not exist in this account

    publish_evidence(request, evidence_stack.runtime)

    listed = [a["name"] for a in json.loads(manifest_of(evidence_stack, unique_id)[0])["artifacts"]]
    assert "cost.json" not in listed and "report.html" in listed


def test_a_step_that_died_after_sealing_writes_the_sealed_manifest_and_its_signature_when_retried(
    evidence_stack: EvidenceStack, unique_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = evidence_stack.stage(unique_id)

    def die(*_args: Any) -> None:
        raise TimeoutError("the Lambda ran out of time")

    with monkeypatch.context() as patch:
        patch.setattr("livefire.evidence.publish.write_seal", die)
        with pytest.raises(TimeoutError):
            publish_evidence(request, evidence_stack.runtime)
    record = evidence_stack.store.get_drill(unique_id)
    assert record is not None and record.seal is not None  # sealed into the chain, nothing written yet

    result = publish_evidence(request, evidence_stack.runtime)

    raw, _ = manifest_of(evidence_stack, unique_id)
    assert manifest_digest(raw) == result.manifest_digest == record.seal.manifest_digest
    download_evidence(evidence_stack.s3, evidence_stack.bucket, prefix(unique_id), tmp_path)
    assert verify_evidence_dir(tmp_path, verifier=local_verifier(), expected_manifest_digest=result.manifest_digest).ok


def test_evidence_changed_between_the_seal_and_the_manifest_is_refused_not_sealed_again(
    evidence_stack: EvidenceStack, unique_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = evidence_stack.stage(unique_id)
    with monkeypatch.context() as patch:
        patch.setattr("livefire.evidence.publish.write_seal", lambda *_args: None)
        publish_evidence(request, evidence_stack.runtime)
    evidence_stack.s3.put_object(Bucket=evidence_stack.bucket, Key=f"{prefix(unique_id)}report.md", Body=b"forged")

    with pytest.raises(EvidenceError, match="changed after it was sealed"):
        publish_evidence(request, evidence_stack.runtime)

    listed = evidence_stack.s3.list_objects_v2(Bucket=evidence_stack.bucket, Prefix=f"{prefix(unique_id)}manifest")
    assert listed["KeyCount"] == 0


def test_a_manifest_is_written_once_a_second_write_is_refused_by_the_bucket(
    evidence_stack: EvidenceStack, unique_id: str
) -> None:
    evidence_stack.publish(unique_id)

    with pytest.raises(ClientError, match="PreconditionFailed"):
        evidence_stack.s3.put_object(Bucket=evidence_stack.bucket, Key=f"{prefix(unique_id)}manifest.json",
                                     Body=b"{}", IfNoneMatch="*")
