"""posture.require, end to end on the sandbox: the Evidence step audits each region's mesh and folds the required
items into the verdict (assessment.json is rewritten with them, and the execution ends by that verdict); the report
says what to change."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from livefire_local.runner import DrillRun, run_drill
from tests.conftest import MESH_DIR, ROOT, sandbox_spec_document

pytestmark = pytest.mark.slow
PHASES = {"baseline": "1s", "lead": "1s", "fault": "3s", "recovery": "6s"}  # failback: ejections last 5 s
EVERY_ITEM = {"require": ["mtlsStrict", "outlierDetection", "localityFailover"]}


def _run(name: str, write_spec: Callable[[dict[str, Any]], Path], tmp_path: Path,
         drill_id: str) -> tuple[DrillRun, dict[str, dict[str, Any]]]:
    out = io.StringIO()
    spec = write_spec(sandbox_spec_document(name, phases=PHASES, posture=EVERY_ITEM))
    result = run_drill(spec, root=ROOT, evidence_root=tmp_path / "evidence", out=out, drill_id=drill_id,
                       mesh_dir=MESH_DIR)
    assert result.evidence_dir is not None, out.getvalue()
    assessment = json.loads((result.evidence_dir / "assessment.json").read_text())
    return result, {f["id"]: f for f in assessment["findings"]}


def test_a_mesh_with_every_required_item_passes_them_as_findings(
    write_spec: Callable[[dict[str, Any]], Path], tmp_path: Path, unique_id: str
) -> None:
    result, findings = _run("active-passive", write_spec, tmp_path, unique_id)

    statuses = {k: v["status"] for k, v in findings.items() if k.startswith("posture")}
    assert statuses == {"postureMtlsStrict": "PASS", "postureOutlierDetection": "PASS",
                        "postureLocalityFailover": "PASS"}, findings
    assert result.verdict == "PASS", {k: v["detail"] for k, v in findings.items() if v["status"] != "PASS"}


def test_a_required_item_the_mesh_lacks_fails_the_drill(
    write_spec: Callable[[dict[str, Any]], Path], tmp_path: Path, unique_id: str
) -> None:
    result, findings = _run("broken-failover", write_spec, tmp_path, unique_id)

    outlier = findings["postureOutlierDetection"]
    assert outlier["status"] == "FAIL"
    assert "us-east-1: " in outlier["detail"] and "no trafficPolicy.outlierDetection" in outlier["detail"]
    assert findings["postureMtlsStrict"]["status"] == "PASS"
    assert result.verdict == "FAIL"
    assert result.evidence_dir is not None
    report = (result.evidence_dir / "report.md").read_text()  # what to change: outlierDetection, with the YAML
    change = report[report.index("## What to change"):report.index("## Controls evidenced")]
    assert "Add outlierDetection to the DestinationRule in us-east-1" in change
    assert "```yaml\n# kubectl --context <sandbox:payments-broken-use1> -n payments patch destinationrule" in change
    assert "    outlierDetection:\n      consecutive5xxErrors: " in change
