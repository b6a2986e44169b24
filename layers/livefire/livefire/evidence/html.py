"""report.html: one self-contained page (inline CSS and SVG, no scripts, nothing fetched) that prints well.

Verdict first, the targets (real or sandbox) and the findings; then a timeline per endpoint (success/failure
over time, who served, and markers for injection, rollback, detection and recovery), recovery, availability and
latency per phase, the faults with what they changed and whether the rollback put everything back, the mesh
posture, the cost of the drill, the spec, and relative links to every raw artifact.
"""

from __future__ import annotations

import yaml

from livefire.assessment import Assessment
from livefire.evidence.bundle import EvidenceBundle
from livefire.evidence.fault_diff import faults_section
from livefire.evidence.markdown import DASH
from livefire.evidence.markup import UNJUDGED_COLOUR, VERDICT_COLOURS, facts, link, num, pill, table, text
from livefire.evidence.mesh_html import mesh_html
from livefire.evidence.replication_html import replication_html
from livefire.evidence.report import (
    LOAD_HEADER,
    LOAD_NOTE,
    REACH_WORDS,
    bracket_text,
    chain_text,
    format_number,
    iso_time,
    load_rows,
    signer_text,
    since,
)
from livefire.evidence.review_html import review_html
from livefire.evidence.timeline import timelines_section
from livefire.faults.refusal import refusal_lines

CSS = """
:root { color-scheme: light; }
* { -webkit-print-color-adjust: exact; print-color-adjust: exact; box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328;
       margin: 0 auto; max-width: 1000px; padding: 16px 20px 40px; background: #fff; }
h1 { font-size: 26px; margin: 0; } h2 { font-size: 19px; margin: 28px 0 8px; border-bottom: 1px solid #d0d7de;
       padding-bottom: 4px; } h3 { font-size: 15px; margin: 18px 0 6px; }
.verdict { color: #fff; padding: 16px 20px; border-radius: 6px; }
.verdict .reason { font-size: 15px; margin-top: 4px; }
.verdict .label { font-size: 40px; font-weight: 700; letter-spacing: 1px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 4px 7px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.facts td:first-child { width: 170px; font-weight: 600; background: #f6f8fa; }
.pill { display: inline-block; padding: 0 8px; border-radius: 10px; color: #fff; font-weight: 600; font-size: 12px; }
.muted { color: #656d76; } .ok { color: #116329; } .bad { color: #a40e26; }
code, pre { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; padding: 8px; overflow-x: auto; white-space: pre-wrap; }
.legend span.swatch { display: inline-block; width: 12px; height: 12px; vertical-align: -2px; margin: 0 4px 0 10px;
       border: 1px solid #8c959f; }
figure { margin: 10px 0 14px; break-inside: avoid; page-break-inside: avoid; }
figcaption { font-weight: 600; margin-bottom: 2px; }
svg text { font: 11px system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; fill: #1f2328; }
.diff td.path { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.diff .removed { background: #ffebe9; } .diff .added { background: #dafbe1; }
section { break-inside: auto; }
@media print { body { max-width: none; padding: 0; font-size: 12px; } h2 { break-after: avoid; }
  .artifacts a::after { content: " (" attr(href) ")"; color: #656d76; } }
"""


def _header(bundle: EvidenceBundle) -> str:
    spec, assessment, verdict = bundle.spec, bundle.assessment, bundle.verdict
    colour = VERDICT_COLOURS.get(verdict, UNJUDGED_COLOUR)
    rows: list[tuple[str, object]] = [
        ("Service", spec.metadata.service), ("Pattern", spec.pattern), ("Outcome", bundle.outcome),
        ("Fault", f"{spec.fault.kind} in {spec.fault.region} ({spec.fault.subject})"),
        ("Drill id", bundle.drill_id), ("Execution", bundle.execution_arn),
        ("Evidence chain", chain_text(bundle)), ("Manifest signed by", signer_text(bundle)),
    ]
    if assessment is not None:
        rows += [
            ("Injected", iso_time(assessment.injected_at_ms)), ("Restored", iso_time(assessment.restored_at_ms)),
            ("RTO", f"{format_number(assessment.rto_seconds, 's')} {DASH} {assessment.rto_note}"),
            ("Failback", f"{format_number(assessment.failback_seconds, 's')} {DASH} {assessment.failback_note}"),
        ]
    return (
        f'<header><div class="verdict" id="verdict" style="background:{colour}">'
        f'<div class="label">{text(verdict)}</div><div><strong>{text(spec.metadata.name)}</strong></div>'
        f'<div class="reason">{text(bundle.verdict_reason)}</div></div>{facts(rows)}</header>'
    )


