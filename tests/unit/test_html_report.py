"""report.html: verdict first, a timeline per endpoint drawn where the probes say, fault diffs, and no network."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from livefire.contracts import Sample
from livefire.cost import CostLine, CostReport
from livefire.evidence.bundle import EvidenceBundle, PostureAudit, PostureCheck
from livefire.evidence.fault_diff import json_diff
from livefire.evidence.html import render_html
from livefire.evidence.markup import UNJUDGED_COLOUR, VERDICT_COLOURS
from livefire.evidence.timeline import FAIL_COLOUR, OK_COLOUR, SERVED_PALETTE
from tests.evidence_data import FAULT_ID, T0, chart_of, evidence_bundle, fault_record, snapshots
from tests.html_offline import network_references, relative_links

DRILL = "d-7"
# The timeline's geometry (timeline.py): the plot spans x 120..944 over the probes' time range.
LEFT, PLOT = 120.0, 824.0
START, END = T0, T0 + 8900 + 5  # first probe sent, last probe ended
BIN_PX = PLOT / 400
EAST, WEST = SERVED_PALETTE[0], SERVED_PALETTE[1]
POSTURE = [
    PostureAudit(region="east", cluster="sandbox:e", namespace="payments", host="payments",
                 findings=[PostureCheck(check="outlier-detection", ok=True, detail="consecutive5xxErrors=3"),
                           PostureCheck(check="mtls-strict", ok=False, detail="default: PERMISSIVE")]),
    PostureAudit(region="west", cluster="sandbox:w", namespace="payments", host="payments",
                 skipped="MeshAccessError: cannot list destinationrules in payments: API answered 403"),
]


def context(**overrides: Any) -> EvidenceBundle:
    return evidence_bundle(DRILL, **{"posture": POSTURE, **overrides})


def x_of(ms: float) -> float:
    return LEFT + (ms - START) / (END - START) * PLOT


def figures(html: str) -> dict[str, str]:
    return dict(re.findall(r"<figure><figcaption>(.*?)</figcaption>(<svg.*?</svg>)</figure>", html, re.S))


def rects(svg: str, fill: str, y: int | None = None) -> list[tuple[float, float]]:
    """(x from, x to) of the rects of one colour (in one lane, when ``y`` is given)."""
    found = re.findall(r'<rect x="([\d.]+)" y="(\d+)" width="([\d.]+)" height="\d+" fill="(#[0-9a-f]{6})"', svg)
    return [(float(x), float(x) + float(w)) for x, top, w, colour in found
            if colour == fill and (y is None or int(top) == y)]


def markers(svg: str) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for label, x in re.findall(r'<g><title>(\w+) at [^<]*</title><line x1="([\d.]+)"', svg):
        found.setdefault(label, []).append(float(x))
    return found


def test_the_page_opens_with_the_verdict_band_then_findings_then_the_timeline() -> None:
    html = render_html(context())

    assert html.startswith("<!DOCTYPE html>")
    assert "<title>Drill payments-ap: PASS</title>" in html
    assert f'id="verdict" style="background:{VERDICT_COLOURS["PASS"]}"' in html
    assert html.index('id="verdict"') < html.index('id="findings"') < html.index('id="timeline"')
    assert html.index('id="timeline"') < html.index('id="faults"') < html.index('id="spec"')
    assert "Recovery time at the entrypoint within 2 s" in html


def test_each_endpoint_gets_a_timeline_the_entrypoint_first() -> None:
    charts = figures(render_html(context()))

    assert list(charts) == ["entry (entrypoint) from vantage local", "east from vantage local",
                            "west from vantage local"]
    assert 'aria-label="east from vantage local: 90 probes, 40 failed"' in charts["east from vantage local"]
    assert 'aria-label="entry (entrypoint) from vantage local: 90 probes, 7 failed"' in charts[
        "entry (entrypoint) from vantage local"]


def test_the_failure_band_covers_exactly_the_time_the_endpoint_failed() -> None:
    charts = figures(render_html(context()))

    east_red = rects(charts["east from vantage local"], FAIL_COLOUR)
    entry_red = rects(charts["entry (entrypoint) from vantage local"], FAIL_COLOUR)

    assert len(east_red) == 1
    assert east_red[0][0] == pytest.approx(x_of(T0 + 1000), abs=BIN_PX)
    assert east_red[0][1] == pytest.approx(x_of(T0 + 5000), abs=BIN_PX)
    assert len(entry_red) == 1
    assert entry_red[0][0] == pytest.approx(x_of(T0 + 1100), abs=BIN_PX)
    assert entry_red[0][1] == pytest.approx(x_of(T0 + 1800), abs=BIN_PX)
    assert rects(charts["west from vantage local"], FAIL_COLOUR) == []
    assert rects(charts["west from vantage local"], OK_COLOUR)


def test_the_served_by_band_shows_the_failover_to_the_standby_and_back() -> None:
    entry = figures(render_html(context()))["entry (entrypoint) from vantage local"]

    served_y = 58 + 20 + 6
    west = rects(entry, WEST, served_y)
    east = rects(entry, EAST, served_y)

    assert len(west) == 1
    assert west[0][0] == pytest.approx(x_of(T0 + 1800), abs=BIN_PX)
    assert west[0][1] == pytest.approx(x_of(T0 + 6000), abs=BIN_PX)
    assert len(east) == 2  # before the failover, and again after the failback
    assert east[0][1] == pytest.approx(x_of(T0 + 1100), abs=BIN_PX)
    assert east[1][0] == pytest.approx(x_of(T0 + 6000), abs=BIN_PX)


def test_markers_show_injection_rollback_detection_recovery_and_failback_where_they_happened() -> None:
    charts = figures(render_html(context()))

    entry = markers(charts["entry (entrypoint) from vantage local"])
    east = markers(charts["east from vantage local"])
    west = markers(charts["west from vantage local"])

    expected = {"inject": 1000, "rollback": 5000, "detect": 1100, "recover": 1800, "failback": 6000}
    assert set(entry) == set(expected)
    for label, at in expected.items():
        assert entry[label] == [pytest.approx(x_of(T0 + at), abs=0.11)], label
    assert east["detect"] == [pytest.approx(x_of(T0 + 1000), abs=0.11)]
    assert set(east) == {"inject", "rollback", "detect"}
    assert set(west) == {"inject", "rollback"}


def test_latency_and_availability_are_given_per_phase() -> None:
    html = render_html(context())

    section = html[html.index('id="phases"'):html.index('id="faults"')]

    for phase in ("baseline", "fault", "recovery"):
        assert f"<td>{phase}</td><td>local</td><td>entry</td>" in section
    assert "<th>p50</th><th>p95</th><th>p99</th>" in section
    assert '<td class="num">82.500%</td>' in section  # the entrypoint during the fault: 33 of 40


def test_the_fault_shows_what_the_injection_changed_and_that_the_rollback_restored_it() -> None:
    html = render_html(context())

    faults = html[html.index('id="faults"'):html.index('id="posture"')]

    assert "http-abort on VirtualService payments/payments in east" in faults
    assert '<td class="path">spec.http[0].fault.abort.httpStatus</td>' in faults
    assert '<td class="path">metadata.annotations.livefire.dev/drill-id</td>' in faults
    assert "resourceVersion" not in faults
    assert "Restored exactly" in faults
    assert f'<a href="faults/{FAULT_ID}-before.json">' in faults


def test_a_rollback_that_left_a_difference_is_flagged_with_the_field() -> None:
    shots = copy.deepcopy(snapshots())
    shots[f"faults/{FAULT_ID}-restored.json"]["spec"]["http"][0]["timeout"] = "1s"

    html = render_html(context(documents=shots))

    assert "The rollback left differences" in html
    assert '<td class="path">spec.http[0].timeout</td>' in html
    assert "Restored exactly" not in html


def test_json_diff_lists_changed_added_and_removed_leaves_and_skips_server_fields() -> None:
    before = {"metadata": {"resourceVersion": "1", "labels": {"a": "1"}}, "spec": {"x": [1, 2], "y": {"z": 1}}}
    after = {"metadata": {"resourceVersion": "2", "labels": {"a": "2"}}, "spec": {"x": [1], "w": True}}

    changes = json_diff(before, after)

    assert changes == [
        ("metadata.labels.a", "1", "2"), ("spec.w", None, True), ("spec.x[1]", 2, None), ("spec.y.z", 1, None),
    ]


def test_posture_findings_are_listed_and_a_skipped_audit_says_why() -> None:
    html = render_html(context())

    posture = html[html.index('id="posture"'):html.index('id="cost"')]

    assert "east (sandbox:e): host payments in namespace payments" in posture
    assert "<td>mtls-strict</td>" in posture and "default: PERMISSIVE" in posture
    assert "Not audited: MeshAccessError: cannot list destinationrules in payments: API answered 403" in posture
    assert "was not audited" in render_html(context(posture=None))


def test_the_cost_slot_says_not_computed_until_a_cost_is_given() -> None:
    assert "Not computed for this drill." in render_html(context())

    cost = CostReport(total_usd=0.0123, state_transitions=41, lambda_gb_seconds=0.5, lambda_invocations=9,
                      lines=[CostLine(item="state transitions", quantity="41 (0 retries)", usd=0.01)],
                      note="list prices, us-east-1")

    html = render_html(context(cost=cost))

    assert "Total: $0.012300" in html
    assert "<td>state transitions</td><td>41</td>" in html
    assert "<th>item</th><th>quantity</th><th>usd</th>" in html
    assert "list prices, us-east-1" in html


def test_the_page_loads_nothing_from_the_network_and_links_artifacts_relatively() -> None:
    html = render_html(context(artifacts={"spec.json": 1, "samples/local/drill 0.jsonl.gz": 2,
                                          "javascript:alert(1)": 3}))

    assert network_references(html) == []
    links = relative_links(html)
    assert "samples/local/drill%200.jsonl.gz" in links
    assert "javascript%3Aalert%281%29" in links
    assert all(not re.match(r"^[a-z]+:|^//", link) for link in links)


def test_text_from_the_drill_is_escaped_so_it_cannot_inject_markup() -> None:
    record = fault_record(DRILL).model_copy(update={"detail": '<img src="http://evil.example/x.png">'})

    html = render_html(context(faults=[record], error="</pre><script>alert(1)</script>"))

    assert network_references(html) == []
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=&quot;http://evil.example/x.png&quot;&gt;" in html


def test_a_drill_that_ended_without_assessment_still_gets_a_timeline_and_says_why() -> None:
    html = render_html(context(assessment=None, outcome="NOT_STEADY", error="baseline not steady"))

    assert f'id="verdict" style="background:{UNJUDGED_COLOUR}"' in html
    assert "No assessment: the drill ended with outcome NOT_STEADY" in html
    charts = figures(html)
    assert len(charts) == 3
    east = markers(charts["east from vantage local"])
    assert east["inject"] == [pytest.approx(x_of(T0 + 1000), abs=0.11)]  # from the fault record
    assert 'id="recovery"' not in html


def test_a_long_drill_keeps_every_lane_to_a_bounded_number_of_shapes() -> None:
    flapping = [
        Sample(target="entry", vantage="local", seq=i, scheduled_ms=T0 + i * 10, sent_ms=T0 + i * 10,
               ended_ms=T0 + i * 10 + 3, ok=i % 2 == 0, status=200 if i % 2 == 0 else 503, latency_ms=3.0,
               served_by="east" if i % 4 == 0 else "west")
        for i in range(60_000)
    ]

    html = render_html(context(timeline=chart_of(flapping)))

    svg = figures(html)["entry (entrypoint) from vantage local"]
    assert len(re.findall(r"<rect ", svg)) <= 2 * 400 + 10
    assert len(html) < 300_000
