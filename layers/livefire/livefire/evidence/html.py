"""report.html: one self-contained page (inline CSS and SVG, no scripts, nothing fetched) that prints well.

Verdict and findings first; then a timeline per endpoint (success/failure over time, who served, and markers
for injection, rollback, detection and recovery), recovery, availability and latency per phase, the faults
with what they changed and whether the rollback put everything back, the mesh posture, the cost of the
drill, the spec, and relative links to every raw artifact.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import quote

import yaml

from livefire.assessment import Assessment, PhaseWindow
from livefire.contracts import Sample
from livefire.evidence.report import DASH, bracket_text, format_number, iso_time, since
from livefire.spec import DrillSpec

VERDICT_COLOURS = {"PASS": "#116329", "FAIL": "#a40e26", "INCONCLUSIVE": "#7d4e00"}
UNJUDGED_COLOUR = "#424a53"  # NOT_STEADY, ERROR, ABORTED: the drill ended without a judgement
OK_COLOUR, FAIL_COLOUR, MIXED_COLOUR = "#2da44e", "#cf222e", "#d4a72c"
SERVED_PALETTE = ("#0969da", "#8250df", "#bf3989", "#1b7c83", "#bc4c00", "#6e7781")
NOT_SERVED_COLOUR = "#eaeef2"
PHASE_TINTS = {"baseline": "#d0d7de", "fault": "#ffcecb", "recovery": "#c6efce"}
MARKER_COLOURS = {
    "inject": "#a40e26", "rollback": "#0969da", "detect": "#bc4c00", "recover": "#116329", "failback": "#8250df",
}
# Fields the API server manages: they change on every write, so a diff of them says nothing about the fault.
SERVER_MANAGED = ("metadata.resourceVersion", "metadata.generation", "metadata.managedFields",
                  "metadata.creationTimestamp", "metadata.uid")

_WIDTH, _LEFT, _RIGHT = 960, 120, 16
_PLOT = _WIDTH - _LEFT - _RIGHT
_MAX_BINS = 400
_MARKER_ROWS = 3
_PHASE_Y, _PHASE_H = 40, 14
_LANE_Y, _LANE_H, _LANE_GAP = 58, 20, 6
_NICE_STEPS_S = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)

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


@dataclass(frozen=True)
class ReportContext:
    """Everything report.html shows; names of artifacts are relative to the drill's evidence folder."""

    spec: DrillSpec
    assessment: Assessment | None
    outcome: str
    drill_id: str
    execution_arn: str
    faults: Sequence[Mapping[str, Any]] = ()
    snapshots: Mapping[str, Any] = field(default_factory=dict)  # e.g. faults/<id>-before.json → parsed JSON
    samples: Sequence[Sample] = ()
    posture: Sequence[Mapping[str, Any]] | None = None
    cost: Mapping[str, Any] | None = None  # cost.json: livefire.cost.DrillCost.to_report()
    error: str | None = None
    artifacts: Mapping[str, int | None] = field(default_factory=dict)  # name → size in bytes

    @property
    def verdict(self) -> str:
        if self.assessment is not None:
            return self.assessment.verdict
        return self.outcome if self.outcome != "COMPLETED" else "ERROR"


def _e(value: object) -> str:
    return escape(DASH if value is None or value == "" else str(value), quote=True)


def _table(header: Sequence[str] | None, rows: Sequence[Sequence[str]], *, css: str = "") -> str:
    """Cells are HTML already (escape what you put in); a cell may bring its own ``<td>``."""
    head = "" if header is None else "<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr></thead>"
    body = "".join("<tr>" + "".join(cell if cell.startswith("<td") else f"<td>{cell}</td>" for cell in row)
                   + "</tr>" for row in rows)
    return f'<table class="{css}">{head}<tbody>{body}</tbody></table>'


def _facts(rows: Sequence[tuple[str, object]]) -> str:
    return _table(None, [(_e(key), _e(value)) for key, value in rows], css="facts")


