"""The data checks in both reports: the RPO with its bracket, the lag per phase and the writes lost on failback in
report.md and report.html, and a lag timeline under the availability timeline on the same axis."""

from __future__ import annotations

import re

from livefire.assessment.model import DataCheckResult, LagPoint, LagStats, Rpo, WriteLoss
from livefire.evidence.bundle import EvidenceBundle
from livefire.evidence.html import render_html
from livefire.evidence.report import render_markdown
from tests.evidence_data import T0, evidence_bundle

INJECTED = T0 + 1000


def with_data_check(write_loss: list[WriteLoss] | None = None) -> EvidenceBundle:
    bundle = evidence_bundle("d-rpo")
    assert bundle.assessment is not None
    result = DataCheckResult(
        check="orders", kind="http", interval_s=0.2, writes=45, acknowledged=45,
        lag=[LagStats(region="west", phase="baseline", reads=5, failed_reads=0, p50_s=0.3, p99_s=0.45, max_s=0.45)],
        timeline=[LagPoint(region="west", at_ms=T0 + at, lag_s=0.3 + at / 10_000) for at in range(0, 9000, 200)],
        rpo=[Rpo(region="west", seconds=10.1, low_s=10.0, high_s=10.2, failed_at_ms=INJECTED,
                 serving_from_ms=INJECTED + 800, last_acked_seq=5, held_seq=1, note="west took over")],
        write_loss=write_loss or [], marker_keys=["markers/local-0000.jsonl.gz"])
    return bundle.model_copy(update={"assessment": bundle.assessment.model_copy(update={"data_checks": [result]})})


def test_the_markdown_report_gives_the_rpo_its_bracket_and_the_lag_per_phase() -> None:
    report = render_markdown(with_data_check())

    section = report.split("## Data checks: RPO and replication lag", 1)[1]
    assert "| orders | http | west | 10.100 s | [10.000, 10.200] s | +0.800 s after the injection | 5 | 1 |" in section
    assert "| orders | west | baseline | 5 | 0 | 0.300 s | 0.450 s | 0.450 s |" in section


def test_a_drill_without_data_checks_has_no_data_check_section() -> None:
    assert "Data checks" not in render_markdown(evidence_bundle("d-plain"))
    assert 'id="data-checks"' not in render_html(evidence_bundle("d-plain"))


def test_the_html_report_draws_the_lag_under_the_availability_timeline_on_the_same_axis() -> None:
    page = render_html(with_data_check())

    timeline = page.split('<section id="timeline">', 1)[1].split("</section>", 1)[0]
    lag_figure = timeline.split("replication lag of data check orders (http)", 1)[1]
    points = re.search(r'<polyline[^>]*points="([^"]+)"', lag_figure)
    assert points is not None
    xs = [float(pair.split(",")[0]) for pair in points.group(1).split()]
    assert xs == sorted(xs) and 120 <= xs[0] < xs[-1] <= 944  # inside the plot the endpoint timelines share
    assert 'id="data-checks"' in page and "10.100 s" in page


def test_both_reports_name_the_writes_lost_on_failback_and_say_when_the_loss_was_not_observed() -> None:
    losses = [WriteLoss(region="west", written=12, reached=9, lost=3, lost_seqs=[40, 41, 42], note="3 lost"),
              WriteLoss(region="south", note="south never answered the entrypoint after the injection")]
    bundle = with_data_check(losses)

    report, page = render_markdown(bundle), render_html(bundle)

    assert "| orders | west | 12 | 9 | 3 | 40, 41, 42 | 3 lost |" in report
    assert "| orders | south | 0 | 0 | not observed | — |" in report
    assert "<td>40, 41, 42</td>" in page and "<td>not observed</td>" in page


def test_a_data_check_without_standby_writes_has_no_write_loss_table() -> None:
    assert "Lost markers" not in render_markdown(with_data_check())
