"""`livefire history --service S`: a service's drills and their trend.

Locally it reads the chain of drills in the evidence folder (``.chain/<service>.json``, oldest first); with a
deployed stack's table and bucket named (``--table``/``DRILL_TABLE`` and ``--bucket``/``EVIDENCE_BUCKET``), the drill
table's history. Of each drill's ``assessment.json``: RTO, failback, availability at the entrypoint (injection to
the end, worst vantage) and RPO (worst region), one line per drill, a terminal sparkline per measure, and an HTML
trend page with one inline SVG chart per measure (``<evidence-dir>/.trends/<service>.html``). With only a table
named it lists the table's history, newest first, as before (``evidence_cli.list_history``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from livefire.artifacts import evidence_prefix
from livefire.assessment import Assessment
from livefire.contracts import Plan
from livefire.store import DrillStore
from livefire_local.evidence_cli import DEFAULT_EVIDENCE_DIR, list_history
from livefire_local.local_chain import LocalChain
from livefire_local.verdicts import EXIT_ERROR, EXIT_PASS

BARS = "▁▂▃▄▅▆▇█"
TRENDS_DIR = ".trends"
CHART_W, CHART_H, PAD = 640, 160, 32


@dataclass(frozen=True)
class TrendPoint:
    """One drill of the trend; a measure it did not make is None."""

    drill_id: str
    started_ms: int | None
    verdict: str
    rto: float | None
    failback: float | None
    availability: float | None
    rpo: float | None


@dataclass(frozen=True)
class Measure:
    name: str
    unit: str
    value: Callable[[TrendPoint], float | None]


MEASURES = (
    Measure("RTO", "s", lambda p: p.rto),
    Measure("failback", "s", lambda p: p.failback),
    Measure("availability", "%", lambda p: p.availability),
    Measure("RPO", "s", lambda p: p.rpo),
)


def local_points(root: Path, service: str) -> list[TrendPoint]:
    """The service's drills sealed in ``root``, oldest first, with what their evidence measured."""
    points = []
    for recorded in LocalChain(root).drills(service):
        folder = root / recorded.drill_id
        assessment = plan = None
        try:
            if (folder / "assessment.json").is_file():
                assessment = Assessment.model_validate_json((folder / "assessment.json").read_bytes())
            plan = Plan.model_validate_json((folder / "plan.json").read_bytes())
        except (OSError, ValueError):
            pass  # a drill whose folder is gone still shows, with its measures unknown
        points.append(_point(recorded.drill_id, plan.started_at_ms if plan else None, recorded.verdict, assessment))
    return points


def _point(drill_id: str, started_ms: int | None, verdict: str | None, assessment: Assessment | None) -> TrendPoint:
    from livefire.evidence.publish import entrypoint_availability  # the Evidence step's module: loaded when used

    rpos = [r.seconds for c in (assessment.data_checks if assessment else []) for r in c.rpo if r.seconds is not None]
    return TrendPoint(drill_id=drill_id, started_ms=started_ms,
                      verdict=verdict or (assessment.verdict if assessment else "-"),
                      rto=assessment.rto_seconds if assessment else None,
                      failback=assessment.failback_seconds if assessment else None,
                      availability=entrypoint_availability(assessment), rpo=max(rpos) if rpos else None)


def stack_points(store: DrillStore, s3: Any, bucket: str, service: str, limit: int) -> list[TrendPoint]:
    """The service's last ``limit`` drills in the drill table, oldest first, each with its assessment.json."""
    points = []
    for entry in reversed(store.history(service, limit=limit)):
        try:
            body = s3.get_object(Bucket=bucket, Key=f"{evidence_prefix(service, entry.drill_id)}assessment.json")
            assessment: Assessment | None = Assessment.model_validate_json(body["Body"].read())
        except (ClientError, ValueError):
            assessment = None  # not judged (or its evidence is gone): the measures are unknown
        points.append(_point(entry.drill_id, entry.started_at_ms, entry.verdict or entry.status, assessment))
    return points


