"""`livefire verify <drill-id>`, `livefire history` and `livefire report` against the bucket and table (moto)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from livefire.evidence.manifest import manifest_bytes, manifest_digest
from livefire_local.cli import main
from tests.component.evidence_stack import REGION, EvidenceStack, evidence_stack
from tests.evidence_data import T0, prefix

__all__ = ["evidence_stack"]  # the fixture, imported for pytest


def stack_args(stack: EvidenceStack) -> list[str]:
    return ["--bucket", stack.bucket, "--table", stack.table, "--region", REGION, "--key-id",
            stack.runtime.settings.signing_key_id]


def three_drills(stack: EvidenceStack, unique_id: str) -> list[str]:
    drills = [f"{unique_id}-{n}" for n in (1, 2, 3)]
    for minute, drill_id in enumerate(drills):
        stack.publish(drill_id, t0=T0 + minute * 60_000)
    return drills


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()  # what publishing printed (EMF metrics) is not the command's output
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_verify_of_a_drill_id_checks_its_evidence_and_the_chain_back_to_the_first_drill(
    evidence_stack: EvidenceStack, unique_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, third = three_drills(evidence_stack, unique_id)

    code, out, _ = run(["verify", third, *stack_args(evidence_stack)], capsys)

    assert code == 0, out
    assert f"intact: drill {third} in s3://{evidence_stack.bucket}" in out
    assert f"chain: 3 drills checked ({third} ← {second} ← {first}), back to the first drill of payments" in out


def test_verify_of_a_drill_id_names_a_changed_artifact(
    evidence_stack: EvidenceStack, unique_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    drill = three_drills(evidence_stack, unique_id)[2]
    evidence_stack.s3.put_object(Bucket=evidence_stack.bucket, Key=f"{prefix(drill)}report.md",
                                 Body=b"# Drill payments-ap: FAIL\n")

    code, out, _ = run(["verify", drill, *stack_args(evidence_stack)], capsys)

    assert code == 1
    assert out.startswith("TAMPERED: report.md: size changed")


def test_verify_of_a_drill_id_names_the_link_whose_manifest_was_removed(
    evidence_stack: EvidenceStack, unique_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, second, third = three_drills(evidence_stack, unique_id)
    evidence_stack.s3.delete_object(Bucket=evidence_stack.bucket, Key=f"{prefix(second)}manifest.json")

    code, out, _ = run(["verify", third, *stack_args(evidence_stack)], capsys)

    assert code == 1
    assert out.startswith(f"TAMPERED: chain link {third} → {second}: {second}/manifest.json: missing")


def test_verify_catches_a_manifest_rewritten_together_with_its_drill_record(
    evidence_stack: EvidenceStack, unique_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, second, third = three_drills(evidence_stack, unique_id)
    key = f"{prefix(second)}manifest.json"
    manifest = json.loads(evidence_stack.s3.get_object(Bucket=evidence_stack.bucket, Key=key)["Body"].read())
    manifest["verdict"] = "INCONCLUSIVE"
    forged = manifest_bytes(manifest)
    evidence_stack.s3.put_object(Bucket=evidence_stack.bucket, Key=key, Body=forged)
    table = boto3.resource("dynamodb", region_name=REGION).Table(evidence_stack.table)
    table.update_item(Key={"pk": f"DRILL#{second}", "sk": "DRILL"}, UpdateExpression="SET manifestDigest = :d",
                      ExpressionAttributeValues={":d": manifest_digest(forged)})

    code, out, _ = run(["verify", third, *stack_args(evidence_stack)], capsys)

    assert code == 1
    assert out.startswith(f"TAMPERED: chain link {third} → {second}: {second}/manifest.json: digest "
                          f"{manifest_digest(forged)} is not the expected ")


def test_verify_names_manifest_metadata_that_disagrees_with_the_drill_record(
    evidence_stack: EvidenceStack, unique_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    drill = three_drills(evidence_stack, unique_id)[0]
    key = f"{prefix(drill)}manifest.json"
    raw = evidence_stack.s3.get_object(Bucket=evidence_stack.bucket, Key=key)["Body"].read()
    evidence_stack.s3.put_object(Bucket=evidence_stack.bucket, Key=key, Body=raw,
                                 Metadata={"manifest-sha256": "0" * 64})

    code, out, _ = run(["verify", drill, *stack_args(evidence_stack)], capsys)

    assert code == 1
    assert out.startswith(f"TAMPERED: manifest.json: S3 metadata manifest-sha256 {'0' * 64} differs")


def test_an_unknown_drill_a_missing_stack_or_unpublished_evidence_is_an_error_not_a_verdict(
    evidence_stack: EvidenceStack, unique_id: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(["verify", unique_id, *stack_args(evidence_stack)], capsys)
    assert (code, err.strip()) == (2, f"error: no drill {unique_id} in the drill table")

    code, _, err = run(["verify", unique_id], capsys)
    assert code == 2
    assert "--bucket (or EVIDENCE_BUCKET) and --table (or DRILL_TABLE)" in err

    evidence_stack.stage(unique_id)  # started, not yet published
    code, _, err = run(["report", unique_id, "--out", str(tmp_path / "r"), *stack_args(evidence_stack)], capsys)
    assert (code, err.strip()) == (2, f"error: drill {unique_id} has no published evidence (status RUNNING)")


def test_history_lists_a_services_drills_newest_first_with_verdict_and_rto(
    evidence_stack: EvidenceStack, unique_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, third = three_drills(evidence_stack, unique_id)
    evidence_stack.store.record_rejected_attempt(f"{unique_id}-bad", "arn:x", "invalid spec")

    code, out, _ = run(["history", "--service", "payments", "--table", evidence_stack.table, "--region", REGION],
                       capsys)

    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["started", "pattern", "verdict", "RTO", "drill"]
    assert [line.split()[-1] for line in lines[1:]] == [third, second, first]
    assert lines[1].split()[:4] == ["2023-11-14T22:15:20Z", "active-passive", "PASS", "0.800s"]


def test_history_respects_the_limit_and_reads_the_table_from_the_environment(
    evidence_stack: EvidenceStack, unique_id: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    third = three_drills(evidence_stack, unique_id)[2]
    monkeypatch.setenv("DRILL_TABLE", evidence_stack.table)

    code, out, _ = run(["history", "--service", "payments", "--limit", "1"], capsys)

    assert code == 0
    assert [line.split()[-1] for line in out.splitlines()[1:]] == [third]
    assert run(["history", "--service", "orders"], capsys)[1] == "no drills of orders\n"


def test_report_downloads_the_evidence_to_a_folder_and_verifies_it(
    evidence_stack: EvidenceStack, unique_id: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    drill = three_drills(evidence_stack, unique_id)[1]
    out_dir = tmp_path / "fetched"

    code, out, _ = run(["report", drill, "--out", str(out_dir), *stack_args(evidence_stack)], capsys)

    assert code == 0, out
    assert (out_dir / "report.html").is_file() and (out_dir / "manifest.json").is_file()
    assert f"report: {out_dir / 'report.html'}" in out
    assert f"intact: {out_dir}" in out
    code, _, err = run(["report", drill, "--out", str(out_dir), *stack_args(evidence_stack)], capsys)
    assert code == 2 and "already holds files" in err
