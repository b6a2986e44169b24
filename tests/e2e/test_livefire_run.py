"""`livefire run` as a user types it: a whole sandbox drill in a subprocess, and bad specs refused cleanly."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from livefire.evidence.manifest import verify_evidence_dir
from tests.conftest import FAST_PHASES, MESH_DIR, sandbox_spec_document
from tests.keys import local_verifier


def livefire(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "livefire_local.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, check=False)


def _with_mesh(path: Path) -> Path:
    (path.parent / "mesh").symlink_to(MESH_DIR, target_is_directory=True)
    return path


@pytest.mark.slow
def test_livefire_run_passes_prints_the_rto_and_saves_verifiable_evidence(
    tmp_path: Path, write_spec: Callable[[dict[str, Any]], Path]
) -> None:
    # the sandbox primary is ejected for 5 s: a recovery phase long enough for failback and a steady end after it
    phases = {**FAST_PHASES, "recovery": "9s"}
    spec = _with_mesh(write_spec(sandbox_spec_document(phases=phases)))

    result = livefire("run", str(spec), "--evidence-dir", str(tmp_path / "evidence"), cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "VERDICT: PASS" in result.stdout
    assert "RTO:" in result.stdout and "RTO: —" not in result.stdout  # the verdict line's dash: no RTO
    drills = [p for p in (tmp_path / "evidence").iterdir() if not p.name.startswith(".")]  # not .chain
    assert len(drills) == 1
    assert verify_evidence_dir(drills[0], verifier=local_verifier()).ok
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["probes"].update({"intervall": "100ms"}), "probes.intervall"),
        (lambda d: d["phases"].update({"fault": "-5s"}), "phases.fault"),
        (lambda d: d["fault"].update({"region": "eu-west-9"}), "fault.region"),
    ],
    ids=["typo-key", "negative-duration", "unknown-region"],
)
def test_livefire_run_refuses_a_bad_spec_with_one_line_naming_the_field(
    tmp_path: Path, write_spec: Callable[[dict[str, Any]], Path], mutate: Callable[[dict[str, Any]], None],
    field: str,
) -> None:
    document = sandbox_spec_document()
    mutate(document)
    spec = _with_mesh(write_spec(document))

    result = livefire("run", str(spec), "--evidence-dir", str(tmp_path / "evidence"), cwd=tmp_path, timeout=60)

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert field in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "evidence").exists()
