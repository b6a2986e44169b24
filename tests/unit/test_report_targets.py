"""Both reports say, per probed target and webhook URL, whether the drill reached it for real or the local sandbox
answered (from the plan, which Plan marks once)."""

from __future__ import annotations

import yaml

from livefire.contracts import Plan
from livefire.evidence.bundle import ReachedTarget
from livefire.evidence.html import render_html
from livefire.evidence.publish import reached_targets
from livefire.evidence.report import render_markdown
from livefire.planning import planned_faults, probe_targets
from livefire.spec import parse_spec
from tests.conftest import SANDBOX
from tests.evidence_data import evidence_bundle

DRILL = "payments-targets-1"
TARGETS = [
    ReachedTarget(target="entrypoint", url="http://127.0.0.1:8080/healthz?token=[redacted]", reach="real"),
    ReachedTarget(target="us-east-1", url="http://use1.payments.sandbox/healthz", reach="sandbox"),
]


def test_the_markdown_report_lists_each_target_as_real_or_sandbox_before_the_findings() -> None:
    report = render_markdown(evidence_bundle(DRILL, targets=TARGETS))

    assert "| entrypoint | http://127.0.0.1:8080/healthz?token=[redacted] | real (contacted as named) |" in report
    assert "| us-east-1 | http://use1.payments.sandbox/healthz | sandbox (the local sandbox mesh answered) |" in report
    assert report.index("## Targets") < report.index("## Findings")


def test_the_html_report_lists_each_target_as_real_or_sandbox() -> None:
    page = render_html(evidence_bundle(DRILL, targets=TARGETS))

    section = page[page.index('<section id="targets">'):page.index('<section id="findings">')]
    assert "<code>http://127.0.0.1:8080/healthz?token=[redacted]</code>" in section
    assert section.count("real (contacted as named)") == 1
    assert section.count("sandbox (the local sandbox mesh answered)") == 1


def test_a_bundle_without_targets_renders_no_targets_section() -> None:
    assert "## Targets" not in render_markdown(evidence_bundle(DRILL))
    assert 'id="targets"' not in render_html(evidence_bundle(DRILL))


def test_the_evidence_takes_each_targets_reach_from_the_plan_and_redacts_its_url() -> None:
    document = yaml.safe_load((SANDBOX / "webhook-outage.yaml").read_text())
    document["entrypoint"] = "http://127.0.0.1:8080/healthz?token=s3cr3t"
    spec = parse_spec(document)
    served = frozenset({"use1.payments.sandbox:80", "usw2.payments.sandbox:80", "control.payments.sandbox:80"})
    plan = Plan(
        drill_id=DRILL, execution_arn="arn:aws:states:us-east-1:1:execution:sm:d", service="payments",
        pattern=spec.pattern, mode=spec.mode, spec_key="k", spec_digest=spec.digest(), evidence_prefix="p/",
        started_at_ms=1, vantages=[], targets=probe_targets(spec, served), faults=planned_faults(spec, served),
        baseline_seconds=1.0, observe_seconds=10.0, lead_wait_seconds=1, fault_wait_seconds=1,
    )

    targets = reached_targets(plan, spec)

    assert [(t.target, t.url, t.reach) for t in targets] == [
        ("entrypoint", "http://127.0.0.1:8080/healthz?token=[redacted]", "real"),
        ("us-east-1", "http://use1.payments.sandbox/healthz", "sandbox"),
        ("us-west-2", "http://usw2.payments.sandbox/healthz", "sandbox"),
        ("webhook inject", "http://control.payments.sandbox/outages/us-east-1", "sandbox"),
        ("webhook rollback", "http://control.payments.sandbox/outages/us-east-1", "sandbox"),
    ]


def test_both_reports_state_the_load_the_drill_put_on_each_target_as_the_assessment_counted_it() -> None:
    bundle = evidence_bundle(DRILL, targets=TARGETS)
    assert bundle.assessment is not None and bundle.assessment.load
    load = bundle.assessment.load[0]
    row = (f"| {load.vantage} | {load.target} | {load.sent} | {load.watch} | {load.average_per_s:g} "
           f"| {load.peak_per_s} |")

    report = render_markdown(bundle)
    page = render_html(bundle)

    assert row in report[report.index("## Targets"):report.index("## Findings")]
    section = page[page.index('<section id="targets">'):page.index('<section id="findings">')]
    assert 'id="load"' in section and f'<td class="num">{load.peak_per_s}</td>' in section
