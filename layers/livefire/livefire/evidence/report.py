"""report.md: the drill's outcome for people, rendered from its evidence bundle (assessment.json is the truth).

Verdict first, then the targets (real or sandbox), the findings, recovery, availability per phase, who served,
the fault records, the mesh posture, the cost, the spec and relative links to every artifact. A drill that ended
without an assessment (NOT_STEADY, CANCELLED, ERROR, ABORTED) still gets a report that says why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import yaml

from livefire.assessment import Assessment, Bracket, Recovery
from livefire.cost import CostReport
from livefire.evidence.bundle import EvidenceBundle, PostureAudit
from livefire.evidence.markdown import DASH, markdown_table
from livefire.evidence.mesh_report import mesh_markdown
from livefire.evidence.replication import replication_markdown
from livefire.evidence.review import review_markdown
from livefire.faults.refusal import refusal_lines
from livefire.store import FaultRecord

_TIME_KEY = re.compile(r"(At|_at)(Ms|_ms)$")


def iso_time(ms: float | None) -> str:
    if ms is None:
        return DASH
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fenced(text: str, language: str) -> list[str]:
    """A code block whose fence is longer than any backtick run inside the text."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{language}", text.rstrip("\n"), fence]


def format_number(value: float | None, unit: str) -> str:
    if value is None:
        return DASH
    if unit == "%":
        return f"{value:.3f}%"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "ms":
        return f"{value:.1f} ms"
    return f"{value:g} {unit}"


def since(ms: float | None, origin: float | None) -> str:
    if ms is None:
        return DASH
    if origin is None:
        return iso_time(ms)
    return f"{iso_time(ms)} ({(ms - origin) / 1000.0:+.3f} s)"


def bracket_text(bracket: Bracket | None, origin: float | None) -> str:
    """[last bad probe sent, first probe of the sustained good run sent], and its width."""
    if bracket is None:
        return DASH
    width = bracket.width_ms
    return (
        f"[{since(bracket.last_failure_ms, origin)}, {since(bracket.first_success_ms, origin)}]"
        + ("" if width is None else f", width {width:.1f} ms")
    )


def _relative(key: str, prefix: str) -> str:
    return key.removeprefix(prefix)


def _link(name: str) -> str:
    return f"[{name}]({name.replace(' ', '%20')})"


def chain_text(bundle: EvidenceBundle) -> str:
    """The drill's place in its service's evidence chain, in words."""
    link, service = bundle.chain, bundle.spec.metadata.service
    if link is None:
        return "not linked"
    if link.previous_drill_id is None:
        return f"sequence 1, the first drill of {service}"
    return (f"sequence {link.sequence}, after drill {link.previous_drill_id} "
            f"(manifest sha256 {link.previous_manifest_digest})")


def signer_text(bundle: EvidenceBundle) -> str:
    """Which key signs the manifest: its id and its public key's fingerprint."""
    key = bundle.signing_key
    return DASH if key is None else f"{key.key_id} (public key sha256 {key.public_key_sha256})"


def _header(bundle: EvidenceBundle) -> list[str]:
    spec, assessment, verdict = bundle.spec, bundle.assessment, bundle.verdict
    fault = spec.fault
    rows: list[tuple[str, object]] = [
        ("Verdict", f"**{verdict}** {DASH} {bundle.verdict_reason}"),
        ("Outcome", bundle.outcome),
        ("Service", spec.metadata.service),
        ("Pattern", spec.pattern),
        ("Drill id", f"`{bundle.drill_id}`"),
        ("Execution", f"`{bundle.execution_arn}`"),
        ("Fault", f"{fault.kind} in {fault.region} ({fault.subject})"),
        ("Evidence chain", chain_text(bundle)),
        ("Manifest signed by", signer_text(bundle)),
    ]
    if assessment is not None:
        rows += [
            ("Injected", iso_time(assessment.injected_at_ms)),
            ("Restored", iso_time(assessment.restored_at_ms)),
        ]
    return [f"# Drill {spec.metadata.name}: {verdict}", "", *markdown_table(["", ""], rows)]


REACH_WORDS = {"real": "real (contacted as named)", "sandbox": "sandbox (the local sandbox mesh answered)"}


def _targets(bundle: EvidenceBundle) -> list[str]:
    rows = [(t.target, t.url, REACH_WORDS[t.reach]) for t in bundle.targets]
    return ["## Targets", "", *markdown_table(["Target", "URL", "Reached"], rows), *_load(bundle)]


