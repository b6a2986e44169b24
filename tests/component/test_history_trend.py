"""`livefire history --service S` with the stack's table and bucket named (moto): the trend of the drill table's
drills, oldest first, each measured from its assessment.json, with sparklines and the HTML trend page."""

from __future__ import annotations

from pathlib import Path

import pytest

from livefire_local.cli import main
from tests.component.evidence_stack import REGION, EvidenceStack, evidence_stack
from tests.evidence_data import T0

__all__ = ["evidence_stack"]  # the fixture, imported for pytest


def test_the_stacks_drills_show_their_trend_oldest_first(
    evidence_stack: EvidenceStack, unique_id: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    drills = [f"{unique_id}-{n}" for n in (1, 2)]
    for minute, drill_id in enumerate(drills):
        evidence_stack.publish(drill_id, t0=T0 + minute * 60_000)
    evidence_stack.publish(f"{unique_id}-3", t0=T0 + 120_000, assessed=False)  # ended unjudged
    capsys.readouterr()
    page = tmp_path / "trend.html"

    code = main(["history", "--service", "payments", "--table", evidence_stack.table, "--bucket",
                 evidence_stack.bucket, "--region", REGION, "--html", str(page)])

    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[0] == f"payments: the last 3 drills in table {evidence_stack.table}, oldest first"
    rows = [line.split() for line in lines[2:5]]
    assert [row[-1] for row in rows] == [*drills, f"{unique_id}-3"]
    assert rows[0][1:3] == ["PASS", "0.800s"] and rows[2][2] == "-"
    assert next(line for line in lines if line.startswith("RTO ")).split()[1] == "▁▁"
    assert page.read_text().count("<svg") >= 1 and lines[-1] == f"trend page: {page}"
