"""The mesh's telemetry in both reports: what the service's proxies counted per phase and cluster (request rate,
error ratio, p99, the gateway's split) and the failover they show, beside the probes (assessment.json
``telemetry``, made by livefire/telemetry/). This module holds the rows and the report.md section; ``mesh_html``
the report.html section and the split drawn on the probe timeline's axis."""

from __future__ import annotations

from livefire.assessment import Assessment
from livefire.assessment.model import MeshTelemetry
from livefire.evidence.markdown import DASH, markdown_table
from livefire.spec import DrillSpec

HEADER = ["Phase", "Cluster", "Requests", "Rate", "Errors", "Error ratio", "p99", "Gateway sent", "Gateway ok"]
TITLE = "Mesh telemetry"
NONE = "No telemetry in the spec: the drill is judged on its probes alone (no agreement findings)."


def _number(value: float | None, unit: str = "", digits: int = 0) -> str:
    return DASH if value is None else f"{value:.{digits}f}{unit}"


def summary(mesh: MeshTelemetry, spec: DrillSpec) -> str:
    """One paragraph: where the numbers come from and the failover the gateway's reports show."""
    if mesh.status == "unavailable":
        return (f"The telemetry at {mesh.source} could not be read: {mesh.note}. The agreement findings are "
                "INCONCLUSIVE; the verdict rests on the probes.")
    telemetry = spec.telemetry
    whose = f"reported by the {telemetry.reporter} proxies" if telemetry is not None else "reported by the mesh"
    text = (f"Requests to the service {whose}, from {mesh.source} (query step {mesh.step_s:g} s, scrape interval "
            f"{mesh.scrape_interval_s:g} s); each phase counts only the steps wholly inside it. Errors are 5xx "
            "answers and local replies of the proxies (response flags). Raw answers: "
            + (", ".join("telemetry/" + key.rsplit("/", 1)[-1] for key in mesh.query_keys) or DASH)
            + ".")
    if mesh.failover is not None:
        text += f" Failover seen by the mesh: {mesh.failover.note}."
    return text


def rows(mesh: MeshTelemetry) -> list[tuple[str, ...]]:
    return [(p.phase, p.cluster or "all clusters", _number(p.requests), _number(p.rate_per_s, "/s", 1),
             _number(p.errors), _number(p.error_ratio_pct, " %", 1), _number(p.p99_ms, " ms", 1),
             _number(p.gateway_requests), _number(p.gateway_ok))
            for p in mesh.phases]


def mesh_markdown(assessment: Assessment, spec: DrillSpec) -> list[str]:
    """The report.md section: says so when the spec has no telemetry."""
    mesh = assessment.telemetry
    if mesh is None:
        return [f"## {TITLE}", "", NONE]
    lines = [f"## {TITLE}", "", summary(mesh, spec)]
    if mesh.phases:
        lines += ["", *markdown_table(HEADER, rows(mesh))]
    return lines
