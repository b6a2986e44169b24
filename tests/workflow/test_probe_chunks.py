"""A drill whose windows are longer than one probe invocation: with LIVEFIRE_PROBE_CHUNK_SECONDS=10 the state
machine's two lanes take turns over the chunks of the baseline and of the drill window (boundaries in the
baseline, the fault and the recovery), every target's base schedule has no gap wider than the interval + 50 ms
at any boundary, and the drill finds what a one-chunk drill of the sandbox finds: a failover that passes."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from livefire.config import PROBE_CHUNK_ENV
from livefire.contracts import Sample
from livefire.probing.chunks import decode_chunk
from livefire.probing.window import SEQ_STRIDE
from livefire.spec import parse_spec
from livefire_local.runner import copy_evidence, follow_execution, sandbox_session, start_drill
from tests.conftest import MESH_DIR, ROOT, sandbox_spec_document

pytestmark = pytest.mark.slow
CHUNK_S = 10
# Boundaries: the baseline's at 10 s of 11 s, the drill window's at 10 s (in the fault) and 20 s (in the recovery).
PHASES = {"baseline": "11s", "lead": "2s", "fault": "12s", "recovery": "14s"}
BOUNDARY_ALLOWANCE_MS = 50.0


def _samples(folder: Path, window: str) -> list[Sample]:
    return [sample for chunk in sorted((folder / "samples").rglob(f"{window}-*.jsonl.gz"))
            for sample in decode_chunk(chunk.read_bytes())]


def _boundary_gaps(samples: list[Sample]) -> list[float]:
    """Every target's gap between its last base probe of one chunk and its first of the next (as really sent)."""
    gaps: list[float] = []
    for target in {s.target for s in samples}:
        base = sorted((s for s in samples if s.target == target and not s.burst), key=lambda s: s.scheduled_ms)
        gaps += [after.sent_ms - before.sent_ms for before, after in itertools.pairwise(base)
                 if before.seq // SEQ_STRIDE != after.seq // SEQ_STRIDE]
    return gaps


def test_a_drill_probed_in_ten_second_chunks_keeps_every_base_schedule_whole_and_passes(
        monkeypatch: pytest.MonkeyPatch, unique_id: str, tmp_path: Path) -> None:
    monkeypatch.setenv(PROBE_CHUNK_ENV, str(CHUNK_S))
    document = sandbox_spec_document(phases=PHASES)
    spec = parse_spec(document)
    interval_ms = spec.probes.interval * 1000.0

    with sandbox_session(spec, MESH_DIR, ROOT) as (_mesh, stack):
        arn = start_drill(stack, unique_id, {"spec": document})
        execution = follow_execution(stack, arn, 150.0, lambda _event: None)
        events = stack.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        folder = copy_evidence(stack, f"drills/payments/{unique_id}/", tmp_path / unique_id)

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]
    assert entered.count("ProbeBaseline") + entered.count("ProbeBaseline1") >= 2  # both lanes of the baseline
    assert entered.count("ProbeDrill") + entered.count("ProbeDrill1") >= 3
    for window in ("baseline", "drill"):
        samples = _samples(folder, window)
        for target in {s.target for s in samples}:
            scheduled = sorted(s.scheduled_ms for s in samples if s.target == target and not s.burst)
            assert all(b - a == pytest.approx(interval_ms, abs=0.01) for a, b in itertools.pairwise(scheduled))
        gaps = _boundary_gaps(samples)
        assert gaps, window
        # The next chunk is up before its turn: a boundary adds nothing to the interval beyond 50 ms.
        assert max(gaps) <= interval_ms + BOUNDARY_ALLOWANCE_MS, (window, sorted(gaps))
    assessment = json.loads((folder / "assessment.json").read_text())
    assert assessment["verdict"] == "PASS"
    statuses = {finding["id"]: finding["status"] for finding in assessment["findings"]}
    assert set(statuses.values()) == {"PASS"}, statuses
    assert "rto" in statuses, statuses