def sparkline(values: Sequence[float | None]) -> str:
    """One bar per value scaled between the smallest and the largest; a space where nothing was measured."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = high - low
    return "".join(" " if v is None else BARS[0 if span == 0 else round((v - low) / span * (len(BARS) - 1))]
                   for v in values)


def _shown(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:.3f}%" if unit == "%" else f"{value:.3f}s"


def _time(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def trend_lines(points: Sequence[TrendPoint]) -> list[str]:
    """The table (oldest first) and one sparkline per measure."""
    lines = [f"{'started':<21} {'verdict':<13} {'RTO':>9} {'failback':>9} {'availability':>12} {'RPO':>9}  drill"]
    lines += [f"{_time(p.started_ms):<21} {p.verdict:<13} {_shown(p.rto, 's'):>9} {_shown(p.failback, 's'):>9} "
              f"{_shown(p.availability, '%'):>12} {_shown(p.rpo, 's'):>9}  {p.drill_id}" for p in points]
    lines.append("")
    for measure in MEASURES:
        values = [measure.value(p) for p in points]
        known = [v for v in values if v is not None]
        span = (f"{_shown(known[0], measure.unit)} → {_shown(known[-1], measure.unit)}, "
                f"range {_shown(min(known), measure.unit)}..{_shown(max(known), measure.unit)}") if known else \
            "not measured"
        lines.append(f"{measure.name:<13}{sparkline(values):<{len(points) + 2}}{span}")
    return lines


def _chart(measure: Measure, points: Sequence[TrendPoint]) -> str:
    values = [(i, measure.value(p), p) for i, p in enumerate(points)]
    known = [v for _, v, _ in values if v is not None]
    head = f'<section><h2>{escape(measure.name)} ({escape(measure.unit)})</h2>'
    if not known:
        return f"{head}<p>Not measured by any of these drills.</p></section>"
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    step = (CHART_W - 2 * PAD) / max(len(points) - 1, 1)

    def xy(index: int, value: float) -> tuple[float, float]:
        return PAD + index * step, CHART_H - PAD - (value - low) / span * (CHART_H - 2 * PAD)

    coords = [(xy(i, v), v, p) for i, v, p in values if v is not None]
    line = " ".join(f"{x:.1f},{y:.1f}" for (x, y), _, _ in coords)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#0969da"><title>{escape(p.drill_id)}: '
                   f"{escape(_shown(v, measure.unit))} ({escape(p.verdict)})</title></circle>"
                   for (x, y), v, p in coords)
    labels = (f'<text x="2" y="{PAD - 8}" font-size="11">{escape(_shown(high, measure.unit))}</text>'
              f'<text x="2" y="{CHART_H - 8}" font-size="11">{escape(_shown(low, measure.unit))}</text>')
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_W}" height="{CHART_H}" role="img" '
           f'aria-label="{escape(measure.name)} per drill">{labels}'
           f'<polyline points="{line}" fill="none" stroke="#0969da" stroke-width="2"/>{dots}</svg>')
    return f"{head}{svg}</section>"


def trend_html(service: str, points: Sequence[TrendPoint]) -> str:
    """A self-contained page: one chart per measure and the table, oldest drill first."""
    rows = "".join(f"<tr><td>{escape(_time(p.started_ms))}</td><td>{escape(p.verdict)}</td>"
                   + "".join(f"<td>{escape(_shown(m.value(p), m.unit))}</td>" for m in MEASURES)
                   + f"<td>{escape(p.drill_id)}</td></tr>" for p in points)
    table = ("<table><thead><tr><th>started</th><th>verdict</th>"
             + "".join(f"<th>{escape(m.name)}</th>" for m in MEASURES) + f"<th>drill</th></tr></thead>"
             f"<tbody>{rows}</tbody></table>")
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(service)}: drill trends</title><style>body{{font-family:sans-serif;margin:2em}}"
            "td,th{padding:2px 8px;text-align:right}</style></head><body>"
            f"<h1>{escape(service)}: {len(points)} drills, oldest first</h1>"
            + "".join(_chart(m, points) for m in MEASURES) + table + "</body></html>\n")


def cmd_history(args: argparse.Namespace) -> int:
    if args.table and not args.bucket:  # a table named alone: its list (whatever $EVIDENCE_BUCKET says)
        return list_history(args)
    table, bucket = args.table or os.environ.get("DRILL_TABLE"), args.bucket or os.environ.get("EVIDENCE_BUCKET")
    if table and not bucket:
        return list_history(args)
    root = Path(args.evidence_dir)
    try:
        if table and bucket:
            import boto3

            points = stack_points(DrillStore(boto3.resource("dynamodb", region_name=args.region).Table(table)),
                                  boto3.client("s3", region_name=args.region), bucket, args.service, args.limit)
            where = f"table {table}"
        else:
            points, where = local_points(root, args.service)[-args.limit:], str(root)
    except (ValueError, ClientError, BotoCoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if not points:
        print(f"no drills of {args.service} in {where}")
        return EXIT_PASS
    print(f"{args.service}: the last {len(points)} drills in {where}, oldest first")
    print("\n".join(trend_lines(points)))
    page = Path(args.html) if args.html else root / TRENDS_DIR / f"{args.service}.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(trend_html(args.service, points))
    print(f"trend page: {page}")
    return EXIT_PASS


def add_history_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    history = commands.add_parser(
        "history", help="a service's past drills: their trend locally, the drill table's list with a stack named",
        description="Without a stack named: the drills of the local evidence folder's chain, oldest first, with "
                    "RTO, failback, availability and RPO, a sparkline per measure and an HTML trend page.")
    history.add_argument("--service", required=True, help="the service (metadata.service of the drill spec)")
    history.add_argument("--limit", type=int, default=20, help="at most this many drills (default 20)")
    history.add_argument("--evidence-dir", default=DEFAULT_EVIDENCE_DIR,
                         help=f"the local evidence folder (default {DEFAULT_EVIDENCE_DIR})")
    history.add_argument("--html", default=None,
                         help=f"where to write the trend page (default <evidence-dir>/{TRENDS_DIR}/<service>.html)")
    history.add_argument("--table", default=None, help="drill table (default: $DRILL_TABLE); alone: list it")
    history.add_argument("--bucket", default=None, help="evidence bucket (default: $EVIDENCE_BUCKET): with a table, "
                                                        "the trend of the stack's drills")
    history.add_argument("--region", default=None, help="AWS region (default: the AWS configuration's)")
    history.set_defaults(func=cmd_history)

