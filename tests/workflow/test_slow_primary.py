"""A primary slower than the probe timeout (drills/sandbox/slow-primary.yaml), run end to end: its probes time
out, and a timed-out probe counts as a latency of at least the timeout, so the latency objective never PASSes."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from livefire_local.runner import run_drill
from tests.conftest import MESH_DIR, ROOT, sandbox_spec_document

pytestmark = pytest.mark.slow
# The fault lasts long enough for the 100 entrypoint probes a p99 needs (10 Hz).
PHASES = {"baseline": "1s", "lead": "1s", "fault": "11s", "recovery": "5s"}


def test_a_primary_slower_than_the_probe_timeout_does_not_pass_its_latency_objective(
    write_spec: Callable[[dict[str, Any]], Path], tmp_path: Path, unique_id: str
) -> None:
    out = io.StringIO()
    spec = write_spec(sandbox_spec_document("slow-primary", phases=PHASES))

    result = run_drill(spec, root=ROOT, evidence_root=tmp_path / "evidence", out=out, drill_id=unique_id,
                       mesh_dir=MESH_DIR)

    assert result.evidence_dir is not None, out.getvalue()
    assessment: dict[str, Any] = json.loads((result.evidence_dir / "assessment.json").read_text())
    latency = next(f for f in assessment["findings"] if f["id"] == "p99Latency")
    assert latency["status"] != "PASS", latency["detail"]
    assert "timed out" in latency["detail"] or "need 100" in latency["detail"], latency["detail"]
    assert result.verdict != "PASS"
