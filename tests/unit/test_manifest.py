"""The evidence manifest: digests of every artifact, canonical bytes, completeness, signature, verification."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from livefire.evidence.manifest import (
    ChainLink,
    build_manifest,
    manifest_bytes,
    manifest_digest,
    sha256_hex,
    verify_evidence_dir,
)
from livefire.evidence.signature import SIGNATURE_NAME
from livefire_local.signing import LocalSigningKey, PublicKeyVerifier
from tests.keys import local_key, local_verifier, seal_folder

CHUNK = "samples/local/drill-0000.jsonl.gz"
ARTIFACTS = {
    "spec.json": b'{"kind": "Drill"}\n',
    "plan.json": b'{"drillId": "d-1"}\n',
    "assessment.json": json.dumps({"verdict": "PASS", "sample_keys": [f"drills/payments/d-1/{CHUNK}"]}).encode(),
    "report.md": b"# Drill d-1: PASS\n",
    CHUNK: bytes(range(256)) * 4,
    "faults/f-1-before.json": b"{}",
}
REQUIRED = ["spec.json", "plan.json", "assessment.json", "report.md", CHUNK, "faults/f-1-before.json"]
PREVIOUS = "ab" * 32


def make_manifest(artifacts: dict[str, bytes] | None = None, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "drill_id": "d-1",
        "service": "payments",
        "pattern": "active-passive",
        "verdict": "PASS",
        "spec_digest": "cd" * 32,
        "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:drill:d-1",
        "link": ChainLink(sequence=2, previous_manifest_digest=PREVIOUS, previous_drill_id="d-0"),
        "signing_key": local_key().key,
        "required": REQUIRED,
        "created_at": "2024-05-01T12:00:00Z",
    } | overrides
    return build_manifest(ARTIFACTS if artifacts is None else artifacts, **fields)


def write_evidence(root: Path, artifacts: dict[str, bytes] | None = None, **overrides: Any) -> bytes:
    artifacts = ARTIFACTS if artifacts is None else artifacts
    for name, data in artifacts.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    seal_folder(root, make_manifest(artifacts, **overrides))
    return (root / "manifest.json").read_bytes()


def rewrite(root: Path, change: Any, *, sign: bool = False) -> dict[str, Any]:
    """Edit the manifest in place (canonically), re-signing it only when the forger has the key."""
    manifest = json.loads((root / "manifest.json").read_bytes())
    change(manifest)
    if sign:
        seal_folder(root, manifest)
    else:
        (root / "manifest.json").write_bytes(manifest_bytes(manifest))
    return manifest


def verify(root: Path, **kwargs: Any) -> Any:
    return verify_evidence_dir(root, verifier=local_verifier(), **kwargs)


def test_sha256_hex_is_the_standard_digest() -> None:
    assert sha256_hex(b"abc") == hashlib.sha256(b"abc").hexdigest()


def test_the_manifest_lists_every_artifact_sorted_with_digest_and_size() -> None:
    manifest = make_manifest()

    assert [a["name"] for a in manifest["artifacts"]] == sorted(ARTIFACTS)
    sample = next(a for a in manifest["artifacts"] if a["name"] == "samples/local/drill-0000.jsonl.gz")
    assert sample == {
        "name": "samples/local/drill-0000.jsonl.gz",
        "sha256": hashlib.sha256(bytes(range(256)) * 4).hexdigest(),
        "size": 1024,
    }
    assert manifest["previous_manifest_digest"] == PREVIOUS
    assert manifest["execution_arn"].endswith(":d-1")


def test_manifest_bytes_are_canonical_whatever_the_key_order() -> None:
    manifest = make_manifest()
    shuffled = dict(reversed(list(manifest.items())))

    raw = manifest_bytes(shuffled)

    assert raw == manifest_bytes(manifest)
    assert raw.endswith(b"}\n")
    assert raw.startswith(b'{\n  "artifacts": [\n')
    assert manifest_digest(raw) == hashlib.sha256(raw).hexdigest()


def test_the_first_manifest_of_a_service_has_sequence_one_and_no_previous_digest() -> None:
    manifest = make_manifest(link=ChainLink(sequence=1))

    assert (manifest["sequence"], manifest["previous_manifest_digest"], manifest["previous_drill_id"]) == (
        1, None, None)


def test_the_manifest_names_its_sequence_the_previous_drill_its_signing_key_and_what_it_requires() -> None:
    manifest = make_manifest()

    assert (manifest["sequence"], manifest["previous_manifest_digest"], manifest["previous_drill_id"]) == (
        2, PREVIOUS, "d-0")
    assert manifest["signing_key"] == local_key().key.model_dump()
    assert manifest["required"] == sorted(REQUIRED)


@pytest.mark.parametrize(
    ("digest", "drill"), [(PREVIOUS, None), (None, "d-0")], ids=["digest-without-drill", "drill-without-digest"]
)
def test_a_link_must_give_both_the_previous_digest_and_drill(digest: str | None, drill: str | None) -> None:
    with pytest.raises(ValueError, match="go together"):
        ChainLink(sequence=2, previous_manifest_digest=digest, previous_drill_id=drill)


def test_only_the_first_drill_of_a_service_has_no_previous_manifest() -> None:
    with pytest.raises(ValueError, match="sequence 1"):
        ChainLink(sequence=3)
    with pytest.raises(ValueError, match="sequence 1"):
        ChainLink(sequence=1, previous_manifest_digest=PREVIOUS, previous_drill_id="d-0")


@pytest.mark.parametrize("name", ["/etc/passwd", "../outside.json", "a/./b.json", "manifest.json", "signature.json",
                                  "a//b", ""])
def test_unsafe_artifact_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="artifact name"):
        make_manifest({name: b"x"})


def test_a_malformed_previous_digest_is_refused() -> None:
    with pytest.raises(ValueError, match="previous_manifest_digest"):
        ChainLink(sequence=2, previous_manifest_digest="not-a-digest", previous_drill_id="d-0")


def test_a_manifest_is_not_built_without_what_its_outcome_requires() -> None:
    with pytest.raises(ValueError, match=f"required artifacts are missing: {CHUNK}"):
        make_manifest({name: data for name, data in ARTIFACTS.items() if name != CHUNK})


def test_untouched_evidence_verifies(tmp_path: Path) -> None:
    raw = write_evidence(tmp_path)

    result = verify(tmp_path, expected_manifest_digest=manifest_digest(raw))

    assert result.ok, result.problems
    assert (result.problems, result.first_problem) == ([], None)
    assert result.manifest_digest == manifest_digest(raw)
    assert result.manifest is not None
    assert result.manifest["drill_id"] == "d-1"


@pytest.mark.parametrize("name", sorted(ARTIFACTS))
def test_one_flipped_byte_names_the_artifact(tmp_path: Path, name: str) -> None:
    write_evidence(tmp_path)
    path = tmp_path / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    result = verify(tmp_path)

    assert not result.ok
    assert result.first_problem == f"{name}: content changed (SHA-256 differs from the manifest)"


def test_a_resized_artifact_is_named_with_both_sizes(tmp_path: Path) -> None:
    write_evidence(tmp_path)
    (tmp_path / "report.md").write_bytes(b"# Drill d-1: PASS (edited)\n")

    result = verify(tmp_path)

    assert result.first_problem == "report.md: size changed (listed 18 bytes, found 27)"


@pytest.mark.parametrize("name", sorted(ARTIFACTS))
def test_a_deleted_artifact_is_named(tmp_path: Path, name: str) -> None:
    write_evidence(tmp_path)
    (tmp_path / name).unlink()

    result = verify(tmp_path)

    assert result.first_problem == f"{name}: missing"
    assert result.problems == [f"{name}: missing"]


def test_the_first_problem_follows_the_manifest_order(tmp_path: Path) -> None:
    write_evidence(tmp_path)
    (tmp_path / "spec.json").unlink()
    (tmp_path / "assessment.json").unlink()

    result = verify(tmp_path)

    assert result.problems == ["assessment.json: missing", "spec.json: missing"]
    assert result.first_problem == "assessment.json: missing"


def test_a_file_not_listed_in_the_manifest_is_a_problem(tmp_path: Path) -> None:
    write_evidence(tmp_path)
    (tmp_path / "samples" / "local" / "drill-0001.jsonl.gz").write_bytes(b"smuggled")

    result = verify(tmp_path)

    assert result.first_problem == "samples/local/drill-0001.jsonl.gz: present but not listed in the manifest"


def test_an_edited_digest_in_the_manifest_is_detected(tmp_path: Path) -> None:
    write_evidence(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_bytes())
    manifest["artifacts"][0]["sha256"] = "0" * 64
    (tmp_path / "manifest.json").write_bytes(manifest_bytes(manifest))

    result = verify(tmp_path)

    first = manifest["artifacts"][0]["name"]
    assert result.first_problem == f"{first}: content changed (SHA-256 differs from the manifest)"


def test_an_edited_verdict_in_the_manifest_contradicts_the_assessment(tmp_path: Path) -> None:
    write_evidence(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_bytes())
    manifest["verdict"] = "FAIL"
    (tmp_path / "manifest.json").write_bytes(manifest_bytes(manifest))

    result = verify(tmp_path)

    assert result.first_problem == "manifest.json: verdict FAIL differs from assessment.json (PASS)"


def test_an_unjudged_outcome_in_the_manifest_is_not_compared_with_the_assessment(tmp_path: Path) -> None:
    write_evidence(tmp_path, verdict="ERROR")

    result = verify(tmp_path)

    assert result.ok, result.problems


def test_a_self_consistent_manifest_edit_fails_its_signature_and_the_expected_digest(tmp_path: Path) -> None:
    raw = write_evidence(tmp_path)
    forged = rewrite(tmp_path, lambda m: m.update(created_at="2030-01-01T00:00:00Z"))
    digest = manifest_digest(manifest_bytes(forged))

    alone = verify(tmp_path)
    expected = verify(tmp_path, expected_manifest_digest=manifest_digest(raw))

    assert alone.first_problem == (f"signature.json: signs manifest digest {manifest_digest(raw)}, not this "
                                   f"manifest ({digest})")
    assert expected.first_problem == f"manifest.json: digest {digest} is not the expected {manifest_digest(raw)}"


def test_a_consistent_forgery_of_the_assessment_and_the_manifest_fails_the_signature(tmp_path: Path) -> None:
    write_evidence(tmp_path)
    forged = json.dumps({"verdict": "FAIL", "sample_keys": [f"drills/payments/d-1/{CHUNK}"]}).encode()
    (tmp_path / "assessment.json").write_bytes(forged)

    def forge(manifest: dict[str, Any]) -> None:
        manifest["verdict"] = "FAIL"
        entry = next(a for a in manifest["artifacts"] if a["name"] == "assessment.json")
        entry.update(sha256=sha256_hex(forged), size=len(forged))

    rewrite(tmp_path, forge)

    result = verify(tmp_path)

    assert len(result.problems) == 1
    assert result.first_problem is not None and result.first_problem.startswith("signature.json: signs manifest digest")


def test_a_manifest_re_signed_by_another_key_names_that_key(tmp_path: Path) -> None:
    write_evidence(tmp_path)
    insider = LocalSigningKey.load_or_create(tmp_path / "insider" / "key.pem")
    (tmp_path / "insider" / "key.pem").unlink()
    (tmp_path / "insider").rmdir()
    manifest = json.loads((tmp_path / "manifest.json").read_bytes())
    manifest["verdict"] = "ERROR"
    manifest["signing_key"] = insider.key.model_dump()
    seal_folder(tmp_path, manifest, insider)

    result = verify(tmp_path)

    assert result.first_problem == (f"signature.json: signed by key {insider.key.public_key_sha256}, not the "
                                    f"trusted key {local_key().key.public_key_sha256}")


def test_a_missing_or_unreadable_signature_is_named(tmp_path: Path) -> None:
    write_evidence(tmp_path)
    (tmp_path / SIGNATURE_NAME).write_bytes(b"{}")
    unreadable = verify(tmp_path).first_problem
    (tmp_path / SIGNATURE_NAME).unlink()

    assert verify(tmp_path).first_problem == "signature.json: missing (the manifest is not signed)"
    assert unreadable is not None and unreadable.startswith("signature.json: not a signature document")


def test_a_signature_that_does_not_verify_is_named(tmp_path: Path) -> None:
    write_evidence(tmp_path)
    document = json.loads((tmp_path / SIGNATURE_NAME).read_bytes())
    signature = bytearray(base64.b64decode(document["signature"]))
    signature[-1] ^= 0x01  # the last byte of s: always a change (a fixed prefix may equal the signature's own)
    document["signature"] = base64.b64encode(bytes(signature)).decode()
    (tmp_path / SIGNATURE_NAME).write_text(json.dumps(document))

    result = verify(tmp_path)

    assert result.first_problem == ("signature.json: the signature does not verify with the trusted key "
                                    f"{local_key().key.public_key_sha256}")


def test_a_chunk_deleted_with_its_manifest_entry_is_named_by_the_assessment_that_counted_it(tmp_path: Path) -> None:
    write_evidence(tmp_path)
    (tmp_path / CHUNK).unlink()

    def drop(manifest: dict[str, Any]) -> None:
        manifest["artifacts"] = [a for a in manifest["artifacts"] if a["name"] != CHUNK]
        manifest["required"] = [name for name in manifest["required"] if name != CHUNK]

    rewrite(tmp_path, drop, sign=True)  # even with the key, the evidence is incomplete

    result = verify(tmp_path)

    assert result.problems == [f"{CHUNK}: counted by assessment.json but not listed as required in the manifest"]


def test_a_required_artifact_dropped_from_the_listing_is_named(tmp_path: Path) -> None:
    write_evidence(tmp_path)
    (tmp_path / "report.md").unlink()
    rewrite(tmp_path, lambda m: m.update(artifacts=[a for a in m["artifacts"] if a["name"] != "report.md"]),
            sign=True)

    result = verify(tmp_path)

    assert result.problems == ["report.md: required for the drill's outcome but not listed in the manifest"]


def test_a_signature_checked_with_another_public_key_fails(tmp_path: Path) -> None:
    write_evidence(tmp_path)
    other = LocalSigningKey.load_or_create(tmp_path / "other.pem")
    (tmp_path / "other.pem").unlink()

    result = verify_evidence_dir(tmp_path, verifier=PublicKeyVerifier(other.public_pem))

    assert result.first_problem == (f"signature.json: signed by key {local_key().key.public_key_sha256}, not the "
                                    f"trusted key {other.key.public_key_sha256}")


def test_a_rewritten_manifest_is_not_canonical(tmp_path: Path) -> None:
    raw = write_evidence(tmp_path)
    (tmp_path / "manifest.json").write_bytes(json.dumps(json.loads(raw)).encode())

    result = verify(tmp_path)

    assert result.first_problem == "manifest.json: not in canonical form (it was rewritten)"


def test_a_manifest_that_is_not_json_is_named(tmp_path: Path) -> None:
    write_evidence(tmp_path)
    (tmp_path / "manifest.json").write_bytes(b"{not json")

    result = verify(tmp_path)

    assert not result.ok
    assert result.first_problem is not None
    assert result.first_problem.startswith("manifest.json: not valid JSON")


def test_a_manifest_missing_a_field_is_named(tmp_path: Path) -> None:
    raw = write_evidence(tmp_path)
    manifest = json.loads(raw)
    del manifest["spec_digest"]
    (tmp_path / "manifest.json").write_bytes(manifest_bytes(manifest))

    result = verify(tmp_path)

    assert result.problems == ["manifest.json: missing field spec_digest"]


def test_a_manifest_whose_link_lost_its_drill_id_is_named(tmp_path: Path) -> None:
    raw = write_evidence(tmp_path)
    manifest = json.loads(raw)
    manifest["previous_drill_id"] = None
    (tmp_path / "manifest.json").write_bytes(manifest_bytes(manifest))

    result = verify(tmp_path)

    assert result.problems == ["manifest.json: previous_manifest_digest and previous_drill_id go together"]


def test_a_manifest_entry_escaping_the_directory_is_refused_without_reading_it(tmp_path: Path) -> None:
    raw = write_evidence(tmp_path / "d-1")
    manifest = json.loads(raw)
    manifest["artifacts"].insert(0, {"name": "../secret", "sha256": "0" * 64, "size": 1})
    (tmp_path / "d-1" / "manifest.json").write_bytes(manifest_bytes(manifest))

    result = verify(tmp_path / "d-1")

    assert result.first_problem == "manifest.json: artifacts[0]: name '../secret' is not a safe relative path"


def test_a_missing_manifest_is_named(tmp_path: Path) -> None:
    result = verify(tmp_path)

    assert (result.ok, result.first_problem) == (False, "manifest.json: missing")
