"""Tampering with evidence in the bucket and the drill table, as an insider could without the signing key: every
case is caught by `livefire verify <drill>` or `livefire verify --chain <service>`, named in one line, exit 1.

Three drills of payments are published (d1 ← d2 ← d3); each test changes what an insider with write access to the
bucket and the table (but not kms:Sign) could change, then runs the command a user would run.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from livefire.evidence.manifest import manifest_bytes, manifest_digest, sha256_hex
from livefire_local.cli import main
from tests.component.evidence_stack import REGION, EvidenceStack, evidence_stack
from tests.evidence_data import T0, prefix

__all__ = ["evidence_stack"]  # the fixture, imported for pytest
CHUNK = "samples/local/drill-0000.jsonl.gz"


@dataclass
class Insider:
    """Writes straight to the bucket and the table: no signing key, no Evidence step."""

    stack: EvidenceStack

    def get(self, drill: str, name: str) -> bytes:
        body: bytes = self.stack.s3.get_object(Bucket=self.stack.bucket, Key=f"{prefix(drill)}{name}")["Body"].read()
        return body

    def put(self, drill: str, name: str, body: bytes) -> None:
        self.stack.s3.put_object(Bucket=self.stack.bucket, Key=f"{prefix(drill)}{name}", Body=body)

    def delete(self, drill: str, name: str) -> None:
        self.stack.s3.delete_object(Bucket=self.stack.bucket, Key=f"{prefix(drill)}{name}")

    def flip(self, drill: str, name: str) -> None:
        data = bytearray(self.get(drill, name))
        data[len(data) // 2] ^= 0x01
        self.put(drill, name, bytes(data))

    def rewrite_manifest(self, drill: str, change: Callable[[dict[str, Any]], None]) -> str:
        """A consistent manifest (canonical, every digest right), re-pointed to by the drill's record."""
        manifest = json.loads(self.get(drill, "manifest.json"))
        change(manifest)
        raw = manifest_bytes(manifest)
        self.put(drill, "manifest.json", raw)
        self.set_record(drill, manifestDigest=manifest_digest(raw))
        return manifest_digest(raw)

    def relist(self, manifest: dict[str, Any], name: str, body: bytes) -> None:
        entry = next(a for a in manifest["artifacts"] if a["name"] == name)
        entry.update(sha256=sha256_hex(body), size=len(body))

    def set_record(self, drill: str, **attributes: Any) -> None:
        self.item(f"DRILL#{drill}", "DRILL", **attributes)

    def item(self, pk: str, sk: str, **attributes: Any) -> None:
        table = boto3.resource("dynamodb", region_name=REGION).Table(self.stack.table)
        names = {f"#{k}": k for k in attributes}
        table.update_item(Key={"pk": pk, "sk": sk}, UpdateExpression="SET " + ", ".join(f"#{k} = :{k}"
                                                                                         for k in attributes),
                          ExpressionAttributeNames=names,
                          ExpressionAttributeValues={f":{k}": v for k, v in attributes.items()})


@pytest.fixture
def drills(evidence_stack: EvidenceStack, unique_id: str) -> list[str]:
    published = [f"{unique_id}-{n}" for n in (1, 2, 3)]
    for minute, drill_id in enumerate(published):
        evidence_stack.publish(drill_id, t0=T0 + minute * 60_000)
    return published


@pytest.fixture
def insider(evidence_stack: EvidenceStack) -> Insider:
    return Insider(evidence_stack)


def verify(stack: EvidenceStack, capsys: pytest.CaptureFixture[str], *target: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["verify", *target, "--bucket", stack.bucket, "--table", stack.table, "--region", REGION,
                 "--key-id", stack.runtime.settings.signing_key_id])
    return code, capsys.readouterr().out


def first_line(out: str) -> str:
    return out.splitlines()[0]


