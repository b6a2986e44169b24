"""Tampering with a local evidence folder (three sealed drills of payments and the chain state beside them), as
someone with write access to the folder but not to the signing key kept outside it: every case is caught by
`livefire verify <folder>` or `livefire verify --chain payments`, named in one line, exit 1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from livefire.evidence.chain import Recorded
from livefire.evidence.manifest import manifest_bytes, manifest_digest, sha256_hex
from livefire_local.cli import main
from livefire_local.local_chain import LocalChain
from livefire_local.signing import LocalSigningKey
from tests.evidence_folders import CHUNK, write_chain, write_drill
from tests.keys import local_key

DRILLS = ("d-1", "d-2", "d-3")


@pytest.fixture
def evidence(tmp_path: Path) -> Path:
    root = tmp_path / "livefire-evidence"
    write_chain(root, DRILLS, recorded=True)
    return root


def verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["verify", *args])
    out = capsys.readouterr().out
    return code, out.splitlines()[0] if out else ""


def chain(evidence: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    return verify(capsys, "--chain", "payments", "--evidence-dir", str(evidence))


def rewrite(folder: Path, change: Any) -> tuple[str, str]:
    """A consistent manifest written without the key; (the sealed digest, the new one)."""
    raw = (folder / "manifest.json").read_bytes()
    manifest = json.loads(raw)
    change(manifest)
    forged = manifest_bytes(manifest)
    (folder / "manifest.json").write_bytes(forged)
    return manifest_digest(raw), manifest_digest(forged)


def record(evidence: Path, drill_id: str, digest: str) -> None:
    """The chain state beside the folder, rewritten to name another manifest for the drill."""
    state = LocalChain(evidence)
    drills = [r if r.drill_id != drill_id else Recorded(**{**r.__dict__, "manifest_digest": digest})
              for r in state.drills("payments")]
    state.path("payments").unlink()
    for entry in drills:
        state.append(entry)


def test_an_untouched_local_chain_verifies(evidence: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert verify(capsys, str(evidence / "d-3")) == (0, f"intact: {evidence / 'd-3'}")
    assert chain(evidence, capsys) == (0, f"intact: chain of payments in {evidence}")


def test_a_consistent_forgery_of_the_assessment_and_the_manifest_fails_its_signature(
    evidence: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = evidence / "d-3"
    forged = json.dumps({"verdict": "FAIL", "sample_keys": [f"drills/payments/d-3/{CHUNK}"]}).encode()
    (folder / "assessment.json").write_bytes(forged)

    def forge(manifest: dict[str, Any]) -> None:
        manifest["verdict"] = "FAIL"
        next(a for a in manifest["artifacts"] if a["name"] == "assessment.json").update(
            sha256=sha256_hex(forged), size=len(forged))

    sealed, digest = rewrite(folder, forge)

    assert verify(capsys, str(folder)) == (
        1, f"TAMPERED: signature.json: signs manifest digest {sealed}, not this manifest ({digest})")


def test_a_sample_chunk_deleted_with_its_manifest_entry_is_named(
    evidence: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = evidence / "d-3"
    (folder / CHUNK).unlink()

    def drop(manifest: dict[str, Any]) -> None:
        manifest["artifacts"] = [a for a in manifest["artifacts"] if a["name"] != CHUNK]
        manifest["required"] = [name for name in manifest["required"] if name != CHUNK]

    rewrite(folder, drop)

    assert verify(capsys, str(folder)) == (
        1, f"TAMPERED: {CHUNK}: counted by assessment.json but not listed as required in the manifest")


@pytest.mark.parametrize("victim", ["d-2", "d-3"])
def test_another_drills_folder_swapped_in_is_named(
    evidence: Path, capsys: pytest.CaptureFixture[str], victim: str
) -> None:
    shutil.rmtree(evidence / victim)
    shutil.copytree(evidence / "d-1", evidence / victim)

    assert verify(capsys, str(evidence / victim)) == (
        1, f"TAMPERED: manifest.json: the folder of drill {victim} holds the manifest of drill d-1")


def test_the_newest_drill_rewritten_with_its_record_fails_its_signature(
    evidence: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sealed, digest = rewrite(evidence / "d-3", lambda manifest: manifest.update(verdict="ERROR"))
    record(evidence, "d-3", digest)  # the chain state's head too: it is the last drill it lists

    assert chain(evidence, capsys) == (
        1, f"TAMPERED: d-3/signature.json: signs manifest digest {sealed}, not this manifest ({digest})")


def test_a_middle_drill_rewritten_with_its_record_fails_its_signature_and_the_next_link(
    evidence: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sealed, digest = rewrite(evidence / "d-2", lambda manifest: manifest.update(verdict="ERROR"))
    record(evidence, "d-2", digest)

    assert verify(capsys, str(evidence / "d-2")) == (
        1, f"TAMPERED: signature.json: signs manifest digest {sealed}, not this manifest ({digest})")
    assert verify(capsys, str(evidence / "d-3")) == (
        1, f"TAMPERED: chain link d-3 → d-2: d-2/manifest.json: digest {digest} is not the expected {sealed}")


def test_an_artifact_of_an_earlier_drill_flipped_is_named_by_the_chain_check(
    evidence: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = bytearray((evidence / "d-1" / CHUNK).read_bytes())
    data[3] ^= 0x01
    (evidence / "d-1" / CHUNK).write_bytes(bytes(data))

    assert chain(evidence, capsys) == (
        1, f"TAMPERED: chain link d-2 → d-1: d-1/{CHUNK}: content changed (SHA-256 differs from the manifest)")


def test_a_drill_removed_with_its_folder_from_the_middle_of_the_chain_is_named(
    evidence: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.rmtree(evidence / "d-2")

    assert chain(evidence, capsys) == (1, "TAMPERED: chain link d-3 → d-2: the evidence of d-2 is missing, but "
                                          "the chain state beside the evidence records it")


def test_a_gap_in_the_sequence_is_named_even_when_every_manifest_is_signed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = write_drill(tmp_path, "d-1", None)
    write_drill(tmp_path, "d-3", ("d-1", first), minute=2, sequence=3)  # signed, but drill 2 is gone

    assert verify(capsys, str(tmp_path / "d-3")) == (1, "TAMPERED: chain link d-3 → d-1: gap: sequence 3 follows "
                                                        "sequence 1")


def test_a_fork_two_drills_after_the_same_one_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = write_drill(tmp_path, "d-1", None)
    state = LocalChain(tmp_path)
    state.append(Recorded("d-1", first, 1, None, None, "payments", "PASS"))
    for branch in ("d-2a", "d-2b"):
        digest = write_drill(tmp_path, branch, ("d-1", first), minute=1)
        state.append(Recorded(branch, digest, 2, first, "d-1", "payments", "PASS"))
    forked = state.drills("payments")[1]

    assert chain(tmp_path, capsys) == (
        1, f"TAMPERED: fork: drill d-2a (sequence 2, manifest {forked.manifest_digest}) is not on the chain of "
           "payments")


def test_evidence_signed_by_another_key_is_refused_and_an_exported_public_key_checks_it_offline(
    evidence: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["public-key", "--out", str(tmp_path / "livefire.pem")]) == 0
    exported = capsys.readouterr().err
    other = LocalSigningKey.load_or_create(tmp_path / "other" / "key.pem")
    (tmp_path / "other.pem").write_text(other.public_pem)

    assert f"public key sha256 {local_key().key.public_key_sha256}" in exported
    assert verify(capsys, str(evidence / "d-3"), "--public-key", str(tmp_path / "livefire.pem"))[0] == 0
    assert verify(capsys, str(evidence / "d-3"), "--public-key", str(tmp_path / "other.pem")) == (
        1, f"TAMPERED: signature.json: signed by key {local_key().key.public_key_sha256}, not the trusted key "
           f"{other.key.public_key_sha256}")


def test_without_a_trusted_public_key_the_check_cannot_be_made(
    evidence: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "empty-config"))

    code = main(["verify", str(evidence / "d-3")])

    assert code == 2
    assert "no public key to check signatures with: --public-key PEM" in capsys.readouterr().err
