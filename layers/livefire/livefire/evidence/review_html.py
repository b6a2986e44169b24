"""The review sections of report.html: "What to change" and "Controls evidenced" (the report.md side and what
they show: ``review.py``)."""

from __future__ import annotations

from livefire.evidence.bundle import EvidenceBundle
from livefire.evidence.markup import pill, table, text
from livefire.evidence.review import CONTROLS_INTRO, NOTHING_TO_CHANGE, unassessed


def _what_to_change(bundle: EvidenceBundle) -> str:
    head = '<section id="what-to-change"><h2>What to change</h2>'
    assessment = bundle.assessment
    if assessment is None:
        return f"{head}<p>{text(unassessed(bundle))}</p></section>"
    if not assessment.recommendations:
        return f"{head}<p>{text(NOTHING_TO_CHANGE)}</p></section>"
    items = []
    for advice in assessment.recommendations:
        where = f" ({advice.region})" if advice.region else ""
        parts = [f"<h3>{text(advice.title + where)}</h3>", f"<p><strong>Because:</strong> {text(advice.because)}</p>",
                 f"<p><strong>Change:</strong> {text(advice.change)}</p>"]
        if advice.findings:
            parts.append(f"<p><strong>Findings:</strong> {text(', '.join(advice.findings))}</p>")
        if advice.yaml:
            parts.append(f'<pre class="yaml">{text(advice.yaml)}</pre>')
        items.append(f'<li class="recommendation" data-rule="{text(advice.id)}">{"".join(parts)}</li>')
    return f"{head}<ol>{''.join(items)}</ol></section>"


def _controls(bundle: EvidenceBundle) -> str:
    rows = [(text(c.control), pill(c.status),
             text(", ".join(f"{f.id} {f.status}" for f in c.findings))) for c in bundle.controls]
    return (f'<section id="controls"><h2>Controls evidenced</h2><p>{text(CONTROLS_INTRO)}</p>'
            f"{table(['Control', 'Status', 'Findings'], rows)}</section>")


def review_html(bundle: EvidenceBundle) -> list[str]:
    """The two report.html sections, for every drill."""
    return [_what_to_change(bundle), _controls(bundle)]