def test_untouched_evidence_verifies_drill_by_drill_and_as_a_chain(
    evidence_stack: EvidenceStack, drills: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify(evidence_stack, capsys, drills[2])[0] == 0
    code, out = verify(evidence_stack, capsys, "--chain", "payments")

    assert code == 0, out
    assert f"chain: 3 drills checked ({drills[2]} ← {drills[1]} ← {drills[0]}), back to the first drill" in out


def test_a_flipped_byte_is_named(evidence_stack: EvidenceStack, drills: list[str], insider: Insider,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    insider.flip(drills[2], CHUNK)

    code, out = verify(evidence_stack, capsys, drills[2])

    assert (code, first_line(out)) == (1, f"TAMPERED: {CHUNK}: content changed (SHA-256 differs from the manifest)")


def test_a_deleted_artifact_is_named(evidence_stack: EvidenceStack, drills: list[str], insider: Insider,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    insider.delete(drills[2], "report.md")

    code, out = verify(evidence_stack, capsys, drills[2])

    assert (code, first_line(out)) == (1, "TAMPERED: report.md: missing")


def test_an_extra_file_is_named(evidence_stack: EvidenceStack, drills: list[str], insider: Insider,
                                capsys: pytest.CaptureFixture[str]) -> None:
    insider.put(drills[2], "samples/local/drill-0001.jsonl.gz", gzip.compress(b"{}\n"))

    code, out = verify(evidence_stack, capsys, drills[2])

    assert (code, first_line(out)) == (
        1, "TAMPERED: samples/local/drill-0001.jsonl.gz: present but not listed in the manifest")


def test_a_consistent_forgery_of_the_assessment_and_the_manifest_fails_its_signature(
    evidence_stack: EvidenceStack, drills: list[str], insider: Insider, capsys: pytest.CaptureFixture[str]
) -> None:
    drill = drills[2]
    original = manifest_digest(insider.get(drill, "manifest.json"))
    assessment = json.loads(insider.get(drill, "assessment.json"))
    assessment["verdict"] = "FAIL"
    forged = json.dumps(assessment).encode()
    insider.put(drill, "assessment.json", forged)

    def forge(manifest: dict[str, Any]) -> None:
        manifest["verdict"] = "FAIL"
        insider.relist(manifest, "assessment.json", forged)

    digest = insider.rewrite_manifest(drill, forge)

    code, out = verify(evidence_stack, capsys, drill)

    assert (code, first_line(out)) == (
        1, f"TAMPERED: signature.json: signs manifest digest {original}, not this manifest ({digest})")


def test_a_sample_chunk_deleted_with_its_manifest_entry_is_named(
    evidence_stack: EvidenceStack, drills: list[str], insider: Insider, capsys: pytest.CaptureFixture[str]
) -> None:
    drill = drills[2]
    insider.delete(drill, CHUNK)

    def drop(manifest: dict[str, Any]) -> None:
        manifest["artifacts"] = [a for a in manifest["artifacts"] if a["name"] != CHUNK]
        manifest["required"] = [name for name in manifest["required"] if name != CHUNK]

    insider.rewrite_manifest(drill, drop)

    code, out = verify(evidence_stack, capsys, drill)

    assert (code, first_line(out)) == (
        1, f"TAMPERED: {CHUNK}: counted by assessment.json but not listed as required in the manifest")


def test_another_drills_evidence_swapped_in_is_named(
    evidence_stack: EvidenceStack, drills: list[str], insider: Insider, capsys: pytest.CaptureFixture[str]
) -> None:
    older, drill = drills[0], drills[2]
    listed = evidence_stack.s3.list_objects_v2(Bucket=evidence_stack.bucket, Prefix=prefix(older))["Contents"]
    for obj in listed:
        name = obj["Key"].removeprefix(prefix(older))
        insider.put(drill, name, insider.get(older, name))
    expected = evidence_stack.store.get_drill(drill)
    assert expected is not None

    code, out = verify(evidence_stack, capsys, drill)

    assert code == 1
    assert first_line(out) == (f"TAMPERED: manifest.json: digest {manifest_digest(insider.get(older, 'manifest.json'))}"
                               f" is not the expected {expected.manifest_digest}")


def test_the_newest_drill_rewritten_with_its_record_and_the_chain_head_fails_its_signature(
    evidence_stack: EvidenceStack, drills: list[str], insider: Insider, capsys: pytest.CaptureFixture[str]
) -> None:
    drill = drills[2]
    original = manifest_digest(insider.get(drill, "manifest.json"))
    digest = insider.rewrite_manifest(drill, lambda manifest: manifest.update(verdict="ERROR"))
    insider.set_record(drill, verdict="ERROR")
    insider.item("CHAIN#payments", "HEAD", digest=digest)

    code, out = verify(evidence_stack, capsys, drill)
    chain_code, chain_out = verify(evidence_stack, capsys, "--chain", "payments")

    assert (code, first_line(out)) == (
        1, f"TAMPERED: signature.json: signs manifest digest {original}, not this manifest ({digest})")
    assert (chain_code, first_line(chain_out)) == (
        1, f"TAMPERED: {drill}/signature.json: signs manifest digest {original}, not this manifest ({digest})")
    assert "manifest.json: written 2 times in the bucket" in out  # and the locked first version is still there


def test_a_middle_drill_rewritten_with_its_record_fails_its_signature_and_the_next_link(
    evidence_stack: EvidenceStack, drills: list[str], insider: Insider, capsys: pytest.CaptureFixture[str]
) -> None:
    middle, newest = drills[1], drills[2]
    original = manifest_digest(insider.get(middle, "manifest.json"))
    digest = insider.rewrite_manifest(middle, lambda manifest: manifest.update(verdict="ERROR"))
    insider.set_record(middle, verdict="ERROR")

    code, out = verify(evidence_stack, capsys, middle)
    next_code, next_out = verify(evidence_stack, capsys, newest)

    assert (code, first_line(out)) == (
        1, f"TAMPERED: signature.json: signs manifest digest {original}, not this manifest ({digest})")
    assert (next_code, first_line(next_out)) == (
        1, f"TAMPERED: chain link {newest} → {middle}: {middle}/manifest.json: digest {digest} is not the expected "
           f"{original}")


def test_an_artifact_of_an_earlier_drill_flipped_is_named_by_the_chain_check(
    evidence_stack: EvidenceStack, drills: list[str], insider: Insider, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = drills[0], drills[1]
    insider.flip(first, CHUNK)

    code, out = verify(evidence_stack, capsys, "--chain", "payments")

    assert (code, first_line(out)) == (
        1, f"TAMPERED: chain link {second} → {first}: {first}/{CHUNK}: content changed (SHA-256 differs from the "
           "manifest)")


def test_a_chain_head_moved_back_to_hide_the_newest_drill_is_a_fork(
    evidence_stack: EvidenceStack, drills: list[str], insider: Insider, capsys: pytest.CaptureFixture[str]
) -> None:
    record = evidence_stack.store.get_drill(drills[1])
    assert record is not None and record.manifest_digest is not None
    insider.item("CHAIN#payments", "HEAD", digest=record.manifest_digest, drillId=drills[1], sequence=2)
    newest = evidence_stack.store.get_drill(drills[2])
    assert newest is not None

    code, out = verify(evidence_stack, capsys, "--chain", "payments")

    assert (code, first_line(out)) == (
        1, f"TAMPERED: fork: drill {drills[2]} (sequence 3, manifest {newest.manifest_digest}) is not on the chain "
           "of payments")
