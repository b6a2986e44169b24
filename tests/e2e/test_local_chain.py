"""Two `livefire run`s in a row, as a user runs them: the second drill's evidence links to the first, both are
signed by the local key kept outside the evidence folder, `livefire verify --chain payments` passes, and a byte
flipped in the first drill's samples makes it fail naming that file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from livefire.evidence.manifest import manifest_digest
from tests.conftest import MESH_DIR, sandbox_spec_document
from tests.keys import local_key

pytestmark = pytest.mark.slow
PHASES = {"baseline": "1s", "lead": "0s", "fault": "1s", "recovery": "1s"}


def livefire(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "livefire_local.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=240, check=False)


def test_two_local_runs_form_one_signed_chain_that_verify_walks_and_a_flipped_sample_breaks(tmp_path: Path) -> None:
    (tmp_path / "mesh").symlink_to(MESH_DIR, target_is_directory=True)
    (tmp_path / "drill.yaml").write_text(yaml.safe_dump(sandbox_spec_document(phases=PHASES, objectives={}),
                                                        sort_keys=False))
    runs = [livefire("run", "drill.yaml", cwd=tmp_path) for _ in range(2)]
    evidence = tmp_path / "livefire-evidence"
    first, second = sorted((p for p in evidence.iterdir() if p.is_dir() and not p.name.startswith(".")),
                           key=lambda p: json.loads((p / "manifest.json").read_text())["sequence"])
    manifests = [json.loads((folder / "manifest.json").read_text()) for folder in (first, second)]

    intact = livefire("verify", "--chain", "payments", cwd=tmp_path)
    chunk = sorted((first / "samples").rglob("*.jsonl.gz"))[0]
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0x01
    chunk.write_bytes(bytes(data))
    tampered = livefire("verify", "--chain", "payments", cwd=tmp_path)

    assert all(run.returncode in (0, 1) for run in runs), [run.stdout + run.stderr for run in runs]
    assert [(m["sequence"], m["previous_drill_id"]) for m in manifests] == [(1, None), (2, first.name)]
    assert manifests[1]["previous_manifest_digest"] == manifest_digest((first / "manifest.json").read_bytes())
    assert {m["signing_key"]["public_key_sha256"] for m in manifests} == {local_key().key.public_key_sha256}
    assert f"public key sha256 {local_key().key.public_key_sha256}" in (second / "report.md").read_text()
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert intact.stdout.startswith("intact: chain of payments in livefire-evidence")
    assert f"chain: 2 drills checked ({second.name} ← {first.name})" in intact.stdout
    assert "[2/2]" in intact.stderr  # progress
    relative = chunk.relative_to(first).as_posix()
    assert tampered.returncode == 1
    assert tampered.stdout.splitlines()[0] == (f"TAMPERED: chain link {second.name} → {first.name}: {first.name}/"
                                               f"{relative}: content changed (SHA-256 differs from the manifest)")