LOAD_HEADER = ["Vantage", "Target", "Probes sent", "Watch probes", "Average /s", "Peak /s"]
LOAD_NOTE = ("The load the drill window put on each target, as sent: one probe a base interval, and watch probes at "
             "the burst interval while a target was degraded, for at most `probes.burstMaxDuration` of budget.")


def load_rows(bundle: EvidenceBundle) -> list[tuple[str, str, int, int, str, int]]:
    """The rows of the load table (both reports): empty without an assessment."""
    assessment = bundle.assessment
    return [(load.vantage, load.target, load.sent, load.watch,
             DASH if load.average_per_s is None else f"{load.average_per_s:g}", load.peak_per_s)
            for load in (assessment.load if assessment is not None else [])]


def _load(bundle: EvidenceBundle) -> list[str]:
    rows = load_rows(bundle)
    return ["", LOAD_NOTE, "", *markdown_table(LOAD_HEADER, rows)] if rows else []


def _findings(assessment: Assessment) -> list[str]:
    rows = [
        (
            f"{f.title} (`{f.id}`)",
            format_number(f.measured, f.unit),
            format_number(f.threshold, f.unit),
            f"**{f.status}**",
            f.detail,
        )
        for f in assessment.findings
    ]
    return ["## Findings", "", *markdown_table(["Finding", "Measured", "Threshold", "Status", "Detail"], rows)]


def _recovery_rows(recoveries: Sequence[Recovery], origin: float | None) -> list[tuple[object, ...]]:
    return [(r.vantage, format_number(r.seconds, "s"), bracket_text(r.bracket, origin), r.note) for r in recoveries]


def _recovery(assessment: Assessment) -> list[str]:
    injected, restored = assessment.injected_at_ms, assessment.restored_at_ms
    lines = [
        "## Recovery",
        "",
        f"- **RTO** at the entrypoint: {format_number(assessment.rto_seconds, 's')} {DASH} {assessment.rto_note}",
        f"  - bracket [last failure, first sustained success] (send times), from the injection: "
        f"{bracket_text(assessment.rto_bracket, injected)}",
        f"- **Failback**: {format_number(assessment.failback_seconds, 's')} {DASH} {assessment.failback_note}",
        f"  - bracket, from the rollback: {bracket_text(assessment.failback_bracket, restored)}",
        f"- **Detection** (injection → first failure): faulted endpoint "
        f"{format_number(assessment.detection_seconds, 's')}, entrypoint "
        f"{format_number(assessment.entrypoint_detection_seconds, 's')}",
    ]
    outage = assessment.max_outage
    if outage is None:
        lines.append("- **Longest outage** at the entrypoint: none")
    else:
        lines.append(
            f"- **Longest outage** at the entrypoint: {outage.duration_ms:.1f} ms ({outage.failures} failed probes "
            f"from {outage.vantage}, {since(outage.from_ms, injected)} → {since(outage.to_ms, injected)})"
        )
    header = ["Vantage", "Seconds", "Bracket", "Note"]
    if assessment.rto_by_vantage:
        rows = _recovery_rows(assessment.rto_by_vantage, injected)
        lines += ["", "RTO per vantage (from the injection):", "", *markdown_table(header, rows)]
    if assessment.failback_by_vantage:
        rows = _recovery_rows(assessment.failback_by_vantage, restored)
        lines += ["", "Failback per vantage (from the rollback):", "", *markdown_table(header, rows)]
    return lines


def _phases(assessment: Assessment) -> list[str]:
    windows = [
        (p.name, since(p.from_ms, assessment.injected_at_ms), since(p.to_ms, assessment.injected_at_ms))
        for p in assessment.phases
    ]
    rows = [
        (
            s.phase,
            s.vantage,
            s.target,
            s.sent,
            s.ok,
            format_number(s.availability_pct, "%"),
            format_number(s.latency.p50_ms, "ms"),
            format_number(s.latency.p95_ms, "ms"),
            format_number(s.latency.p99_ms, "ms"),
            ", ".join(f"{k}: {v}" for k, v in s.errors.items()),
            ", ".join(f"{k}: {v}" for k, v in s.served_by.items()),
        )
        for s in assessment.stats
    ]
    header = ["Phase", "Vantage", "Target", "Sent", "OK", "Availability", "p50", "p95", "p99", "Errors",
              "Served by"]
    return [
        "## Availability per phase",
        "",
        *markdown_table(["Phase", "From", "To"], windows),
        "",
        *markdown_table(header, rows),
    ]


