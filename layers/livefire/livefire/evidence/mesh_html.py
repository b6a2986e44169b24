"""The mesh's telemetry in report.html: the per-phase table, and the gateway's traffic split per cluster drawn
under the probe timelines on the same time axis (``split_svg``; the rows are ``mesh_report.py``'s)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from livefire.assessment import Assessment
from livefire.assessment.model import MeshTelemetry, PhaseWindow
from livefire.evidence.markup import phase_bands, table, text
from livefire.evidence.mesh_report import HEADER, NONE, TITLE, rows, summary
from livefire.spec import DrillSpec

CLUSTER_COLOURS = ("#0969da", "#8250df", "#bf3989", "#1b7c83", "#bc4c00", "#6e7781")
_WIDTH, _LEFT, _RIGHT, _TOP, _HEIGHT = 960, 120, 16, 16, 60


def mesh_html(assessment: Assessment, spec: DrillSpec) -> str:
    """The report.html section: says so when the spec has no telemetry."""
    mesh = assessment.telemetry
    head = f'<section id="mesh"><h2>{text(TITLE)}</h2>'
    if mesh is None:
        return f"{head}<p>{text(NONE)}</p></section>"
    cells = [tuple(text(cell) for cell in row) for row in rows(mesh)]
    return f"{head}<p>{text(summary(mesh, spec))}</p>{table(HEADER, cells) if cells else ''}</section>"


def split_svg(mesh: MeshTelemetry, x: Callable[[float], float], phases: Sequence[PhaseWindow],
              tints: Mapping[str, str]) -> str:
    """The gateway's requests per cluster, one stacked bar per query step (its share of the step), on the probe
    timeline's axis (``x``)."""
    bottom = _TOP + _HEIGHT
    parts = phase_bands(phases, x, tints, _TOP, _HEIGHT)
    clusters = sorted({c for point in mesh.split for c in point.requests})
    colour = {c: CLUSTER_COLOURS[i % len(CLUSTER_COLOURS)] for i, c in enumerate(clusters)}
    step_ms = mesh.step_s * 1000
    for point in mesh.split:
        total = sum(point.requests.values())
        if not total:
            continue
        x0, x1 = x(point.at_ms - step_ms), x(point.at_ms)
        y = float(bottom)
        for cluster in clusters:
            height = point.requests.get(cluster, 0.0) / total * _HEIGHT
            if height:
                y -= height
                parts.append(f'<rect x="{x0:.1f}" y="{y:.1f}" width="{max(x1 - x0, 0.5):.1f}" height="{height:.1f}" '
                             f'fill="{colour[cluster]}"><title>{text(cluster)}: {point.requests[cluster]:.0f} of '
                             f"{total:.0f}</title></rect>")
    for index, cluster in enumerate(clusters):
        parts.append(f'<text x="{_LEFT - 8}" y="{_TOP + 12 + 14 * index}" text-anchor="end" '
                     f'style="fill:{colour[cluster]}">{text(cluster)}</text>')
    parts.append(f'<rect x="{_LEFT}" y="{_TOP}" width="{_WIDTH - _LEFT - _RIGHT}" height="{_HEIGHT}" fill="none" '
                 'stroke="#d0d7de"/>')
    label = "the gateway's traffic split per cluster, as the mesh counted it"
    return (f'<svg class="timeline" role="img" aria-label="{text(label)}" viewBox="0 0 {_WIDTH} {bottom + 8}" '
            f'width="100%" preserveAspectRatio="xMinYMin meet"><title>{text(label)}</title>'
            f'<rect x="0" y="0" width="{_WIDTH}" height="{bottom + 8}" fill="#ffffff"/>{"".join(parts)}</svg>')
