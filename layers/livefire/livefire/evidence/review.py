"""The review sections of both reports: "What to change" (assessment.json ``recommendations``, made by
assessment/recommendations.py) and "Controls evidenced" (the bundle's ``controls``, made by evidence/controls.py).
This module holds the report.md sections; ``review_html`` the report.html ones.
"""

from __future__ import annotations

from livefire.evidence.bundle import EvidenceBundle

NOTHING_TO_CHANGE = ("Nothing: no rule found a measurement that calls for a change (every objective met with "
                     "margin, the audited mesh posture complete).")
CONTROLS_INTRO = ("Each control this deployment's mapping names, the findings of this drill that evidence it and "
                  "their status; NOT_EVIDENCED: this drill has none of them. Identifiers only: read each standard "
                  "for what it requires.")


def unassessed(bundle: EvidenceBundle) -> str:
    return f"Nothing measured to recommend from: the drill ended with outcome {bundle.outcome} before it was judged."


def review_markdown(bundle: EvidenceBundle) -> list[list[str]]:
    """The two report.md sections, for every drill."""
    assessment = bundle.assessment
    change = ["## What to change", ""]
    if assessment is None:
        change.append(unassessed(bundle))
    elif not assessment.recommendations:
        change.append(NOTHING_TO_CHANGE)
    for number, advice in enumerate(assessment.recommendations if assessment else [], start=1):
        where = f" ({advice.region})" if advice.region else ""
        change += [f"### {number}. {advice.title}{where}", "", f"- **Because:** {advice.because}",
                   f"- **Change:** {advice.change}"]
        if advice.findings:
            change.append(f"- **Findings:** {', '.join(advice.findings)}")
        if advice.yaml:
            change += ["", "```yaml", advice.yaml.rstrip("\n"), "```"]
        change.append("")
    controls = ["## Controls evidenced", "", CONTROLS_INTRO, "", "| Control | Status | Findings |", "|---|---|---|"]
    controls += [f"| {c.control} | {c.status} | "
                 f"{', '.join(f'{f.id} {f.status}' for f in c.findings) or '—'} |" for c in bundle.controls]
    return [change[:-1] if change[-1] == "" else change, controls]
