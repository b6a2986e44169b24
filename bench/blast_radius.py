"""The two latencies that bound a drill's blast radius, on the sandbox (the real state machine under moto, the
handlers behind the in-process Lambda endpoint, the sandbox mesh):

- abort latency: a guardrail breach (the probe whose answer put the entrypoint's error rate over abortIf) to the
  first probe that sees the fault gone (the Catch's EmergencyRollback restored it);
- rollback latency: the planned end of the fault phase (Inject's answer + the fault phase) to the first probe
  that sees the fault gone (the planned Rollback restored it), the first drill of the session with cold Inject
  and Rollback functions, the others warm.

"Sees the fault gone": an independent poller (its own ProbeEngine, one probe of the entrypoint every 10 ms)
runs beside each drill; the first success it sends after the instant is the fault gone (to 10 ms). The drills
run on drills/sandbox/broken-failover.yaml (no failover: the entrypoint fails for as long as the fault lives).

Baseline (stated, not measured here): AWS FIS stops an experiment when a CloudWatch alarm named as a stop
condition goes into ALARM; an alarm is evaluated at its period, at least 10 s for a high-resolution metric
(60 s for standard ones), so FIS's stop path takes at least one 10 s period before its own stop action.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
from pathlib import Path
from typing import Any

import yaml

from bench.report import Row, Section, ratio, status
from livefire.contracts import ProbeTarget, Sample
from livefire.probing.chunks import load_samples
from livefire.probing.engine import ProbeEngine, ProbeSettings
from livefire.probing.window import ErrorRateGuard, resolve_from_env
from livefire.spec import parse_spec
from livefire.store import DrillStore

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "drills" / "sandbox" / "broken-failover.yaml"
PHASES = {"baseline": "1s", "lead": "1s", "fault": "3s", "recovery": "2s"}
ABORT_IF = {"errorRateOver": 1, "for": "300ms"}
RUNS = 5
POLL_S = 0.01
FIS_ALARM_PERIOD_S = 10.0


def _document(abort: bool) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(DOCUMENT.read_text())
    document["phases"] = dict(PHASES)
    if abort:
        document["guardrails"]["abortIf"] = dict(ABORT_IF)
    return document


class Poller:
    """One probe of the entrypoint every 10 ms on a thread of its own, for as long as a drill runs."""

    def __init__(self, url: str, seconds: float) -> None:
        self.samples: list[Sample] = []
        settings = ProbeSettings(interval=POLL_S, timeout=1.0, burst_interval=POLL_S, resolve=resolve_from_env())
        engine = ProbeEngine(settings, vantage="bench-poller")
        target = ProbeTarget(name="entrypoint", url=url, role="entrypoint")
        self._thread = threading.Thread(
            target=lambda: asyncio.run(engine.run([target], seconds, self.samples.append)), daemon=True)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join()

    def first_success_after(self, moment_ms: float) -> float | None:
        return min((s.sent_ms for s in self.samples if s.ok and s.sent_ms >= moment_ms), default=None)


def _breach_ms(stack: Any, drill_id: str, abort_if: Any) -> float | None:
    listed = stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=f"drills/payments/{drill_id}/samples/")
    keys = [o["Key"] for o in listed.get("Contents", []) if "/drill-" in o["Key"] and o["Key"].endswith(".jsonl.gz")]
    guard = ErrorRateGuard("entrypoint", abort_if)
    for sample in sorted(load_samples(stack.s3, stack.bucket, keys), key=lambda s: s.ended_ms):
        guard.add(sample)
        if guard.check():
            return sample.ended_ms
    return None


def _drill(stack: Any, drill_id: str, document: dict[str, Any]) -> tuple[dict[str, Any], Poller]:
    from livefire_local.runner import follow_execution, start_drill

    spec = parse_spec(document)
    with Poller(spec.entrypoint, spec.phases.baseline + spec.observe_seconds + 8.0) as poller:
        arn = start_drill(stack, drill_id, {"spec": document})
        execution = follow_execution(stack, arn, 120.0, lambda _event: None)
    return execution, poller


def _rollback_seconds(stack: Any, since: int) -> list[float]:
    return [i.ended - i.started for i in stack.lambdas.invocations[since:] if i.function.endswith("RollbackFunction")]


def measure() -> tuple[list[float], list[float], list[float], list[float]]:
    """(abort latencies, rollback latency cold, rollback latencies warm, Rollback invocation seconds cold+warm)."""
    from livefire_local.runner import sandbox_session
    from tests.conftest import MESH_DIR

    spec = parse_spec(_document(abort=True))
    aborts: list[float] = []
    cold: list[float] = []
    warm: list[float] = []
    invocations: list[float] = []
    with sandbox_session(spec, MESH_DIR, ROOT) as (_mesh, stack):
        store = DrillStore(stack.dynamodb.Table(stack.table))
        for run in range(RUNS + 1):  # the first with cold functions
            drill_id = f"bench-rollback-{run}"
            since = len(stack.lambdas.invocations)
            _, poller = _drill(stack, drill_id, _document(abort=False))
            fault = store.faults_of(drill_id)[0]
            if fault.injection_answered_at_ms is None:
                continue
            planned_end = fault.injection_answered_at_ms + spec.phases.fault * 1000.0
            gone = poller.first_success_after(planned_end)
            if gone is not None:
                (cold if run == 0 else warm).append((gone - planned_end) / 1000.0)
            invocations += _rollback_seconds(stack, since)[:1]
        for run in range(RUNS):
            drill_id = f"bench-abort-{run}"
            execution, poller = _drill(stack, drill_id, _document(abort=True))
            breach = _breach_ms(stack, drill_id, spec.guardrails.abort_if)
            if execution.get("error") != "DrillAborted" or breach is None:
                continue
            gone = poller.first_success_after(breach)
            if gone is not None:
                aborts.append((gone - breach) / 1000.0)
    return aborts, cold, warm, invocations


def run(machine: str) -> Section:
    section = Section("Blast radius: abort and rollback latency on the sandbox")
    aborts, cold, warm, invocations = measure()
    seconds = "; ".join(f"{x:.3f}" for x in aborts)
    section.rows.append(Row(
        f"Abort latency: guardrail breach → first probe seeing the fault gone, median / max of {len(aborts)}",
        f"{statistics.median(aborts):.2f} s / {max(aborts):.2f} s" if aborts else "NOT MEASURED",
        f"≥ {FIS_ALARM_PERIOD_S:.0f} s: AWS FIS stop condition, one 10 s alarm period (stated, not measured)",
        ratio(max(aborts, default=None), FIS_ALARM_PERIOD_S), "≤ 1 s",
        status(max(aborts, default=None), 1.0, "s"), machine))
    both = cold + warm
    section.rows.append(Row(
        f"Rollback latency: planned end of the fault phase → fault gone, median / max of {len(both)} (first cold)",
        f"{statistics.median(both):.2f} s / {max(both):.2f} s" if both else "NOT MEASURED",
        "—", "—", "—", "—", machine))
    if cold and warm:
        share = max(cold[0] - statistics.median(warm), 0.0)
        section.rows.append(Row(
            "Rollback latency with cold Inject/Rollback functions vs warm (median of the warm drills)",
            f"cold {cold[0]:.2f} s", f"warm {statistics.median(warm):.2f} s", ratio(cold[0], statistics.median(warm)),
            "—", f"cold start share {share:.2f} s ({share / cold[0]:.0%})", machine))
    section.notes += [
        f"Abort runs (s): {seconds or 'none'}; rollback runs (s): cold {', '.join(f'{x:.3f}' for x in cold)}, "
        f"warm {', '.join(f'{x:.3f}' for x in warm)}; the Rollback function's measured invocations (s): "
        f"{', '.join(f'{x:.3f}' for x in invocations)} (the first is the cold one: its module import).",
        "Each latency includes the Step Functions transitions under moto's interpreter (it polls), the Lambda "
        "call through the local endpoint and the Kubernetes PATCH on the sandbox API server; on AWS the "
        "transitions are faster and a cold start slower (a kubernetes import of about 0.5 s, bench coldinit).",
        "The breach is the completion of the probe that put the error rate over abortIf (the guard replayed on "
        "the drill's samples, as in tests/workflow/test_guardrails.py); abortIf is checked once per base interval.",
    ]
    return section
