"""The HTML building blocks of report.html: escaping, tables, number cells, verdict pills, safe relative links and
the phase bands behind a chart on the probe timeline's axis.

Every cell given to ``table`` is HTML already: escape what goes in with ``text``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape
from urllib.parse import quote

from livefire.assessment.model import PhaseWindow
from livefire.evidence.markdown import DASH
from livefire.evidence.report import format_number

VERDICT_COLOURS = {"PASS": "#116329", "FAIL": "#a40e26", "INCONCLUSIVE": "#7d4e00"}
UNJUDGED_COLOUR = "#424a53"  # NOT_STEADY, CANCELLED, ERROR, ABORTED: the drill ended without a judgement


def text(value: object) -> str:
    """The value as escaped HTML text (a dash for nothing)."""
    return escape(DASH if value is None or value == "" else str(value), quote=True)


def table(header: Sequence[str] | None, rows: Sequence[Sequence[str]], *, css: str = "") -> str:
    """Cells are HTML already (escape what you put in); a cell may bring its own ``<td>``."""
    head = "" if header is None else "<thead><tr>" + "".join(f"<th>{text(h)}</th>" for h in header) + "</tr></thead>"
    body = "".join("<tr>" + "".join(cell if cell.startswith("<td") else f"<td>{cell}</td>" for cell in row)
                   + "</tr>" for row in rows)
    return f'<table class="{css}">{head}<tbody>{body}</tbody></table>'


def facts(rows: Sequence[tuple[str, object]]) -> str:
    return table(None, [(text(key), text(value)) for key, value in rows], css="facts")


def num(value: float | None, unit: str) -> str:
    """A right-aligned table cell holding a number with its unit."""
    shown = format_number(value, unit) if unit or value is None else f"{value:g}"
    return f'<td class="num">{text(shown)}</td>'


def pill(status: str) -> str:
    colour = VERDICT_COLOURS.get(status, UNJUDGED_COLOUR)
    return f'<span class="pill" style="background:{colour}">{text(status)}</span>'


def href(name: str) -> str:
    """A relative URL: everything but the path separators percent-encoded, so no name can become a scheme."""
    return escape(quote(name, safe="/"), quote=True)


def link(name: str) -> str:
    return f'<a href="{href(name)}">{text(name)}</a>'


def phase_bands(phases: Sequence[PhaseWindow], x: Callable[[float], float], tints: Mapping[str, str], top: int,
                height: int) -> list[str]:
    """SVG: each phase with both ends as a pale band ``height`` high from ``top``, behind a plot drawn on the
    probe timeline's axis (``x`` maps UTC epoch ms to an x coordinate)."""
    bands = []
    for phase in phases:
        if phase.from_ms is not None and phase.to_ms is not None:
            x0, x1 = x(phase.from_ms), x(phase.to_ms)
            bands.append(f'<rect x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 0):.1f}" height="{height}" '
                         f'fill="{tints.get(phase.name, "#ffffff")}" opacity="0.35"/>')
    return bands