def _num(value: float | None, unit: str) -> str:
    text = format_number(value, unit) if unit or value is None else f"{value:g}"
    return f'<td class="num">{_e(text)}</td>'


def _pill(status: str) -> str:
    colour = VERDICT_COLOURS.get(status, UNJUDGED_COLOUR)
    return f'<span class="pill" style="background:{colour}">{_e(status)}</span>'


def _href(name: str) -> str:
    """A relative URL: everything but the path separators percent-encoded, so no name can become a scheme."""
    return escape(quote(name, safe="/"), quote=True)


def _link(name: str) -> str:
    return f'<a href="{_href(name)}">{_e(name)}</a>'


# ---------------------------------------------------------------------------------------------- header


def _header(ctx: ReportContext) -> str:
    spec, assessment = ctx.spec, ctx.assessment
    verdict = ctx.verdict
    reason = (assessment.verdict_reason if assessment is not None
              else f"the drill ended with outcome {ctx.outcome} and was not assessed")
    colour = VERDICT_COLOURS.get(verdict, UNJUDGED_COLOUR)
    facts = [
        ("Service", spec.metadata.service), ("Pattern", spec.pattern), ("Outcome", ctx.outcome),
        ("Fault", f"{spec.fault.kind} in {spec.fault.region} ({spec.fault.subject})"),
        ("Drill id", ctx.drill_id), ("Execution", ctx.execution_arn),
    ]
    if assessment is not None:
        facts += [
            ("Injected", iso_time(assessment.injected_at_ms)), ("Restored", iso_time(assessment.restored_at_ms)),
            ("RTO", f"{format_number(assessment.rto_seconds, 's')} {DASH} {assessment.rto_note}"),
            ("Failback", f"{format_number(assessment.failback_seconds, 's')} {DASH} {assessment.failback_note}"),
        ]
    return (
        f'<header><div class="verdict" id="verdict" style="background:{colour}">'
        f'<div class="label">{_e(verdict)}</div><div><strong>{_e(spec.metadata.name)}</strong></div>'
        f'<div class="reason">{_e(reason)}</div></div>{_facts(facts)}</header>'
    )


def _findings(ctx: ReportContext) -> str:
    if ctx.assessment is None:
        return (f'<section id="findings"><h2>Findings</h2><p>No assessment: the drill ended with outcome '
                f'{_e(ctx.outcome)} before it was judged.</p></section>')
    rows = [
        (f"{_e(f.title)} <code>{_e(f.id)}</code>", _num(f.measured, f.unit), _num(f.threshold, f.unit),
         _pill(f.status), _e(f.detail))
        for f in ctx.assessment.findings
    ]
    table = _table(["Finding", "Measured", "Threshold", "Status", "Detail"], rows)
    return f'<section id="findings"><h2>Findings</h2>{table}</section>'


# ---------------------------------------------------------------------------------------------- timeline


@dataclass(frozen=True)
class _Marker:
    at_ms: float
    label: str


@dataclass(frozen=True)
class _Axis:
    start_ms: float
    end_ms: float
    origin_ms: float

    def x(self, ms: float) -> float:
        span = max(self.end_ms - self.start_ms, 1.0)
        return _LEFT + (min(max(ms, self.start_ms), self.end_ms) - self.start_ms) / span * _PLOT


def _tick_step(span_s: float) -> float:
    return next((step for step in _NICE_STEPS_S if span_s / step <= 12), _NICE_STEPS_S[-1])


def _served_label(sample: Sample) -> str:
    region = sample.served_by or "(not named)"
    return f"{region}@{sample.version}" if sample.version else region


