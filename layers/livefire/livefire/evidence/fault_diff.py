"""The faults of report.html: what each fault changed (a diff of the snapshots before and after the injection),
whether the rollback put everything back (before vs after the rollback), or, for a fault outside the mesh, what
started and ended it (its FIS experiment's states, its webhook calls)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from livefire.evidence.bundle import EvidenceBundle
from livefire.evidence.markdown import DASH
from livefire.evidence.markup import facts, link, table, text
from livefire.evidence.report import iso_time
from livefire.store import FaultRecord

# Fields the API server manages: they change on every write, so a diff of them says nothing about the fault.
SERVER_MANAGED = ("metadata.resourceVersion", "metadata.generation", "metadata.managedFields",
                  "metadata.creationTimestamp", "metadata.uid")


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
    shown = DASH if value is None else json.dumps(value, sort_keys=True)
    if len(shown) > 300:
        shown = shown[:297] + "..."
    return f'<td class="{css}"><code>{text(shown)}</code></td>'


def _diff_table(changes: Sequence[tuple[str, Any, Any]], left: str, right: str) -> str:
    rows = [(f'<td class="path">{text(path)}</td>', _json_cell(a, "removed"), _json_cell(b, "added"))
            for path, a, b in changes]
    return table(["Field", left, right], rows, css="diff")


def _fault(bundle: EvidenceBundle, fault: FaultRecord) -> str:
    planned = fault.planned
    what = f"{planned.kind} on {planned.object_kind} {planned.namespace}/{planned.object_name} in {planned.region}"
    rows: list[tuple[str, object]] = [
        ("Status", fault.status), ("Injected", iso_time(fault.injected_at_ms)),
        ("Restored", iso_time(fault.restored_at_ms)), ("Detail", fault.detail), ("Lease", planned.lease_key),
    ]
    before_name = fault.snapshot_key.removeprefix(bundle.evidence_prefix)
    names = {moment: before_name.replace("-before.json", f"-{moment}.json") for moment in ("after", "restored")}
    before = bundle.documents.get(before_name)
    parts = [f"<h3>Fault {text(fault.fault_id)}: {text(what)}</h3>", facts(rows)]
    if isinstance(before, Mapping) and before.get("kind") in ("fis", "webhook"):
        parts.append(_outside_mesh(before_name, before))
        return "".join(parts)
    if before is None:
        parts.append(f"<p>No snapshot from before the fault ({text(before_name or 'not recorded')}).</p>")
        return "".join(parts)
    links = " · ".join(link(n) for n in (before_name, *names.values()) if n in bundle.documents)
    parts.append(f"<p>Snapshots: {links}. Server-managed metadata is left out of the comparison.</p>")
    after = bundle.documents.get(names["after"])
    if after is None:
        parts.append("<p>No snapshot after the injection: nothing was patched.</p>")
    else:
        parts += ["<p><strong>What the fault changed</strong> (before → after the injection):</p>",
                  _diff_table(json_diff(before, after), "Before", "After injection")]
    restored = bundle.documents.get(names["restored"])
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
    parts = [f"<p>What started and ended this fault: {link(name)}.</p>"]
    if doc.get("kind") == "fis":
        parts.append(facts([
            ("Experiment", doc.get("experimentId")), ("Template", doc.get("experimentTemplateId")),
            ("AWS region", doc.get("region")), ("Stop requested by", doc.get("stopRequestedBy")),
            ("FIS stop condition fired", doc.get("stopConditionFired")),
        ]))
        rows = [(text(state.get("status")), text(iso_time(state.get("seenAtMs"))), text(state.get("reason")))
                for state in doc.get("states") or [] if isinstance(state, Mapping)]
        parts.append(table(["State", "Seen at", "Reason"], rows))
        return "".join(parts)
    calls = [(text(c.get("action")), text(f"{c.get('method')} {c.get('url')}"), text(iso_time(c.get("sent_at_ms"))),
              text(c.get("status") if c.get("status") is not None else c.get("error")))
             for c in doc.get("calls") or [] if isinstance(c, Mapping)]
    parts.append(table(["Call", "Request", "Sent at", "Answer"], calls))
    return "".join(parts)


def faults_section(bundle: EvidenceBundle) -> str:
    """One part per fault record: its facts, then what it changed and whether the rollback undid it."""
    body = "".join(_fault(bundle, f) for f in bundle.faults) or "<p>No fault was recorded.</p>"
    return f'<section id="faults"><h2>Faults</h2>{body}</section>'

