"""The Assess step's telemetry half: query the mesh over the drill window, keep the raw answers as evidence, and
add the agreement findings to the assessment (docs/architecture.md §7, §8).

The window is the observed phases, widened by one step each side (the counters' baseline, the last scrape); the
queries wait until the window's end is a scrape interval in the past (at most ``SETTLE_LIMIT_S``), so the last
scrape of the drill is in. Each raw answer is written to ``telemetry/<query>.json`` as it comes, with the query.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from livefire.assessment.columns import SampleColumns
from livefire.assessment.model import Assessment, MeshTelemetry
from livefire.assessment.verdict import judge
from livefire.clock import now_ms
from livefire.errors import TelemetryUnavailable
from livefire.redaction import redact_url
from livefire.spec import DrillSpec
from livefire.telemetry.agreement import agreement_findings, unavailable_findings
from livefire.telemetry.client import PrometheusApi
from livefire.telemetry.mesh import mesh_view
from livefire.telemetry.queries import drill_queries, step_for
from livefire.telemetry.series import Grid

SETTLE_LIMIT_S = 60.0
TELEMETRY_FOLDER = "telemetry/"
# (name relative to the drill's evidence prefix, document) -> the key written
Save = Callable[[str, Any], str]


def _settle(end_s: float, scrape_s: float, sleep: Callable[[float], None]) -> None:
    wait = end_s + scrape_s - now_ms() / 1000
    if wait > 0:
        sleep(min(wait, SETTLE_LIMIT_S))


def _measure(spec: DrillSpec, assessment: Assessment, api: PrometheusApi, save: Save,
             sleep: Callable[[float], None]) -> MeshTelemetry:
    telemetry = spec.telemetry
    assert telemetry is not None
    windows = [p for p in assessment.phases if p.from_ms is not None and p.to_ms is not None]
    observed = (max(p.to_ms or 0 for p in windows) - min(p.from_ms or 0 for p in windows)) / 1000 if windows else 0
    step = step_for(max(observed, telemetry.scrape_interval), telemetry.scrape_interval)
    empty = MeshTelemetry(source=redact_url(telemetry.query_url), status="unavailable", note="", step_s=step,
                          scrape_interval_s=telemetry.scrape_interval)
    if not windows:
        raise TelemetryUnavailable("no probe window was observed: nothing to query")
    grid = Grid(start=round(min(p.from_ms or 0 for p in windows) / 1000 - step, 3),
                end=round(max(p.to_ms or 0 for p in windows) / 1000 + step, 3), step=step)
    _settle(grid.end, telemetry.scrape_interval, sleep)
    answers: dict[str, Any] = {}
    keys: list[str] = []
    for query in drill_queries(telemetry, grid.start, grid.end, grid.step):
        answers[query.name] = api.query_range(query)
        keys.append(save(f"{TELEMETRY_FOLDER}{query.name}.json",
                         {"query": query.params(), "source": empty.source, "answer": answers[query.name]}))
    phases, split, failover = mesh_view(telemetry, answers, grid, assessment.phases,
                                        telemetry.cluster_of(spec.fault.region), assessment.injected_at_ms)
    return empty.model_copy(update={"status": "measured", "phases": phases, "split": split, "failover": failover,
                                    "query_keys": keys})


def with_telemetry(assessment: Assessment, spec: DrillSpec, samples: SampleColumns, api: PrometheusApi,
                   save: Save, sleep: Callable[[float], None] = time.sleep) -> Assessment:
    """The assessment with the mesh's view and the agreement findings, and the verdict they add up to; unchanged
    when the spec has no telemetry. Telemetry that cannot be read makes the agreement findings INCONCLUSIVE."""
    telemetry = spec.telemetry
    if telemetry is None:
        return assessment
    try:
        mesh = _measure(spec, assessment, api, save, sleep)
        findings = agreement_findings(mesh, assessment, samples, spec)
    except TelemetryUnavailable as exc:
        mesh = MeshTelemetry(source=redact_url(telemetry.query_url), status="unavailable", note=str(exc),
                             step_s=telemetry.scrape_interval, scrape_interval_s=telemetry.scrape_interval)
        findings = unavailable_findings(str(exc))
    ids = {f.id for f in findings}
    judged = [f for f in assessment.findings if f.id not in ids] + findings
    verdict, reason = judge(judged)
    return assessment.model_copy(update={"telemetry": mesh, "findings": judged, "verdict": verdict,
                                         "verdict_reason": reason})
