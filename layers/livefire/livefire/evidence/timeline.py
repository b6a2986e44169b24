"""The timeline of report.html: per endpoint and vantage, one inline SVG of success / failure over time, who
served, the phases, and markers for injection, rollback, detection, recovery and failback.

The lanes come binned per pixel column (``livefire.assessment.chart``: at most ``BINS`` shapes a lane, however long
the drill; a bin without a probe carries the state of the last one forward for up to three probe intervals).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from livefire.assessment import PhaseWindow
from livefire.assessment.chart import FAIL_COLOUR, MIXED_COLOUR, OK_COLOUR, ChartLane, Run
from livefire.evidence.bundle import EvidenceBundle
from livefire.evidence.markup import text
from livefire.evidence.mesh_html import split_svg
from livefire.evidence.replication_html import lag_svg
from livefire.evidence.report import iso_time

SERVED_PALETTE = ("#0969da", "#8250df", "#bf3989", "#1b7c83", "#bc4c00", "#6e7781")
NOT_SERVED_COLOUR = "#eaeef2"
PHASE_TINTS = {"baseline": "#d0d7de", "fault": "#ffcecb", "recovery": "#c6efce"}
MARKER_COLOURS = {
    "inject": "#a40e26", "rollback": "#0969da", "detect": "#bc4c00", "recover": "#116329", "failback": "#8250df",
}
_WIDTH, _LEFT, _RIGHT = 960, 120, 16
_PLOT = _WIDTH - _LEFT - _RIGHT
_MARKER_ROWS = 3
_PHASE_Y, _PHASE_H = 40, 14
_LANE_Y, _LANE_H, _LANE_GAP = 58, 20, 6
_NICE_STEPS_S = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)


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


def _lane(runs: Sequence[Run], bins: int, y: int, colour_of: Mapping[str, str] | None) -> str:
    step = _PLOT / max(bins, 1)
    rects = []
    for start, end, value in runs:
        fill = colour_of.get(value, SERVED_PALETTE[-1]) if colour_of is not None else value
        title = f"<title>{text(value)}</title>" if colour_of is not None else ""
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
                     f'fill="{PHASE_TINTS.get(phase.name, "#ffffff")}"><title>{text(phase.name)}</title></rect>')
        if x1 - x0 > 60:
            bands.append(f'<text x="{x0 + 4:.1f}" y="{_PHASE_Y + 11}">{text(phase.name)}</text>')
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
            f'<g><title>{text(marker.label)} at {text(iso_time(marker.at_ms))} ({text(offset)})</title>'
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{4 + row * 12}" y2="{bottom}" stroke="{colour}" '
            f'stroke-width="1.5" stroke-dasharray="4 2"/>'
            f'<text x="{x + 3:.1f}" y="{12 + row * 12}" style="fill:{colour}">{text(marker.label)}</text></g>'
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


def _timeline_svg(title: str, lane: ChartLane, bins: int, axis: _Axis, phases: Sequence[PhaseWindow],
                  markers: Sequence[_Marker], colours: Mapping[str, str]) -> str:
    outcome_y, served_y = _LANE_Y, _LANE_Y + _LANE_H + _LANE_GAP
    bottom = served_y + _LANE_H + 4
    height = bottom + 24
    label = f"{title}: {lane.probes} probes, {lane.failed} failed"
    return (
        f'<svg class="timeline" role="img" aria-label="{text(label)}" viewBox="0 0 {_WIDTH} {height}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet"><title>{text(label)}</title>'
        f'<rect x="0" y="0" width="{_WIDTH}" height="{height}" fill="#ffffff"/>'
        f"{_phase_lane(phases, axis)}"
        f'<text x="{_LEFT - 8}" y="{outcome_y + 14}" text-anchor="end">success / failure</text>'
        f'<rect x="{_LEFT}" y="{outcome_y}" width="{_PLOT}" height="{_LANE_H}" fill="none" stroke="#d0d7de"/>'
        f"{_lane(lane.outcome, bins, outcome_y, None)}"
        f'<text x="{_LEFT - 8}" y="{served_y + 14}" text-anchor="end">served by</text>'
        f'<rect x="{_LEFT}" y="{served_y}" width="{_PLOT}" height="{_LANE_H}" fill="{NOT_SERVED_COLOUR}"/>'
        f"{_lane(lane.served, bins, served_y, colours)}"
        f"{_axis_ticks(axis, bottom)}{_markers(markers, axis, bottom)}</svg>"
    )


def _served_colours(bundle: EvidenceBundle, labels: Sequence[str]) -> dict[str, str]:
    """One colour per region (in the spec's order), whatever version it served."""
    regions = [r.name for r in bundle.spec.regions]
    for label in labels:
        region = label.split("@", 1)[0]
        if region not in regions:
            regions.append(region)
    return {label: SERVED_PALETTE[min(regions.index(label.split("@", 1)[0]), len(SERVED_PALETTE) - 1)]
            for label in labels}


def _phases_of(bundle: EvidenceBundle, start: float, end: float) -> list[PhaseWindow]:
    if bundle.assessment is not None:  # the baseline runs from the first probe (the steady-state check's too)
        return [phase.model_copy(update={"from_ms": start}) if phase.name == "baseline" else phase
                for phase in bundle.assessment.phases]
    injected = [float(f.injected_at_ms) for f in bundle.faults if f.injected_at_ms is not None]
    if not injected:
        return [PhaseWindow(name="baseline", from_ms=start, to_ms=end)]
    return [PhaseWindow(name="baseline", from_ms=start, to_ms=min(injected)),
            PhaseWindow(name="fault", from_ms=min(injected), to_ms=end)]


def _endpoint_markers(bundle: EvidenceBundle, vantage: str, target: str) -> list[_Marker]:
    assessment = bundle.assessment
    markers: list[_Marker] = []
    if assessment is None:
        for fault in bundle.faults:
            for at_ms, label in ((fault.injected_at_ms, "inject"), (fault.restored_at_ms, "rollback")):
                if at_ms is not None:
                    markers.append(_Marker(float(at_ms), label))
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
    def swatch(colour: str, label: str) -> str:
        return f'<span class="swatch" style="background:{colour}"></span>{text(label)}'

    parts = [swatch(OK_COLOUR, "success"), swatch(FAIL_COLOUR, "failure"), swatch(MIXED_COLOUR, "both"),
             *[swatch(c, f"served by {label}") for label, c in colours.items()],
             *[swatch(c, f"{phase} phase") for phase, c in PHASE_TINTS.items()]]
    return f'<p class="legend">{"".join(parts)}</p>'


def timelines_section(bundle: EvidenceBundle) -> str:
    """One figure per endpoint and vantage, the entrypoint first, on a shared time axis."""
    head = '<section id="timeline"><h2>Timeline per endpoint</h2>'
    chart = bundle.timeline
    if chart is None:
        return f"{head}<p>No probe samples were recorded.</p></section>"
    start, end = chart.start_ms, chart.end_ms
    injected = bundle.assessment.injected_at_ms if bundle.assessment is not None else None
    axis = _Axis(start, max(end, start + 1.0), injected if injected is not None else start)
    colours = _served_colours(bundle, chart.labels)
    phases = _phases_of(bundle, start, end)
    roles = {bundle.assessment.entrypoint: "entrypoint"} if bundle.assessment and bundle.assessment.entrypoint else {}
    lanes = {(lane.target, lane.vantage): lane for lane in chart.lanes}
    # The entrypoint first: it is what users hit.
    order = sorted(lanes, key=lambda key: (roles.get(key[0]) != "entrypoint", key))
    figures = []
    for target, vantage in order:
        role = f" ({roles[target]})" if target in roles and roles[target] != target else ""
        title = f"{target}{role} from vantage {vantage}"
        svg = _timeline_svg(title, lanes[(target, vantage)], chart.bins, axis, phases,
                            _endpoint_markers(bundle, vantage, target), colours)
        figures.append(f"<figure><figcaption>{text(title)}</figcaption>{svg}</figure>")
    for result in bundle.assessment.data_checks if bundle.assessment is not None else []:  # beside availability
        title = f"replication lag of data check {result.check} ({result.kind}): now - newest marker visible"
        figures.append(f"<figure><figcaption>{text(title)}</figcaption>"
                       f"{lag_svg(result, axis.x, phases, PHASE_TINTS)}</figure>")
    mesh = bundle.assessment.telemetry if bundle.assessment is not None else None
    if mesh is not None and mesh.split:  # what the mesh's gateway sent where, beside the probes
        title = "traffic split per cluster as the mesh counted it (the gateway's requests per query step)"
        figures.append(f"<figure><figcaption>{text(title)}</figcaption>"
                       f"{split_svg(mesh, axis.x, phases, PHASE_TINTS)}</figure>")
    origin = "the injection" if injected is not None else "the first probe"
    note = f'<p class="muted">Seconds from {origin} ({text(iso_time(axis.origin_ms))}).</p>'
    return f"{head}{_legend(colours)}{note}{''.join(figures)}</section>"

