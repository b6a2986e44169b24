"""Whole drills on the sandbox: what one costs at list prices, and how long `livefire run` adds to its phases.

Cost: a sandbox drill with short phases runs through livefire_local.runner (the real state machine under
moto, the handlers behind the in-process Lambda endpoint); ``livefire.cost`` prices its execution history —
state transitions, and Lambda GB-seconds both from the history's task times and from the durations the
Lambda endpoint measured. The baseline is AWS FIS for the same fault, priced per action-minute. A projection
prices the example drill of docs/architecture.md §4 (lead 10 s, fault 2 m, recovery 2 m) the same way: same
transitions, the probe windows stretched to its phases.

Overhead: wall time of the `livefire run` command on the shipped drills/sandbox/active-passive.yaml minus the
phases it configures (baseline + lead + fault + recovery).
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import yaml

from bench.report import NOT_MEASURED, Row, Section, ratio, status
from livefire.cost import LIST_PRICES, DrillCost, drill_cost, execution_history, fis_cost
from livefire.planning import OBSERVE_SLACK_S
from livefire.probing.window import DRILL_SLACK_S
from livefire.spec import DrillSpec, parse_spec

ROOT = Path(__file__).resolve().parents[1]
SANDBOX = ROOT / "drills" / "sandbox"
SHORT_PHASES = {"baseline": "1s", "lead": "1s", "fault": "3s", "recovery": "4s"}
EXAMPLE_PHASES = {"baseline": 5.0, "lead": 10.0, "fault": 120.0, "recovery": 120.0}  # docs/architecture.md §4
DRILL_TIMEOUT_S = 180.0
OVERHEAD_BUDGET_S = 5.0
WHOLE_DRILL_EXITS = (0, 1)  # README "The two commands": 0 PASS, 1 FAIL/INCONCLUSIVE (still a whole drill), 2 error
_PROGRESS = re.compile(r"^\[\s*([\d.]+)s\] (.*)$")
_EVIDENCE = re.compile(r"^evidence: (\S+) \(\d+ files\)$")


def _sandbox_document(phases: dict[str, str] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((SANDBOX / "active-passive.yaml").read_text())
    if phases is not None:
        document["phases"] = dict(phases)
    return document


def _probe_windows(spec: DrillSpec, baseline: float, observe: float) -> list[float]:
    """The windows the probe function runs for, per vantage: the baseline, then lead + fault + recovery."""
    vantages = max(1, len(spec.vantages))
    return [baseline, observe + OBSERVE_SLACK_S + DRILL_SLACK_S] * vantages


def sandbox_cost() -> tuple[DrillSpec, DrillCost, DrillCost, float, DrillCost]:
    """(spec, cost from the history, cost from measured durations, wall seconds, projected example cost)."""
    from livefire_local.runner import follow_execution, sandbox_session, start_drill

    document = _sandbox_document(SHORT_PHASES)
    spec = parse_spec(document)
    started = time.monotonic()
    with sandbox_session(spec, SANDBOX / "mesh", ROOT) as (_, stack):
        arn = start_drill(stack, f"bench-cost-{int(time.time())}", {"spec": document})
        execution = follow_execution(stack, arn, DRILL_TIMEOUT_S, lambda _event: None)
        if execution["status"] != "SUCCEEDED":
            raise RuntimeError(f"the sandbox drill ended {execution['status']}")
        events = execution_history(stack.sfn, arn)
        memory = {f.name: f.memory_mb for f in stack.template.functions()}
        measured = [(i.function, i.ended - i.started) for i in stack.lambdas.invocations]
    wall = time.monotonic() - started
    from_history = drill_cost(events, memory_mb=memory)
    from_measured = drill_cost(events, memory_mb=memory, durations=measured)

    probes = [seconds for name, seconds in measured if name.endswith("ProbeFunction")]
    windows = _probe_windows(spec, spec.phases.baseline, spec.observe_seconds)
    overhead = (sum(probes) - sum(windows)) / max(len(probes), 1)
    example_windows = _probe_windows(spec, EXAMPLE_PHASES["baseline"],
                                     EXAMPLE_PHASES["lead"] + EXAMPLE_PHASES["fault"] + EXAMPLE_PHASES["recovery"])
    projected = drill_cost(
        events, memory_mb=memory,
        durations=[m for m in measured if not m[0].endswith("ProbeFunction")]
        + [(next(n for n, _ in measured if n.endswith("ProbeFunction")), w + overhead) for w in example_windows],
    )
    return spec, from_history, from_measured, wall, projected


def livefire_run_overhead() -> tuple[float, float, dict[str, float], Path | None]:
    """(wall seconds of `livefire run`, configured phase seconds, where the time went, its evidence folder)."""
    spec = parse_spec(_sandbox_document())
    phases = spec.phases.baseline + spec.observe_seconds
    command = [str(Path(sys.executable).with_name("livefire")), "run", str(SANDBOX / "active-passive.yaml"),
               "--evidence-dir", str(ROOT / "bench" / ".work" / "evidence")]
    lines: list[tuple[float, str]] = []
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout
    assert output is not None
    reader = threading.Thread(target=lambda: lines.extend((time.monotonic(), line) for line in output), daemon=True)
    reader.start()
    try:
        code = process.wait(timeout=DRILL_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    wall = time.monotonic() - started
    reader.join(timeout=10)
    if code not in WHOLE_DRILL_EXITS:
        raise RuntimeError(f"livefire run exited {code}: {''.join(line for _, line in lines)[-3000:]}")
    evidence = next((Path(m.group(1)) for _, line in lines if (m := _EVIDENCE.match(line.strip()))), None)
    progress = [(arrived, float(m.group(1)), m.group(2)) for arrived, line in lines
                if (m := _PROGRESS.match(line.rstrip("\n")))]
    first_arrival, _, _ = progress[0]
    entered = next(at for _, at, text in progress if text.startswith("> "))
    last_arrival, last, _ = progress[-1]
    breakdown = {
        "interpreter start-up and imports": first_arrival - started,
        "local stack and sandbox mesh set-up": entered,
        "execution beyond the phases (steps, polling)": last - entered - phases,
        "evidence copy, verdict and exit": started + wall - last_arrival,
    }
    return wall, phases, breakdown, evidence


def _usd(value: float) -> str:
    return f"${value:.5f}"


def _cost_rows(section: Section, machine: str, report_prints_cost: str) -> None:
    spec, from_history, from_measured, wall, projected = sandbox_cost()
    fault = spec.phases.fault
    fis = fis_cost([fault])
    fis_example = fis_cost([EXAMPLE_PHASES["fault"]])
    section.rows += [
        Row("Cost per sandbox drill (short phases), at list prices",
            f"{_usd(from_measured.total_usd)}: {from_measured.state_transitions} state transitions, "
            f"{from_measured.lambda_gb_seconds:.2f} GB-s ({from_measured.lambda_invocations} invocations)",
            f"{_usd(fis)}: AWS FIS, {fault:g} s fault = {round(fis / LIST_PRICES.fis_action_minute)} action-minute",
            ratio(from_measured.total_usd, fis), "computed from the execution and printed in the report",
            report_prints_cost, machine),
        Row("Cost of the example drill of docs/architecture.md §4 (projected: fault 2 m, recovery 2 m)",
            f"{_usd(projected.total_usd)}: {projected.state_transitions} transitions, "
            f"{projected.lambda_gb_seconds:.1f} GB-s",
            f"{_usd(fis_example)}: AWS FIS, 2 action-minutes", ratio(projected.total_usd, fis_example), "—", "—",
            machine),
    ]
    section.notes += [
        f"Sandbox drill phases {SHORT_PHASES}; the run took {wall:.1f} s in this process.",
        f"From the execution history alone (what the Evidence step can see): {from_history.state_transitions} "
        f"transitions ({from_history.retries} retries), {from_history.lambda_gb_seconds:.3f} GB-s in "
        f"{from_history.lambda_invocations} Lambda tasks, {_usd(from_history.total_usd)}. From the durations the "
        f"local Lambda endpoint measured: {from_measured.lambda_gb_seconds:.3f} GB-s, "
        f"{_usd(from_measured.total_usd)}.",
        "Per function (measured): " + "; ".join(
            f"{f.function} {f.invocations}x {f.billed_ms} ms at {f.memory_mb} MB" for f in from_measured.functions),
        f"Of the measured total, state transitions are {_usd(from_measured.transitions_usd)} and Lambda "
        f"{_usd(from_measured.lambda_usd)}.",
        LIST_PRICES.describe() + f" AWS FIS ${LIST_PRICES.fis_action_minute:g} per action-minute "
        f"({LIST_PRICES.sources[2]}), duration rounded to the nearest minute; a sub-30 s action is counted as one "
        "minute here. FIS would only inject the fault; measuring RTO would still need probes.",
        "The projection keeps the measured transitions and non-probe Lambda time and stretches each probe "
        "invocation to the example's windows plus the overhead the measured probe invocations had.",
    ]


def _report_prints_cost(evidence: Path | None) -> str:
    """Does the drill's report.md carry a priced cost section? (the budget's "printed in the report")"""
    report = evidence / "report.md" if evidence is not None else None
    if report is None or not report.is_file():
        return "MISSED: no report.md in the evidence"
    text = report.read_text()
    if "## Cost of the drill" in text and "**Total: $" in text:
        return "met"
    return "MISSED: report.md has no priced cost (the Evidence step does not write cost.json yet)"


def _overhead_rows(section: Section, machine: str) -> Path | None:
    wall, phases, marks, evidence = livefire_run_overhead()
    overhead = wall - phases
    section.rows.append(Row(
        "Local drill overhead: `livefire run` wall time minus configured phases (drills/sandbox/active-passive.yaml)",
        f"{overhead:.1f} s (wall {wall:.1f} s)", f"{phases:g} s of configured phases", ratio(wall, phases),
        f"≤ phases + {OVERHEAD_BUDGET_S:g} s", status(overhead, OVERHEAD_BUDGET_S, "s"), machine,
    ))
    section.notes.append(
        ("Why the budget is missed: " if overhead > OVERHEAD_BUDGET_S else "")
        + f"where `livefire run`'s {overhead:.1f} s beyond the phases went: "
        + "; ".join(f"{k} {v:.2f} s" for k, v in marks.items())
        + " (state times are those of the progress lines, which poll the execution every 0.2 s)."
    )
    return evidence


def _not_measured(section: Section, metric: str, machine: str) -> None:
    error = traceback.format_exc(limit=3)
    section.rows.append(Row(metric, NOT_MEASURED, "—", "—", "—", "MISSED (the benchmark failed, see notes)",
                            machine))
    section.notes.append(f"{metric} failed: " + " ".join(error.split())[-1500:])


def run(machine: str) -> Section:
    section = Section("Cost per drill and local drill overhead")
    evidence = None
    try:
        evidence = _overhead_rows(section, machine)
    except Exception:
        _not_measured(section, "Local drill overhead (`livefire run`)", machine)
    try:
        _cost_rows(section, machine, _report_prints_cost(evidence))
    except Exception:
        _not_measured(section, "Cost per drill", machine)
    return section