def _bins(series: Sequence[Sample], axis: _Axis, gap_ms: float) -> list[tuple[str | None, str | None]]:
    """Per pixel-column bin: the outcome colour and who served; a bin with no probe carries the state of the
    last probe before it forward, unless that probe is older than ``gap_ms`` (then the bin stays empty)."""
    count = _MAX_BINS
    width = max(axis.end_ms - axis.start_ms, 1.0) / count
    ok, bad = [0] * count, [0] * count
    served: list[Counter[str]] = [Counter() for _ in range(count)]
    for sample in series:
        index = min(count - 1, max(0, int((sample.sent_ms - axis.start_ms) / width)))
        if sample.ok:
            ok[index] += 1
            served[index][_served_label(sample)] += 1
        else:
            bad[index] += 1
    out: list[tuple[str | None, str | None]] = []
    last: tuple[str | None, str | None] = (None, None)
    last_seen = -math.inf
    for index in range(count):
        if ok[index] or bad[index]:
            colour = MIXED_COLOUR if ok[index] and bad[index] else OK_COLOUR if ok[index] else FAIL_COLOUR
            label = served[index].most_common(1)[0][0] if served[index] else None
            last, last_seen = (colour, label), axis.start_ms + (index + 1) * width
            out.append(last)
        elif axis.start_ms + index * width - last_seen <= gap_ms:
            out.append(last)
        else:
            out.append((None, None))
    return out


def _runs(values: Sequence[str | None]) -> list[tuple[int, int, str]]:
    runs: list[tuple[int, int, str]] = []
    start = 0
    for index in range(1, len(values) + 1):
        if index == len(values) or values[index] != values[start]:
            if values[start] is not None:
                runs.append((start, index, str(values[start])))
            start = index
    return runs


def _lane(values: Sequence[str | None], y: int, colour_of: Mapping[str, str] | None) -> str:
    step = _PLOT / max(len(values), 1)
    rects = []
    for start, end, value in _runs(values):
        fill = colour_of.get(value, SERVED_PALETTE[-1]) if colour_of is not None else value
        title = f"<title>{_e(value)}</title>" if colour_of is not None else ""
        rects.append(f'<rect x="{_LEFT + start * step:.1f}" y="{y}" width="{(end - start) * step:.1f}" '
                     f'height="{_LANE_H}" fill="{fill}">{title}</rect>')
    return "".join(rects)


def _phase_lane(phases: Sequence[PhaseWindow], axis: _Axis) -> str:
    bands = [f'<text x="{_LEFT - 8}" y="{_PHASE_Y + 11}" text-anchor="end">phase</text>']
    for phase in phases:
        if phase.from_ms is None or phase.to_ms is None:
            continue
        x0, x1 = axis.x(phase.from_ms), axis.x(phase.to_ms)
        bands.append(f'<rect x="{x0:.1f}" y="{_PHASE_Y}" width="{max(x1 - x0, 0):.1f}" height="{_PHASE_H}" '
                     f'fill="{PHASE_TINTS.get(phase.name, "#ffffff")}"><title>{_e(phase.name)}</title></rect>')
        if x1 - x0 > 60:
            bands.append(f'<text x="{x0 + 4:.1f}" y="{_PHASE_Y + 11}">{_e(phase.name)}</text>')
    return "".join(bands)


def _markers(markers: Sequence[_Marker], axis: _Axis, bottom: int) -> str:
    out, rows_end = [], [-math.inf] * _MARKER_ROWS
    for marker in sorted(markers, key=lambda m: m.at_ms):
        x = axis.x(marker.at_ms)
        # Close markers get their labels on different rows; when every row is taken, the least recent one.
        row = next((r for r in range(_MARKER_ROWS) if x - rows_end[r] >= 64), rows_end.index(min(rows_end)))
        rows_end[row] = x
        colour = MARKER_COLOURS.get(marker.label, "#1f2328")
        offset = f"{(marker.at_ms - axis.origin_ms) / 1000.0:+.3f} s"
        out.append(
            f'<g><title>{_e(marker.label)} at {_e(iso_time(marker.at_ms))} ({_e(offset)})</title>'
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{4 + row * 12}" y2="{bottom}" stroke="{colour}" '
            f'stroke-width="1.5" stroke-dasharray="4 2"/>'
            f'<text x="{x + 3:.1f}" y="{12 + row * 12}" style="fill:{colour}">{_e(marker.label)}</text></g>'
        )
    return "".join(out)


