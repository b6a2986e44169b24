"""RPO measured by data checks, end to end on the sandbox: drills/sandbox/rpo.yaml PASSes (RPO, replication lag p99
and no write lost on failback), rpo-lagging.yaml (a standby 10 s behind) FAILs with an RPO within 10 % of the
sandbox's configured lag, rpo-lossy-failback.yaml FAILs naming the writes the standby took that never reached the
primary, through both the http marker contract and DynamoDB; after every ending no marker is left in any store."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import livefire.faults.drivers  # noqa: F401  warm: Inject's first import (the Kubernetes client) is not measured here
from livefire_local.runner import run_drill
from livefire_local.sandbox.markers import load_profiles
from livefire_local.sandbox.mesh import SandboxMesh
from tests.conftest import MESH_DIR, ROOT, SANDBOX, with_loaded_machine_steady

# The heaviest drills (markers every 100 ms through moto, lag and RPO judged to 10 %): beside other drills they
# measured lag 10 % high or left a loss unobserved, so `make test` runs them alone, one after another.
pytestmark = [pytest.mark.slow, pytest.mark.alone]


def run(name: str, tmp_path: Path, unique_id: str) -> tuple[Any, dict[str, Any], list[int]]:
    left: list[int] = []

    def count_markers(mesh: SandboxMesh) -> None:
        left.append(mesh.data_checks.markers_left())

    document = with_loaded_machine_steady(yaml.safe_load((SANDBOX / f"{name}.yaml").read_text()))  # as every test drill
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(yaml.safe_dump(document, sort_keys=False))
    out = io.StringIO()
    result = run_drill(spec, root=ROOT, evidence_root=tmp_path / "evidence", out=out, mesh_dir=MESH_DIR,
                       drill_id=unique_id, after_end=count_markers)
    assert result.evidence_dir is not None, out.getvalue()
    assessment = json.loads((result.evidence_dir / "assessment.json").read_text())
    return result, assessment, left


def test_a_standby_close_behind_passes_its_rpo_lag_and_failback_and_leaves_no_marker(
        tmp_path: Path, unique_id: str) -> None:
    result, assessment, left = run("rpo", tmp_path, unique_id)

    assert result.verdict == "PASS", assessment["verdict_reason"]
    statuses = {f["id"]: f["status"] for f in assessment["findings"]}
    assert {k: statuses[k] for k in ("rpo", "replicationLagP99", "writeLossOnFailback")} == dict.fromkeys(
        ("rpo", "replicationLagP99", "writeLossOnFailback"), "PASS")
    assert {check["kind"] for check in assessment["data_checks"]} == {"http", "dynamodb"}
    assert all(rpo["seconds"] is not None for check in assessment["data_checks"] for rpo in check["rpo"])
    assert all(loss["lost"] == 0 and loss["written"] > 0
               for check in assessment["data_checks"] for loss in check["write_loss"])
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


def test_a_lossy_failback_fails_naming_the_writes_the_primary_never_got(tmp_path: Path, unique_id: str) -> None:
    result, assessment, left = run("rpo-lossy-failback", tmp_path, unique_id)

    assert result.verdict == "FAIL"
    finding = next(f for f in assessment["findings"] if f["id"] == "writeLossOnFailback")
    assert finding["status"] == "FAIL", finding["detail"]
    losses = {check["kind"]: check["write_loss"][0] for check in assessment["data_checks"]}
    assert set(losses) == {"http", "dynamodb"}
    for loss in losses.values():  # a 3 s fault at 200 ms: the standby took about 10 markers, all lost but the last
        assert loss["lost"] >= 5 and loss["lost"] >= loss["written"] - 2, loss
        assert len(loss["lost_seqs"]) == loss["lost"]
    assert "| Lost markers |" in (result.evidence_dir / "report.md").read_text()
    assert left == [0]