def _targets(bundle: EvidenceBundle) -> str:
    if not bundle.targets:
        return ""
    rows = [(text(t.target), f"<code>{text(t.url)}</code>", text(REACH_WORDS[t.reach])) for t in bundle.targets]
    load = [[text(str(cell)) if i < 2 else f'<td class="num">{text(str(cell))}</td>' for i, cell in enumerate(row)]
            for row in load_rows(bundle)]
    load_table = (f'<p id="load">{text(LOAD_NOTE.replace("`", ""))}</p>{table(LOAD_HEADER, load)}' if load else "")
    return (f'<section id="targets"><h2>Targets</h2>{table(["Target", "URL", "Reached"], rows)}'
            f'{load_table}</section>')


def _findings(bundle: EvidenceBundle) -> str:
    if bundle.assessment is None:
        return (f'<section id="findings"><h2>Findings</h2><p>No assessment: the drill ended with outcome '
                f'{text(bundle.outcome)} before it was judged.</p></section>')
    rows = [
        (f"{text(f.title)} <code>{text(f.id)}</code>", num(f.measured, f.unit), num(f.threshold, f.unit),
         pill(f.status), text(f.detail))
        for f in bundle.assessment.findings
    ]
    findings = table(["Finding", "Measured", "Threshold", "Status", "Detail"], rows)
    return f'<section id="findings"><h2>Findings</h2>{findings}</section>'


def _recovery(assessment: Assessment) -> str:
    injected, restored = assessment.injected_at_ms, assessment.restored_at_ms

    rows = []
    for label, recoveries, origin in (("RTO", assessment.rto_by_vantage, injected),
                                      ("Failback", assessment.failback_by_vantage, restored)):
        for r in recoveries:
            rows.append((text(label), text(r.vantage), num(r.seconds, "s"), text(bracket_text(r.bracket, origin)),
                         text(r.note)))
    detections = ", ".join(f"{d.target} from {d.vantage}: {format_number(d.seconds, 's')}"
                           for d in assessment.detection) or DASH
    outage = assessment.max_outage
    longest = (f"{outage.duration_ms:.1f} ms, {outage.failures} failed probes from {outage.vantage} "
               f"({since(outage.from_ms, injected)} → {since(outage.to_ms, injected)})" if outage else "none")
    return (
        '<section id="recovery"><h2>Recovery</h2>'
        f"{table(['', 'Vantage', 'Seconds', 'Bracket [last failure, first sustained success]', 'Note'], rows)}"
        f"<p><strong>Detection</strong> (injection → first failure): {text(detections)}<br>"
        f"<strong>Longest outage</strong> at the entrypoint: {text(longest)}</p></section>"
    )


def _phase_stats(assessment: Assessment) -> str:
    windows = [(text(p.name), text(since(p.from_ms, assessment.injected_at_ms)),
                text(since(p.to_ms, assessment.injected_at_ms))) for p in assessment.phases]
    rows = [
        (text(s.phase), text(s.vantage), text(s.target), num(s.sent, ""), num(s.ok, ""),
         num(s.availability_pct, "%"), num(s.latency.p50_ms, "ms"), num(s.latency.p95_ms, "ms"),
         num(s.latency.p99_ms, "ms"), text(", ".join(f"{k}: {v}" for k, v in s.errors.items())),
         text(", ".join(f"{k}: {v}" for k, v in s.served_by.items())))
        for s in assessment.stats
    ]
    header = ["Phase", "Vantage", "Target", "Sent", "OK", "Availability", "p50", "p95", "p99", "Errors",
              "Served by"]
    served = [(text(s.vantage), text(s.region or "(not named)"), text(s.version), text(since(s.from_ms,
               assessment.injected_at_ms)), text(since(s.to_ms, assessment.injected_at_ms)), num(s.samples, ""))
              for s in assessment.served_by_timeline]
    return (
        '<section id="phases"><h2>Availability and latency per phase</h2>'
        f"{table(['Phase', 'From', 'To'], windows)}{table(header, rows)}"
        '<h3>Who served the entrypoint</h3>'
        f"{table(['Vantage', 'Region', 'Version', 'From', 'To', 'Probes'], served)}</section>"
    )


