"""The stakeholder summary: a short message about every finished drill on an optional SNS topic (template
parameter ``SummaryTopicArn``, variable ``SUMMARY_TOPIC_ARN``), besides the ``Drill Completed`` event
(docs/architecture.md §8). A topic that cannot be reached fails the step, as the event does: the guardian runs and
the failure is seen."""

from __future__ import annotations

import os
from typing import Any

from livefire.assessment import Assessment
from livefire.contracts import Plan

TOPIC_VARIABLE = "SUMMARY_TOPIC_ARN"
SUBJECT_LIMIT = 100  # SNS's limit on an email subject


def summary_text(plan: Plan, verdict: str, assessment: Assessment | None, report_url: str) -> tuple[str, str]:
    """The subject and the body: verdict, RTO, RPO, the findings that did not pass, what to change, the report."""
    rto = assessment.rto_seconds if assessment else None
    rpos = [r.seconds for c in (assessment.data_checks if assessment else []) for r in c.rpo if r.seconds is not None]
    lines = [f"Drill {plan.drill_id} of {plan.service} ({plan.pattern}): {verdict}",
             f"RTO: {'not measured' if rto is None else f'{rto:.3f} s'}",
             f"RPO: {f'{max(rpos):.3f} s' if rpos else 'not measured'}"]
    if assessment is not None:
        open_ = [f"{f.id} {f.status}" for f in assessment.findings if f.status != "PASS"]
        lines.append(f"Findings not passed: {', '.join(open_) if open_ else 'none'}")
        lines += [f"To change: {r.title}" for r in assessment.recommendations]
    lines.append(f"Report: {report_url}")
    subject = f"livefire {plan.service}: {verdict} ({plan.drill_id})"
    return subject[:SUBJECT_LIMIT], "\n".join(lines) + "\n"


def publish_summary(sns: Any, topic_arn: str, plan: Plan, verdict: str, assessment: Assessment | None,
                    report_url: str) -> None:
    subject, body = summary_text(plan, verdict, assessment, report_url)
    sns.publish(TopicArn=topic_arn, Subject=subject, Message=body)


def summary_topic() -> str:
    """The deployment's summary topic ARN; empty when none is set."""
    return os.environ.get(TOPIC_VARIABLE, "")
