"""The hash chain across evidence folders, and `livefire verify <folder>` naming the first broken artifact or link."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from livefire.evidence.chain import ChainResult
from livefire.evidence.manifest import manifest_bytes, manifest_digest
from livefire_local.cli import main
from livefire_local.evidence_sources import verify_folder
from tests.evidence_folders import write_chain, write_drill
from tests.keys import local_verifier, seal_folder


def verify_chain_dir(path: Path, *, depth: int | None = None) -> ChainResult:
    return verify_folder(path, local_verifier(), depth=depth)


def test_an_intact_chain_is_followed_back_to_the_first_drill(tmp_path: Path) -> None:
    write_chain(tmp_path)

    result = verify_chain_dir(tmp_path / "d-3")

    assert result.ok, result.problems
    assert result.drills == ["d-3", "d-2", "d-1"]
    assert result.end == "the first drill of payments"


def test_removing_the_middle_manifest_breaks_the_named_link(tmp_path: Path) -> None:
    write_chain(tmp_path)
    (tmp_path / "d-2" / "manifest.json").unlink()

    result = verify_chain_dir(tmp_path / "d-3")

    assert not result.ok
    assert result.first_problem == "chain link d-3 → d-2: d-2/manifest.json: missing"


def test_a_rewritten_earlier_manifest_no_longer_matches_its_link(tmp_path: Path) -> None:
    digests = write_chain(tmp_path)
    path = tmp_path / "d-2" / "manifest.json"
    manifest = json.loads(path.read_bytes())
    manifest["verdict"] = "ERROR"  # self-consistent and re-signed with the key: only the link can tell
    seal_folder(tmp_path / "d-2", manifest)

    result = verify_chain_dir(tmp_path / "d-3")

    assert result.first_problem == (
        f"chain link d-3 → d-2: d-2/manifest.json: digest {manifest_digest(path.read_bytes())} is not the "
        f"expected {digests['d-2']}"
    )


def test_a_changed_artifact_of_an_earlier_drill_is_named_with_its_folder(tmp_path: Path) -> None:
    write_chain(tmp_path)
    (tmp_path / "d-1" / "report.md").write_bytes(b"# Drill d-1: FAIL\n")

    result = verify_chain_dir(tmp_path / "d-3")

    assert result.problems == [
        "chain link d-2 → d-1: d-1/report.md: content changed (SHA-256 differs from the manifest)"
    ]


def test_a_whole_drill_deleted_from_the_middle_is_detected_by_the_older_one_left_behind(tmp_path: Path) -> None:
    write_chain(tmp_path)
    shutil.rmtree(tmp_path / "d-2")

    result = verify_chain_dir(tmp_path / "d-3")

    assert result.first_problem == (
        "chain link d-3 → d-2: the evidence of d-2 is missing, but older drills of payments are here (d-1)"
    )


def test_a_drill_copied_on_its_own_verifies_and_says_where_the_chain_was_not_followed(tmp_path: Path) -> None:
    write_chain(tmp_path / "all")
    shutil.copytree(tmp_path / "all" / "d-3", tmp_path / "alone" / "d-3")

    result = verify_chain_dir(tmp_path / "alone" / "d-3")

    assert result.ok, result.problems
    assert (result.drills, result.end) == (["d-3"], "d-2, whose evidence is not here")


def test_other_services_beside_the_drill_are_not_mistaken_for_a_gap(tmp_path: Path) -> None:
    write_chain(tmp_path, ("o-1", "o-2"), service="orders")
    write_drill(tmp_path, "d-3", ("d-2", "ab" * 32), minute=30, sequence=3)

    result = verify_chain_dir(tmp_path / "d-3")

    assert result.ok, result.problems


def test_a_renamed_folder_is_still_found_by_its_manifest_digest(tmp_path: Path) -> None:
    write_chain(tmp_path)
    (tmp_path / "d-2").rename(tmp_path / "second-drill")

    result = verify_chain_dir(tmp_path / "d-3")

    assert result.ok, result.problems
    assert result.drills == ["d-3", "d-2", "d-1"]


def test_the_depth_limits_how_far_back_the_chain_is_followed(tmp_path: Path) -> None:
    write_chain(tmp_path)
    (tmp_path / "d-1" / "report.md").write_bytes(b"tampered")

    result = verify_chain_dir(tmp_path / "d-3", depth=1)

    assert result.ok, result.problems
    assert (result.drills, result.end) == (["d-3", "d-2"], "the depth limit (1 earlier drills)")


def test_a_link_to_a_folder_holding_another_drills_manifest_is_named(tmp_path: Path) -> None:
    digests = write_chain(tmp_path, ("d-1", "d-2"))
    write_drill(tmp_path, "d-3", ("d-9", digests["d-2"]), minute=5, sequence=3)  # names d-9: no such folder

    result = verify_chain_dir(tmp_path / "d-3")

    # found by digest (d-2's folder), but that manifest is d-2's, not the d-9 the link names
    assert result.first_problem == "chain link d-3 → d-9: d-9/manifest.json is the manifest of drill d-2, not d-9"


def test_the_chain_is_followed_from_a_folder_given_as_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_chain(tmp_path)
    monkeypatch.chdir(tmp_path / "d-3")

    result = verify_chain_dir(Path("."))

    assert result.ok, result.problems
    assert result.drills == ["d-3", "d-2", "d-1"]


def test_livefire_verify_exits_0_for_an_intact_folder_and_prints_the_chain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_chain(tmp_path)

    code = main(["verify", str(tmp_path / "d-3")])

    out = capsys.readouterr().out
    assert code == 0
    assert f"intact: {tmp_path / 'd-3'}" in out
    assert "chain: 3 drills checked (d-3 ← d-2 ← d-1), back to the first drill of payments" in out


@pytest.mark.parametrize("tamper", ["flip", "delete", "manifest"])
def test_livefire_verify_exits_1_naming_the_tampered_artifact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tamper: str
) -> None:
    write_chain(tmp_path)
    folder = tmp_path / "d-3"
    if tamper == "flip":
        data = bytearray((folder / "samples/local/drill-0000.jsonl.gz").read_bytes())
        data[7] ^= 0x20
        (folder / "samples/local/drill-0000.jsonl.gz").write_bytes(bytes(data))
        expected = "samples/local/drill-0000.jsonl.gz: content changed (SHA-256 differs from the manifest)"
    elif tamper == "delete":
        (folder / "spec.json").unlink()
        expected = "spec.json: missing"
    else:
        manifest = json.loads((folder / "manifest.json").read_bytes())
        manifest["artifacts"][0]["size"] += 1
        (folder / "manifest.json").write_bytes(manifest_bytes(manifest))
        expected = f"{manifest['artifacts'][0]['name']}: size changed"

    code = main(["verify", str(folder)])

    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith(f"TAMPERED: {expected}")


def test_livefire_verify_of_a_path_that_is_not_a_folder_is_an_error_not_a_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["verify", str(tmp_path / "nowhere")])

    assert code == 2
    assert "is not an evidence folder" in capsys.readouterr().err
