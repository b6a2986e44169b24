"""`livefire history` over the local chain: one line per drill with RTO, failback, availability and RPO, a
sparkline per measure, an HTML trend page with inline SVG; the local seed puts the chain's drills back into the
fresh drill table so Assess can judge rtoRegression."""

from __future__ import annotations

from pathlib import Path

from livefire.assessment import Assessment
from livefire.assessment.regression import recent_rtos
from livefire.evidence.chain import Recorded
from livefire.store import DrillStore
from livefire_local.local_chain import LocalChain
from livefire_local.trends import TrendPoint, local_points, sparkline, trend_html, trend_lines
from tests.evidence_data import drill_assessment
from tests.fakes import FakeTable
from tests.unit.assessment.scenarios import make_plan, make_spec

T0 = 1_700_000_000_000


def point(drill_id: str, rto: float | None, failback: float | None = 2.0) -> TrendPoint:
    return TrendPoint(drill_id=drill_id, started_ms=T0, verdict="PASS", rto=rto, failback=failback,
                      availability=99.5, rpo=None)


def sealed(root: Path, drill_id: str, sequence: int, assessment: Assessment | None) -> None:
    """A drill folder as `livefire run` leaves it, and its entry in the local chain."""
    folder = root / drill_id
    folder.mkdir(parents=True)
    plan = make_plan(make_spec()).model_copy(update={"drill_id": drill_id, "started_at_ms": T0 + sequence})
    (folder / "plan.json").write_text(plan.model_dump_json())
    if assessment is not None:
        (folder / "assessment.json").write_text(assessment.model_dump_json())
    LocalChain(root).append(Recorded(drill_id=drill_id, manifest_digest=f"{sequence:064x}", sequence=sequence,
                                     previous_manifest_digest=None, previous_drill_id=None, service="payments",
                                     verdict=assessment.verdict if assessment else "NOT_STEADY"))


def test_a_sparkline_scales_between_the_extremes_and_leaves_gaps_for_unmeasured_drills() -> None:
    assert sparkline([1.0, 2.0, None, 8.0]) == "▁▂ █"
    assert sparkline([3.0, 3.0]) == "▁▁"
    assert sparkline([None]) == ""


def test_the_trend_lists_each_drill_oldest_first_with_a_sparkline_per_measure() -> None:
    lines = trend_lines([point("d-1", 1.0), point("d-2", 1.1), point("d-3", 4.0, failback=None)])

    assert lines[0].split() == ["started", "verdict", "RTO", "failback", "availability", "RPO", "drill"]
    assert lines[3].split()[1:] == ["PASS", "4.000s", "-", "99.500%", "-", "d-3"]
    rto = next(line for line in lines if line.startswith("RTO "))
    assert "▁▁█" in rto and "1.000s → 4.000s" in rto
    assert next(line for line in lines if line.startswith("RPO ")).endswith("not measured")


def test_the_trend_page_draws_one_inline_svg_per_measure_and_escapes_names() -> None:
    page = trend_html("pay<ments", [point("d-1", 1.0), point("d-<2>", 3.0)])

    assert page.count("<svg") == 3  # RTO, failback, availability: RPO was not measured
    assert "<polyline" in page and "d-&lt;2&gt;: 3.000s (PASS)" in page
    assert "pay&lt;ments" in page and "<script" not in page and "http" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")


def test_local_points_read_each_sealed_drills_evidence(tmp_path: Path) -> None:
    judged = drill_assessment("d-1")
    sealed(tmp_path, "d-1", 1, judged)
    sealed(tmp_path, "d-2", 2, None)

    points = local_points(tmp_path, "payments")

    assert [(p.drill_id, p.rto, p.verdict) for p in points] == [("d-1", judged.rto_seconds, judged.verdict),
                                                                ("d-2", None, "NOT_STEADY")]
    assert points[0].availability is not None and points[0].started_ms == T0 + 1


def test_the_local_seed_rebuilds_the_history_entries_assess_reads(tmp_path: Path) -> None:
    judged = drill_assessment("d-1")
    sealed(tmp_path, "d-1", 1, judged)
    sealed(tmp_path, "d-2", 2, None)
    chain = LocalChain(tmp_path)

    records = [chain.drill_record(r) for r in chain.drills("payments")]

    assert [(r.drill_id, r.status, r.rto_seconds, r.service) for r in records if r] == [
        ("d-1", "COMPLETED", judged.rto_seconds, "payments"), ("d-2", "NOT_STEADY", None, "payments")]


def test_seeding_a_fresh_table_lets_assess_read_the_local_drills_rtos(tmp_path: Path) -> None:
    judged = drill_assessment("d-1")
    sealed(tmp_path, "d-1", 1, judged)
    store = DrillStore(FakeTable())
    store.create_drill(drill_id="d-1", execution_arn="arn:x", service="payments", pattern="active-passive",
                       mode="live", spec_digest="x", started_at_ms=5, lease_keys=[])  # a record already there wins

    LocalChain(tmp_path).seed(store, "payments")
    LocalChain(tmp_path / "other").seed(DrillStore(FakeTable()), "payments")  # no chain: nothing to seed
    fresh = DrillStore(FakeTable())
    LocalChain(tmp_path).seed(fresh, "payments")

    assert [(e.drill_id, e.status) for e in store.history("payments")] == [("d-1", "RUNNING")]
    assert recent_rtos(fresh.history("payments"), "d-now", "active-passive") == [judged.rto_seconds]