def _posture(bundle: EvidenceBundle) -> str:
    head = '<section id="posture"><h2>Mesh posture</h2>'
    if bundle.posture is None:
        return f"{head}<p>The mesh posture was not audited for this drill.</p></section>"
    parts = []
    for audit in bundle.posture:
        where = f"{audit.region} ({audit.cluster}): host {audit.host} in namespace {audit.namespace}"
        parts.append(f"<h3>{text(where)}</h3>")
        if audit.skipped:
            parts.append(f"<p>Not audited: {text(audit.skipped)}</p>")
        rows = [(text(f.check), pill("PASS" if f.ok else "FAIL"), text(f.detail)) for f in audit.findings]
        if rows:
            parts.append(table(["Check", "Result", "Detail"], rows))
    return f"{head}{''.join(parts)}</section>"


def _cost(bundle: EvidenceBundle) -> str:
    head = '<section id="cost"><h2>Cost of the drill</h2>'
    cost = bundle.cost
    if cost is None:
        return f"{head}<p>Not computed for this drill.</p></section>"
    parts = [f"<p><strong>Total: {text(f'${cost.total_usd:.6f}')}</strong></p>", facts([
        ("state transitions", cost.state_transitions), ("lambda gb seconds", cost.lambda_gb_seconds),
        ("lambda invocations", cost.lambda_invocations),
    ])]
    if cost.lines:
        rows = [(text(line.item), text(line.quantity), text(line.usd)) for line in cost.lines]
        parts.append(table(["item", "quantity", "usd"], rows))
    parts.append(f'<p class="muted">{text(cost.note)}</p>')
    return head + "".join(parts) + "</section>"


def _artifacts(bundle: EvidenceBundle) -> str:
    items = "".join(
        f"<li>{link(name)}{'' if size is None else f' <span class=muted>({size:,} bytes)</span>'}</li>"
        for name, size in sorted(bundle.artifacts.items())
    )
    return f'<section id="artifacts" class="artifacts"><h2>Raw artifacts</h2><ul>{items}</ul></section>'


def render_html(bundle: EvidenceBundle) -> str:
    """report.html of one drill."""
    spec_yaml = yaml.safe_dump(bundle.spec.to_document(), sort_keys=False, default_flow_style=False)
    refusals = "".join(f'<p class="refused"><strong>{text(line)}</strong></p>' for line in refusal_lines(bundle.faults))
    sections = [*([refusals] if refusals else []), _header(bundle), _targets(bundle), _findings(bundle),
                timelines_section(bundle), *review_html(bundle)]
    if bundle.assessment is not None:
        sections += [_recovery(bundle.assessment), _phase_stats(bundle.assessment), replication_html(bundle.assessment),
                     mesh_html(bundle.assessment, bundle.spec)]
    sections += [faults_section(bundle), _posture(bundle), _cost(bundle)]
    if bundle.error:
        sections.append(f'<section id="error"><h2>Error</h2><pre>{text(bundle.error)}</pre></section>')
    sections += [f'<section id="spec"><h2>Spec</h2><pre>{text(spec_yaml)}</pre></section>', _artifacts(bundle)]
    title = f"Drill {bundle.spec.metadata.name}: {bundle.verdict}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{text(title)}</title><style>{CSS}</style></head>\n<body>\n"
        + "\n".join(sections) + "\n</body></html>\n"
    )
