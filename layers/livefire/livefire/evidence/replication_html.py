"""The data checks in report.html: the RPO, lag and write-loss tables, and the lag timeline drawn under the availability
timeline on the same time axis (``lag_svg``; the rows are ``replication.py``'s)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from livefire.assessment import Assessment
from livefire.assessment.model import DataCheckResult, PhaseWindow
from livefire.evidence.markup import phase_bands, table, text
from livefire.evidence.replication import (
    INTRO,
    LAG_HEADER,
    RPO_HEADER,
    WRITE_LOSS_HEADER,
    counts,
    lag_rows,
    rpo_rows,
    write_loss_rows,
)

LAG_COLOURS = ("#0969da", "#8250df", "#bf3989", "#1b7c83", "#bc4c00")
_WIDTH, _LEFT, _RIGHT, _TOP, _HEIGHT = 960, 120, 16, 16, 110


def replication_html(assessment: Assessment) -> str:
    """The report.html section; empty when the spec has no data checks."""
    if not assessment.data_checks:
        return ""
    rpo = [tuple(text(cell) for cell in row) for row in rpo_rows(assessment)]
    lag = [tuple(text(cell) for cell in row) for row in lag_rows(assessment)]
    losses = [tuple(text(cell) for cell in row) for row in write_loss_rows(assessment)]
    return ('<section id="data-checks"><h2>Data checks: RPO and replication lag</h2>'
            f"<p>{text(INTRO)}</p><p>{text(counts(assessment.data_checks))}</p>"
            f"{table(RPO_HEADER, rpo)}{table(LAG_HEADER, lag)}"
            f"{table(WRITE_LOSS_HEADER, losses) if losses else ''}</section>")


def lag_svg(result: DataCheckResult, x: Callable[[float], float], phases: Sequence[PhaseWindow],
            tints: Mapping[str, str]) -> str:
    """One data check's lag over time, a line per read region, on the availability timeline's axis (``x``)."""
    top = max((point.lag_s for point in result.timeline), default=0.0) or 1.0
    bottom = _TOP + _HEIGHT

    def y(lag_s: float) -> float:
        return bottom - min(lag_s, top) / top * _HEIGHT

    parts = phase_bands(phases, x, tints, _TOP, _HEIGHT)
    parts.append(f'<rect x="{_LEFT}" y="{_TOP}" width="{_WIDTH - _LEFT - _RIGHT}" height="{_HEIGHT}" fill="none" '
                 'stroke="#d0d7de"/>')
    for fraction in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{_LEFT - 8}" y="{y(top * fraction) + 4:.1f}" text-anchor="end">'
                     f"{top * fraction:.2f} s</text>")
    regions = list(dict.fromkeys(point.region for point in result.timeline))
    for index, region in enumerate(regions):
        colour = LAG_COLOURS[index % len(LAG_COLOURS)]
        points = " ".join(f"{x(p.at_ms):.1f},{y(p.lag_s):.1f}" for p in result.timeline if p.region == region)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}">'
                     f"<title>{text(region)}</title></polyline>"
                     f'<text x="{_LEFT + 6 + 110 * index}" y="{_TOP + 12}" style="fill:{colour}">'
                     f"{text(region)}</text>")
    label = f"replication lag of {result.check} ({result.kind}), up to {top:.2f} s"
    return (f'<svg class="timeline" role="img" aria-label="{text(label)}" viewBox="0 0 {_WIDTH} {bottom + 8}" '
            f'width="100%" preserveAspectRatio="xMinYMin meet"><title>{text(label)}</title>'
            f'<rect x="0" y="0" width="{_WIDTH}" height="{bottom + 8}" fill="#ffffff"/>{"".join(parts)}</svg>')