def _axis_ticks(axis: _Axis, y: int) -> str:
    span_s = (axis.end_ms - axis.start_ms) / 1000.0
    step = _tick_step(span_s)
    first = math.ceil((axis.start_ms - axis.origin_ms) / 1000.0 / step)
    last = math.floor((axis.end_ms - axis.origin_ms) / 1000.0 / step)
    ticks = [f'<line x1="{_LEFT}" x2="{_LEFT + _PLOT}" y1="{y}" y2="{y}" stroke="#8c959f"/>']
    for k in range(first, last + 1):
        seconds = k * step
        x = axis.x(axis.origin_ms + seconds * 1000.0)
        ticks.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y}" y2="{y + 4}" stroke="#8c959f"/>'
                     f'<text x="{x:.1f}" y="{y + 15}" text-anchor="middle">{seconds:+g} s</text>')
    return "".join(ticks)


def _timeline_svg(title: str, series: Sequence[Sample], axis: _Axis, phases: Sequence[PhaseWindow],
                  markers: Sequence[_Marker], colours: Mapping[str, str], gap_ms: float) -> str:
    bins = _bins(series, axis, gap_ms)
    outcome_y, served_y = _LANE_Y, _LANE_Y + _LANE_H + _LANE_GAP
    bottom = served_y + _LANE_H + 4
    height = bottom + 24
    failed = sum(1 for s in series if not s.ok)
    label = f"{title}: {len(series)} probes, {failed} failed"
    return (
        f'<svg class="timeline" role="img" aria-label="{_e(label)}" viewBox="0 0 {_WIDTH} {height}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet"><title>{_e(label)}</title>'
        f'<rect x="0" y="0" width="{_WIDTH}" height="{height}" fill="#ffffff"/>'
        f"{_phase_lane(phases, axis)}"
        f'<text x="{_LEFT - 8}" y="{outcome_y + 14}" text-anchor="end">success / failure</text>'
        f'<rect x="{_LEFT}" y="{outcome_y}" width="{_PLOT}" height="{_LANE_H}" fill="none" stroke="#d0d7de"/>'
        f"{_lane([b[0] for b in bins], outcome_y, None)}"
        f'<text x="{_LEFT - 8}" y="{served_y + 14}" text-anchor="end">served by</text>'
        f'<rect x="{_LEFT}" y="{served_y}" width="{_PLOT}" height="{_LANE_H}" fill="{NOT_SERVED_COLOUR}"/>'
        f"{_lane([b[1] for b in bins], served_y, colours)}"
        f"{_axis_ticks(axis, bottom)}{_markers(markers, axis, bottom)}</svg>"
    )


def _served_colours(ctx: ReportContext) -> dict[str, str]:
    """One colour per region (in the spec's order), whatever version it served."""
    regions = [r.name for r in ctx.spec.regions]
    labels = sorted({_served_label(s) for s in ctx.samples if s.ok})
    for label in labels:
        region = label.split("@", 1)[0]
        if region not in regions:
            regions.append(region)
    return {label: SERVED_PALETTE[min(regions.index(label.split("@", 1)[0]), len(SERVED_PALETTE) - 1)]
            for label in labels}


def _phases_of(ctx: ReportContext, start: float, end: float) -> list[PhaseWindow]:
    if ctx.assessment is not None:  # the baseline runs from the first probe (the steady-state check's too)
        return [phase.model_copy(update={"from_ms": start}) if phase.name == "baseline" else phase
                for phase in ctx.assessment.phases]
    injected = [float(f["injected_at_ms"]) for f in ctx.faults if isinstance(f.get("injected_at_ms"), int | float)]
    if not injected:
        return [PhaseWindow(name="baseline", from_ms=start, to_ms=end)]
    return [PhaseWindow(name="baseline", from_ms=start, to_ms=min(injected)),
            PhaseWindow(name="fault", from_ms=min(injected), to_ms=end)]


