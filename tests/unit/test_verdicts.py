"""The verdict table `livefire run` prints at the end, read from assessment.json through the model."""

from __future__ import annotations

import io
from pathlib import Path

from livefire_local.verdicts import print_verdict
from tests.unit.assessment.scenarios import failover_entry, make_spec, regions, run


def printed(tmp_path: Path) -> str:
    assessment = run(make_spec(), [*regions(), *failover_entry()])
    (tmp_path / "assessment.json").write_text(assessment.model_dump_json())
    out = io.StringIO()
    print_verdict(tmp_path, assessment.verdict, assessment.rto_seconds, out)
    return out.getvalue()


def test_the_verdict_table_shows_whole_titles(tmp_path: Path) -> None:
    text = printed(tmp_path)

    assert "Recovery time at the entrypoint within 5 s" in text
    assert "Standby served during the fault, and only after failover" in text


def test_counts_print_as_whole_numbers_and_times_with_three_decimals(tmp_path: Path) -> None:
    text = printed(tmp_path)

    coverage = next(line for line in text.splitlines() if "Enough samples to judge" in line)
    assert coverage.split()[-4:] == ["200", "samples", "3", "samples"]
    rto = next(line for line in text.splitlines() if line.startswith("PASS") and "Recovery time" in line)
    assert rto.split()[-4:] == ["2.200", "s", "5.000", "s"]
    assert "RTO bracket: [+2.100s, +2.200s] after injection, width 100.0 ms" in text
