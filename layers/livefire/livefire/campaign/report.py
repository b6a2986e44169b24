"""The campaign report, report.md and report.html: every drill's verdict, RTO, RPO and a link to its evidence, and
the distribution of RTO per pattern. Links are relative to the bucket's layout (``campaigns/<id>/`` beside
``drills/<service>/<drill>/``), so they work in the bucket and in a copy of it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from livefire.campaign.model import Campaign, DrillResult
from livefire.evidence.html import CSS
from livefire.evidence.markdown import DASH, markdown_table
from livefire.evidence.markup import facts, link, num, pill, table, text
from livefire.evidence.report import format_number, iso_time


@dataclass(frozen=True)
class RtoSpread:
    """The RTOs measured in one pattern's drills."""

    pattern: str
    drills: int
    rtos: tuple[float, ...]

    @property
    def p90(self) -> float | None:
        """The 90th percentile, nearest rank."""
        ordered = sorted(self.rtos)
        return ordered[math.ceil(0.9 * len(ordered)) - 1] if ordered else None


def rto_per_pattern(results: Sequence[DrillResult]) -> list[RtoSpread]:
    patterns = sorted({r.pattern for r in results})
    return [RtoSpread(p, sum(1 for r in results if r.pattern == p and r.outcome == "RAN"),
                      tuple(r.rto_seconds for r in results if r.pattern == p and r.rto_seconds is not None))
            for p in patterns]


def _spread_row(spread: RtoSpread) -> tuple[float | None, ...]:
    rtos = spread.rtos
    if not rtos:
        return (None, None, None, None)
    return (min(rtos), median(rtos), spread.p90, max(rtos))


def evidence_link(result: DrillResult) -> str | None:
    """The drill's report.html relative to the campaign's folder, when the drill left sealed evidence."""
    return f"../../{result.evidence_prefix}report.html" if result.evidence_prefix else None


def _counts(campaign: Campaign, results: Sequence[DrillResult], stopped: str | None) -> list[tuple[str, object]]:
    rules = campaign.rules
    return [("Campaign", campaign.campaign_id), ("Drills", campaign.drills),
            ("Ran", sum(r.outcome == "RAN" for r in results)),
            ("Passed", sum(r.verdict == "PASS" for r in results)), ("Failed", sum(r.failed for r in results)),
            ("Skipped", sum(r.outcome == "SKIPPED" for r in results)), ("Stopped", stopped or "no"),
            ("Rules", f"maxConcurrency {rules.max_concurrency}, maxFailures {rules.max_failures}, "
                      f"order {rules.order}, one drill per service at a time"),
            ("Rounds", campaign.rounds)]


def _ending(result: DrillResult) -> str:
    """SKIPPED, the verdict, or for a drill that ran without one its execution's status and error."""
    if result.outcome == "SKIPPED":
        return "SKIPPED"
    return result.verdict or f"{result.status or 'FAILED'} ({result.error or 'no verdict'})"


def render_markdown(campaign: Campaign, results: Sequence[DrillResult], stopped: str | None) -> str:
    lines = [f"# Campaign {campaign.campaign_id}", ""]
    lines += [*markdown_table(["", ""], _counts(campaign, results, stopped)), "", "## Drills", ""]
    lines += markdown_table(
        ["#", "Round", "Drill", "Service", "Pattern", "Ending", "RTO", "RPO", "Started", "Ended", "Evidence"],
        [(r.index, r.round, r.drill_id, r.service, r.pattern,
          _ending(r), format_number(r.rto_seconds, "s"),
          format_number(r.rpo_seconds, "s"), iso_time(r.started_at_ms), iso_time(r.ended_at_ms),
          evidence_link(r) or r.reason or DASH) for r in results])
    lines += ["", "## RTO per pattern", ""]
    lines += markdown_table(["Pattern", "Drills run", "RTOs measured", "Min", "Median", "p90", "Max"],
                            [(s.pattern, s.drills, len(s.rtos), *(format_number(v, "s") for v in _spread_row(s)))
                             for s in rto_per_pattern(results)])
    return "\n".join(lines) + "\n"


def _bar(spread: RtoSpread, longest: float) -> str:
    """Each RTO as a tick on one line scaled to the campaign's longest RTO."""
    ticks = "".join(f'<line x1="{4 + 292 * v / longest:.1f}" x2="{4 + 292 * v / longest:.1f}" y1="3" y2="17" '
                    f'stroke="#0969da" stroke-width="2"><title>{v:.3f} s</title></line>' for v in spread.rtos)
    return (f'<td><svg width="300" height="20" role="img" aria-label="RTOs of {text(spread.pattern)}">'
            f'<line x1="4" x2="296" y1="10" y2="10" stroke="#d0d7de"/>{ticks}</svg></td>')


def render_html(campaign: Campaign, results: Sequence[DrillResult], stopped: str | None) -> str:
    rows = [(text(r.index), text(r.round), text(r.drill_id), text(r.service), text(r.pattern),
             pill(_ending(r)) if r.verdict or r.outcome == "SKIPPED" else text(_ending(r)),
             num(r.rto_seconds, "s"), num(r.rpo_seconds, "s"), text(iso_time(r.started_at_ms)),
             text(iso_time(r.ended_at_ms)), link(evidence_link(r) or "") if evidence_link(r) else text(r.reason))
            for r in results]
    spreads = rto_per_pattern(results)
    longest = max((v for s in spreads for v in s.rtos), default=0.0) or 1.0
    spread_rows = [(text(s.pattern), text(s.drills), text(len(s.rtos)), *(num(v, "s") for v in _spread_row(s)),
                    _bar(s, longest)) for s in spreads]
    sections = [
        f"<h1>Campaign {text(campaign.campaign_id)}</h1>",
        f'<section id="summary">{facts(_counts(campaign, results, stopped))}</section>',
        '<section id="drills"><h2>Drills</h2>' + table(
            ["#", "Round", "Drill", "Service", "Pattern", "Verdict", "RTO", "RPO", "Started", "Ended", "Evidence"],
            rows) + "</section>",
        '<section id="rto"><h2>RTO per pattern</h2>' + table(
            ["Pattern", "Drills run", "RTOs measured", "Min", "Median", "p90", "Max", "Each RTO"], spread_rows)
        + "</section>",
    ]
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Campaign {text(campaign.campaign_id)}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(sections) + "\n</body></html>\n")