def _endpoint_markers(ctx: ReportContext, vantage: str, target: str) -> list[_Marker]:
    assessment = ctx.assessment
    markers: list[_Marker] = []
    if assessment is None:
        for fault in ctx.faults:
            for key, label in (("injected_at_ms", "inject"), ("restored_at_ms", "rollback")):
                if isinstance(fault.get(key), int | float):
                    markers.append(_Marker(float(fault[key]), label))
        return markers
    if assessment.injected_at_ms is not None:
        markers.append(_Marker(assessment.injected_at_ms, "inject"))
    if assessment.restored_at_ms is not None:
        markers.append(_Marker(assessment.restored_at_ms, "rollback"))
    markers += [_Marker(d.first_failure_ms, "detect") for d in assessment.detection
                if (d.vantage, d.target) == (vantage, target) and d.first_failure_ms is not None]
    if target == assessment.entrypoint:
        for recoveries, label in ((assessment.rto_by_vantage, "recover"), (assessment.failback_by_vantage, "failback")):
            markers += [_Marker(r.bracket.first_success_ms, label) for r in recoveries
                        if r.vantage == vantage and r.bracket is not None]
    return markers


def _legend(colours: Mapping[str, str]) -> str:
    def swatch(colour: str, text: str) -> str:
        return f'<span class="swatch" style="background:{colour}"></span>{_e(text)}'

    parts = [swatch(OK_COLOUR, "success"), swatch(FAIL_COLOUR, "failure"), swatch(MIXED_COLOUR, "both"),
             *[swatch(c, f"served by {label}") for label, c in colours.items()],
             *[swatch(c, f"{phase} phase") for phase, c in PHASE_TINTS.items()]]
    return f'<p class="legend">{"".join(parts)}</p>'


def _timelines(ctx: ReportContext) -> str:
    head = '<section id="timeline"><h2>Timeline per endpoint</h2>'
    if not ctx.samples:
        return f"{head}<p>No probe samples were recorded.</p></section>"
    start = min(s.sent_ms for s in ctx.samples)
    end = max(s.ended_ms for s in ctx.samples)
    injected = ctx.assessment.injected_at_ms if ctx.assessment is not None else None
    axis = _Axis(start, max(end, start + 1.0), injected if injected is not None else start)
    colours = _served_colours(ctx)
    phases = _phases_of(ctx, start, end)
    gap_ms = 3 * ctx.spec.probes.interval * 1000.0
    roles = {ctx.assessment.entrypoint: "entrypoint"} if ctx.assessment and ctx.assessment.entrypoint else {}
    groups: dict[tuple[str, str], list[Sample]] = {}
    for sample in sorted(ctx.samples, key=lambda s: (s.sent_ms, s.seq)):
        groups.setdefault((sample.target, sample.vantage), []).append(sample)
    # The entrypoint first: it is what users hit.
    order = sorted(groups, key=lambda key: (roles.get(key[0]) != "entrypoint", key))
    figures = []
    for target, vantage in order:
        role = f" ({roles[target]})" if target in roles and roles[target] != target else ""
        title = f"{target}{role} from vantage {vantage}"
        svg = _timeline_svg(title, groups[(target, vantage)], axis, phases,
                            _endpoint_markers(ctx, vantage, target), colours, gap_ms)
        figures.append(f"<figure><figcaption>{_e(title)}</figcaption>{svg}</figure>")
    origin = "the injection" if injected is not None else "the first probe"
    note = f'<p class="muted">Seconds from {origin} ({_e(iso_time(axis.origin_ms))}).</p>'
    return f"{head}{_legend(colours)}{note}{''.join(figures)}</section>"


# ---------------------------------------------------------------------------------------------- tables


