"""RPO measured by data checks, end to end on the sandbox: drills/sandbox/rpo.yaml PASSes, rpo-lagging.yaml (a
standby 10 s behind) FAILs with an RPO within 10 % of the sandbox's configured lag, through both the http marker
contract and DynamoDB; after either ending no marker is left in any store."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

import livefire.faults.drivers  # noqa: F401  warm: Inject's first import (the Kubernetes client) is not measured here
from livefire_local.runner import run_drill
from livefire_local.sandbox.markers import load_profiles
from livefire_local.sandbox.mesh import SandboxMesh
from tests.conftest import MESH_DIR, ROOT, SANDBOX

pytestmark = pytest.mark.slow


def run(name: str, tmp_path: Path, unique_id: str) -> tuple[Any, dict[str, Any], list[int]]:
    left: list[int] = []

    def count_markers(mesh: SandboxMesh) -> None:
        left.append(mesh.data_checks.markers_left())

    out = io.StringIO()
    result = run_drill(SANDBOX / f"{name}.yaml", root=ROOT, evidence_root=tmp_path / "evidence", out=out,
                       drill_id=unique_id, after_end=count_markers)
    assert result.evidence_dir is not None, out.getvalue()
    assessment = json.loads((result.evidence_dir / "assessment.json").read_text())
    return result, assessment, left


def test_a_standby_close_behind_passes_its_rpo_and_leaves_no_marker(tmp_path: Path, unique_id: str) -> None:
    result, assessment, left = run("rpo", tmp_path, unique_id)

    assert result.verdict == "PASS", assessment["verdict_reason"]
    assert {check["kind"] for check in assessment["data_checks"]} == {"http", "dynamodb"}
    assert all(rpo["seconds"] is not None for check in assessment["data_checks"] for rpo in check["rpo"])
    assert left == [0]


def test_a_standby_ten_seconds_behind_fails_with_an_rpo_of_ten_seconds(tmp_path: Path, unique_id: str) -> None:
    lag_s = load_profiles(MESH_DIR)["http"]["lagging.markers.payments.sandbox"].lag_s

    result, assessment, left = run("rpo-lagging", tmp_path, unique_id)

    assert result.verdict == "FAIL"
    rpo = next(f for f in assessment["findings"] if f["id"] == "rpo")
    assert rpo["status"] == "FAIL"
    measured = {check["kind"]: check["rpo"][0]["seconds"] for check in assessment["data_checks"]}
    assert set(measured) == {"http", "dynamodb"}
    assert all(abs(seconds - lag_s) <= 0.1 * lag_s for seconds in measured.values()), measured
    assert left == [0]