def _served(assessment: Assessment) -> list[str]:
    lines = ["## Who served the entrypoint", ""]
    if not assessment.served_by_timeline:
        return [*lines, "No successful entrypoint probe named a serving region."]
    rows = [
        (
            s.vantage,
            s.region or "(not named)",
            s.version,
            since(s.from_ms, assessment.injected_at_ms),
            since(s.to_ms, assessment.injected_at_ms),
            s.samples,
        )
        for s in assessment.served_by_timeline
    ]
    return [*lines, *markdown_table(["Vantage", "Region", "Version", "From", "To", "Probes"], rows)]


def _flatten(record: Mapping[str, Any], parent: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in record.items():
        name = f"{parent}{key}"
        if isinstance(value, Mapping):
            items += _flatten(value, f"{name}.")
        else:
            items.append((name, value))
    return items


def _faults(faults: Sequence[FaultRecord], prefix: str) -> list[str]:
    """One key/value table per fault record (nested fields dotted); artifact keys become relative links."""
    lines = ["## Faults"]
    if not faults:
        return [*lines, "", "No fault was recorded."]

    def show(key: str, value: Any) -> object:
        if _TIME_KEY.search(key) and isinstance(value, int | float) and not isinstance(value, bool):
            return iso_time(float(value))
        if isinstance(value, str) and value.startswith(prefix):
            return _link(_relative(value, prefix))
        return value

    for fault in faults:
        rows = [(f"`{key}`", show(key, value)) for key, value in _flatten(fault.model_dump(mode="json"))]
        lines += ["", f"### Fault {fault.fault_id}", "", *markdown_table(["Field", "Value"], rows)]
    return lines


def _artifacts(names: Iterable[str]) -> list[str]:
    return ["## Artifacts", "", *[f"- {_link(name)}" for name in sorted(names)]]


def _posture(posture: Sequence[PostureAudit] | None) -> list[str]:
    lines = ["## Mesh posture", ""]
    if posture is None:
        return [*lines, "The mesh posture was not audited for this drill."]
    rows: list[tuple[object, ...]] = []
    for audit in posture:
        where = f"{audit.region} ({audit.cluster}), {audit.namespace}/{audit.host}"
        if audit.skipped:
            rows.append((where, "not audited", DASH, audit.skipped))
        rows += [(where, f.check, "PASS" if f.ok else "**FAIL**", f.detail) for f in audit.findings]
    return [*lines, *markdown_table(["Where", "Check", "Result", "Detail"], rows)]


def _cost(cost: CostReport | None) -> list[str]:
    lines = ["## Cost of the drill", ""]
    if cost is None:
        return [*lines, "Not computed for this drill."]
    lines.append(f"**Total: ${cost.total_usd:.6f}**")
    if cost.lines:
        rows = [(line.item, line.quantity, line.usd) for line in cost.lines]
        lines += ["", *markdown_table(["item", "quantity", "usd"], rows)]
    return [*lines, "", cost.note]


def render_markdown(bundle: EvidenceBundle) -> str:
    """report.md of one drill."""
    assessment = bundle.assessment
    refusals = refusal_lines(bundle.faults)  # the first line, when a restore was refused
    sections = [*([[f"**{line}**" for line in refusals]] if refusals else []), _header(bundle)]
    if bundle.targets:
        sections.append(_targets(bundle))
    if assessment is not None:
        sections += [_findings(assessment), _recovery(assessment), _phases(assessment), _served(assessment)]
        if assessment.data_checks:
            sections.append(replication_markdown(assessment))
        sections.append(mesh_markdown(assessment, bundle.spec))
    else:
        sections.append(["## Findings", "",
                         f"No assessment: the drill ended with outcome {bundle.outcome} before it was judged."])
    sections += review_markdown(bundle)
    sections += [_faults(bundle.faults, bundle.evidence_prefix), _posture(bundle.posture), _cost(bundle.cost)]
    if bundle.error:
        sections.append(["## Error", "", *_fenced(bundle.error, "text")])
    spec_yaml = yaml.safe_dump(bundle.spec.to_document(), sort_keys=False, default_flow_style=False)
    sections.append(["## Spec", "", *_fenced(spec_yaml, "yaml")])
    sections.append(_artifacts(bundle.artifacts))
    return "\n\n".join("\n".join(section) for section in sections) + "\n"