def _recovery(assessment: Assessment) -> str:
    injected, restored = assessment.injected_at_ms, assessment.restored_at_ms

    rows = []
    for label, recoveries, origin in (("RTO", assessment.rto_by_vantage, injected),
                                      ("Failback", assessment.failback_by_vantage, restored)):
        for r in recoveries:
            rows.append((_e(label), _e(r.vantage), _num(r.seconds, "s"), _e(bracket_text(r.bracket, origin)),
                         _e(r.note)))
    detections = ", ".join(f"{d.target} from {d.vantage}: {format_number(d.seconds, 's')}"
                           for d in assessment.detection) or DASH
    outage = assessment.max_outage
    longest = (f"{outage.duration_ms:.1f} ms, {outage.failures} failed probes from {outage.vantage} "
               f"({since(outage.from_ms, injected)} → {since(outage.to_ms, injected)})" if outage else "none")
    return (
        '<section id="recovery"><h2>Recovery</h2>'
        f"{_table(['', 'Vantage', 'Seconds', 'Bracket [last failure, first sustained success]', 'Note'], rows)}"
        f"<p><strong>Detection</strong> (injection → first failure): {_e(detections)}<br>"
        f"<strong>Longest outage</strong> at the entrypoint: {_e(longest)}</p></section>"
    )


def _phase_stats(assessment: Assessment) -> str:
    windows = [(_e(p.name), _e(since(p.from_ms, assessment.injected_at_ms)),
                _e(since(p.to_ms, assessment.injected_at_ms))) for p in assessment.phases]
    rows = [
        (_e(s.phase), _e(s.vantage), _e(s.target), _num(s.sent, ""), _num(s.ok, ""),
         _num(s.availability_pct, "%"), _num(s.latency.p50_ms, "ms"), _num(s.latency.p95_ms, "ms"),
         _num(s.latency.p99_ms, "ms"), _e(", ".join(f"{k}: {v}" for k, v in s.errors.items())),
         _e(", ".join(f"{k}: {v}" for k, v in s.served_by.items())))
        for s in assessment.stats
    ]
    header = ["Phase", "Vantage", "Target", "Sent", "OK", "Availability", "p50", "p95", "p99", "Errors",
              "Served by"]
    served = [(_e(s.vantage), _e(s.region or "(not named)"), _e(s.version), _e(since(s.from_ms,
               assessment.injected_at_ms)), _e(since(s.to_ms, assessment.injected_at_ms)), _num(s.samples, ""))
              for s in assessment.served_by_timeline]
    return (
        '<section id="phases"><h2>Availability and latency per phase</h2>'
        f"{_table(['Phase', 'From', 'To'], windows)}{_table(header, rows)}"
        '<h3>Who served the entrypoint</h3>'
        f"{_table(['Vantage', 'Region', 'Version', 'From', 'To', 'Probes'], served)}</section>"
    )


# ---------------------------------------------------------------------------------------------- faults


