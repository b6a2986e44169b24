"""The verdict table `livefire run` and `livefire start` print at the end: the report's findings table, readable."""

from __future__ import annotations

import io
import re
from pathlib import Path

from botocore.exceptions import ClientError

from livefire.assessment import Assessment
from livefire_local.verdicts import DrillOutcome, fetch_assessment, print_verdict, read_assessment
from tests.unit.assessment.scenarios import END, INJECT, USE1, USW2, failover_entry, make_spec, regions, run, stream


def assessed() -> Assessment:
    return run(make_spec(), [*regions(), *failover_entry()])


def printed(assessment: Assessment, *, width: int = 200, evidence: str | None = None) -> str:
    out = io.StringIO()
    outcome = DrillOutcome(drill_id="d-1", status="SUCCEEDED", verdict=assessment.verdict,
                           rto_seconds=assessment.rto_seconds, exit_code=0, assessment=assessment, evidence=evidence)
    print_verdict(outcome, out, width=width)
    return out.getvalue()


def row(text: str, title: str) -> list[str]:
    line = next(line for line in text.splitlines() if title in line)
    return [cell.strip() for cell in re.split(r"\s{2,}", line.strip())]


def test_the_verdict_table_shows_whole_titles_with_their_ids() -> None:
    text = printed(assessed())

    assert "Recovery time at the entrypoint within 5 s (rto)" in text
    assert "Standby served during the fault, and only after failover" in text


def test_counts_print_as_whole_numbers_and_every_value_with_its_unit() -> None:
    text = printed(assessed())

    coverage = row(text, "Enough samples to judge")
    assert coverage[2:4] == ["200 samples", "3 samples"]
    assert row(text, "Recovery time at the entrypoint")[:4] == [
        "PASS", "Recovery time at the entrypoint within 5 s (rto)", "2.200 s", "5.000 s"]
    assert not re.search(r"\d\.\d+ (samples|probes|errors)\b", text)


def test_the_rto_bracket_the_verdict_reason_and_the_evidence_path_are_shown(tmp_path: Path) -> None:
    (tmp_path / "assessment.json").write_text("{}")

    text = printed(assessed(), evidence=str(tmp_path))

    assert "VERDICT: PASS    RTO: 2.200 s" in text
    assert "RTO bracket: [+2.100 s, +2.200 s] after the injection, width 100.0 ms" in text
    assert f"evidence: {tmp_path} (1 files)" in text


def test_on_a_narrow_terminal_long_titles_and_details_wrap_instead_of_being_cut() -> None:
    assessment = assessed()

    text = printed(assessment, width=80)

    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80
    words = set(text.split())
    assert "…" not in text
    for finding in assessment.findings:
        assert set(finding.title.split()) <= words, finding.title
        assert set(finding.detail.split()) <= words, finding.detail


def test_the_assessment_is_read_through_the_model(tmp_path: Path) -> None:
    assessment = assessed()
    (tmp_path / "assessment.json").write_text(assessment.model_dump_json())

    assert read_assessment(tmp_path) == assessment
    assert read_assessment(tmp_path / "missing") is None


def test_a_drill_without_any_outage_prints_no_outage_observed_not_an_rto() -> None:
    entry = stream("entry", (0, INJECT + 100, USE1), (INJECT + 100, 25000, USW2), (25000, END, USE1))

    text = printed(run(make_spec(), [*regions(), *entry]))

    assert "RTO: no outage observed" in text


class Bucket:
    """An evidence bucket holding one drill's assessment.json, or refusing every read."""

    def __init__(self, body: bytes | None, refusal: str = "NoSuchKey") -> None:
        self.body, self.refusal = body, refusal

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, io.BytesIO]:  # noqa: N803 (boto3's names)
        if self.body is None:
            raise ClientError({"Error": {"Code": self.refusal, "Message": self.refusal}}, "GetObject")
        assert Key == "drills/payments/d-1/assessment.json"
        return {"Body": io.BytesIO(self.body)}


def test_a_stacks_assessment_is_read_from_the_evidence_bucket_and_missing_when_unreadable() -> None:
    assessment = assessed()

    found = fetch_assessment(Bucket(assessment.model_dump_json().encode()), "bucket", "drills/payments/d-1/")

    assert found == assessment
    assert fetch_assessment(Bucket(None), "bucket", "drills/payments/d-1/") is None
    assert fetch_assessment(Bucket(None, "AccessDenied"), "bucket", "drills/payments/d-1/") is None