def _leaves(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key in value:
            out.update(_leaves(value[key], f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for index, item in enumerate(value):
            out.update(_leaves(item, f"{path}[{index}]"))
        return out
    return {path: value}


def json_diff(before: Any, after: Any) -> list[tuple[str, Any, Any]]:
    """Leaf paths whose value differs (``None`` on one side: absent), server-managed metadata left out."""
    missing = object()
    old, new = _leaves(before), _leaves(after)
    changes = []
    for path in sorted(set(old) | set(new)):
        if path.startswith(SERVER_MANAGED):
            continue
        a, b = old.get(path, missing), new.get(path, missing)
        if a != b:
            changes.append((path, None if a is missing else a, None if b is missing else b))
    return changes


def _json_cell(value: Any, css: str) -> str:
    text = DASH if value is None else json.dumps(value, sort_keys=True)
    if len(text) > 300:
        text = text[:297] + "..."
    return f'<td class="{css}"><code>{_e(text)}</code></td>'


def _diff_table(changes: Sequence[tuple[str, Any, Any]], left: str, right: str) -> str:
    rows = [(f'<td class="path">{_e(path)}</td>', _json_cell(a, "removed"), _json_cell(b, "added"))
            for path, a, b in changes]
    return _table(["Field", left, right], rows, css="diff")


def _fault(ctx: ReportContext, fault: Mapping[str, Any], prefix: str) -> str:
    fault_id = str(fault.get("fault_id") or fault.get("faultId") or "?")
    planned: Mapping[str, Any] = fault["planned"] if isinstance(fault.get("planned"), Mapping) else {}
    what = (f"{planned.get('kind', '?')} on {planned.get('object_kind', '?')} "
            f"{planned.get('namespace', '?')}/{planned.get('object_name', '?')} in {planned.get('region', '?')}")
    facts: list[tuple[str, object]] = [
        ("Status", fault.get("status")), ("Injected", iso_time(fault.get("injected_at_ms"))),
        ("Restored", iso_time(fault.get("restored_at_ms"))), ("Detail", fault.get("detail")),
        ("Lease", planned.get("lease_key")),
    ]
    snapshot_key = str(fault.get("snapshot_key") or "")
    before_name = snapshot_key.removeprefix(prefix)
    names = {moment: before_name.replace("-before.json", f"-{moment}.json") for moment in ("after", "restored")}
    before = ctx.snapshots.get(before_name)
    parts = [f"<h3>Fault {_e(fault_id)}: {_e(what)}</h3>", _facts(facts)]
    if isinstance(before, Mapping) and before.get("kind") in ("fis", "webhook"):
        parts.append(_outside_mesh(before_name, before))
        return "".join(parts)
    if before is None:
        parts.append(f"<p>No snapshot from before the fault ({_e(before_name or 'not recorded')}).</p>")
        return "".join(parts)
    links = " · ".join(_link(n) for n in (before_name, *names.values()) if n in ctx.snapshots)
    parts.append(f"<p>Snapshots: {links}. Server-managed metadata is left out of the comparison.</p>")
    after = ctx.snapshots.get(names["after"])
    if after is None:
        parts.append("<p>No snapshot after the injection: nothing was patched.</p>")
    else:
        parts += ["<p><strong>What the fault changed</strong> (before → after the injection):</p>",
                  _diff_table(json_diff(before, after), "Before", "After injection")]
    restored = ctx.snapshots.get(names["restored"])
    if restored is None:
        parts.append('<p class="bad">No snapshot after the rollback.</p>')
    else:
        left = json_diff(before, restored)
        if left:
            parts += ['<p class="bad"><strong>The rollback left differences</strong> (before → after the '
                      "rollback):</p>", _diff_table(left, "Before", "After rollback")]
        else:
            parts.append('<p class="ok"><strong>Restored exactly:</strong> after the rollback the object equals '
                         "the snapshot taken before the fault.</p>")
    return "".join(parts)


def _outside_mesh(name: str, doc: Mapping[str, Any]) -> str:
    """An FIS experiment's states and stop conditions, or a webhook's calls (the fault's own document)."""
    parts = [f"<p>What started and ended this fault: {_link(name)}.</p>"]
    if doc.get("kind") == "fis":
        parts.append(_facts([
            ("Experiment", doc.get("experimentId")), ("Template", doc.get("experimentTemplateId")),
            ("AWS region", doc.get("region")), ("Stop requested by", doc.get("stopRequestedBy")),
            ("FIS stop condition fired", doc.get("stopConditionFired")),
        ]))
        rows = [(_e(state.get("status")), _e(iso_time(state.get("seenAtMs"))), _e(state.get("reason")))
                for state in doc.get("states") or [] if isinstance(state, Mapping)]
        parts.append(_table(["State", "Seen at", "Reason"], rows))
        return "".join(parts)
    calls = [(_e(c.get("action")), _e(f"{c.get('method')} {c.get('url')}"), _e(iso_time(c.get("sent_at_ms"))),
              _e(c.get("status") if c.get("status") is not None else c.get("error")))
             for c in doc.get("calls") or [] if isinstance(c, Mapping)]
    parts.append(_table(["Call", "Request", "Sent at", "Answer"], calls))
    return "".join(parts)


def _faults(ctx: ReportContext) -> str:
    prefix = f"drills/{ctx.spec.metadata.service}/{ctx.drill_id}/"
    body = "".join(_fault(ctx, f, prefix) for f in ctx.faults) or "<p>No fault was recorded.</p>"
    return f'<section id="faults"><h2>Faults</h2>{body}</section>'


def _posture(ctx: ReportContext) -> str:
    head = '<section id="posture"><h2>Mesh posture</h2>'
    if ctx.posture is None:
        return f"{head}<p>The mesh posture was not audited for this drill.</p></section>"
    parts = []
    for audit in ctx.posture:
        where = (f"{audit.get('region')} ({audit.get('cluster')}): host {audit.get('host')} in namespace "
                 f"{audit.get('namespace')}")
        parts.append(f"<h3>{_e(where)}</h3>")
        if audit.get("skipped"):
            parts.append(f"<p>Not audited: {_e(audit['skipped'])}</p>")
        rows = [(_e(f.get("check")), _pill("PASS" if f.get("ok") else "FAIL"), _e(f.get("detail")))
                for f in audit.get("findings") or []]
        if rows:
            parts.append(_table(["Check", "Result", "Detail"], rows))
    return f"{head}{''.join(parts)}</section>"


def _cost(ctx: ReportContext) -> str:
    head = '<section id="cost"><h2>Cost of the drill</h2>'
    cost = ctx.cost
    if cost is None:
        return f"{head}<p>Not computed for this drill.</p></section>"
    total = cost.get("total_usd")
    parts = [f"<p><strong>Total: {_e(f'${total:.6f}' if isinstance(total, int | float) else total)}</strong></p>"]
    extras = [(key.replace("_", " "), value) for key, value in cost.items()
              if key not in ("total_usd", "lines", "note") and isinstance(value, str | int | float)]
    if extras:
        parts.append(_facts(extras))
    lines = [line for line in cost.get("lines") or [] if isinstance(line, Mapping)]
    if lines:
        keys = list(dict.fromkeys(k for line in lines for k in line))
        parts.append(_table(keys, [[_e(line.get(k)) for k in keys] for line in lines]))
    if cost.get("note"):
        parts.append(f'<p class="muted">{_e(cost["note"])}</p>')
    return head + "".join(parts) + "</section>"


def _artifacts(ctx: ReportContext) -> str:
    items = "".join(
        f"<li>{_link(name)}{'' if size is None else f' <span class=muted>({size:,} bytes)</span>'}</li>"
        for name, size in sorted(ctx.artifacts.items())
    )
    return f'<section id="artifacts" class="artifacts"><h2>Raw artifacts</h2><ul>{items}</ul></section>'


def render_html(ctx: ReportContext) -> str:
    spec_yaml = yaml.safe_dump(ctx.spec.to_document(), sort_keys=False, default_flow_style=False)
    sections = [_header(ctx), _findings(ctx), _timelines(ctx)]
    if ctx.assessment is not None:
        sections += [_recovery(ctx.assessment), _phase_stats(ctx.assessment)]
    sections += [_faults(ctx), _posture(ctx), _cost(ctx)]
    if ctx.error:
        sections.append(f'<section id="error"><h2>Error</h2><pre>{_e(ctx.error)}</pre></section>')
    sections += [f'<section id="spec"><h2>Spec</h2><pre>{_e(spec_yaml)}</pre></section>', _artifacts(ctx)]
    title = f"Drill {ctx.spec.metadata.name}: {ctx.verdict}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>\n<body>\n"
        + "\n".join(sections) + "\n</body></html>\n"
    )
