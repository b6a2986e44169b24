"""One probe window of one vantage: what the probe Lambda calls."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from typing import Any

from livefire.contracts import ProbeRequest, ProbeSummary, ProbeTarget, Sample, TargetSummary
from livefire.datachecks.marking import DataCheckRunner, marker_writer
from livefire.errors import GuardrailBreached
from livefire.guardrails import AlarmWatch, StopCheck, first_breach, home_region
from livefire.probing.chunks import SampleChunkWriter
from livefire.probing.engine import EndAt, ProbeEngine, ProbeSettings
from livefire.probing.rollback_watch import MAX_EXTENSION_S, RollbackWatch
from livefire.records import FaultRecord
from livefire.spec import AbortIf, DrillSpec, format_duration

RESOLVE_ENV = "LIVEFIRE_RESOLVE"
DRILL_SLACK_S = 0.5

logger = logging.getLogger(__name__)


def resolve_from_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """``LIVEFIRE_RESOLVE``: a JSON object ``{"host:port": "ip:port"}`` that overrides DNS (the sandbox)."""
    raw = environ.get(RESOLVE_ENV, "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{RESOLVE_ENV} is not valid JSON: {exc}") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and ":" in k and ":" in v for k, v in value.items()
    ):
        raise ValueError(f'{RESOLVE_ENV} must be a JSON object of "host:port": "ip:port" strings')
    return value


class ErrorRateGuard:
    """Fires when a target's error rate over the last ``for`` seconds exceeds ``errorRateOver`` percent.

    Only base probes count: bursts oversample transitions and would skew a rate meant to be per unit of time.
    It needs ``for`` seconds of samples before it can fire.
    """

    def __init__(self, target: str, abort_if: AbortIf) -> None:
        self.target = target
        self.limit = abort_if.error_rate_over
        self.span_s = abort_if.for_
        self._first_ms: float | None = None
        self._latest_ms = 0.0
        self._recent: list[tuple[float, bool]] = []

    def add(self, sample: Sample) -> None:
        if sample.target != self.target or sample.burst:
            return
        if self._first_ms is None or sample.scheduled_ms < self._first_ms:
            self._first_ms = sample.scheduled_ms
        self._latest_ms = max(self._latest_ms, sample.scheduled_ms)
        self._recent.append((sample.scheduled_ms, sample.ok))

    def check(self) -> str | None:
        if self._first_ms is None or self._latest_ms - self._first_ms < self.span_s * 1000.0:
            return None
        cutoff = self._latest_ms - self.span_s * 1000.0
        self._recent = [entry for entry in self._recent if entry[0] > cutoff]
        total = len(self._recent)
        failed = sum(1 for _, ok in self._recent if not ok)
        rate = 100.0 * failed / total if total else 0.0
        if rate <= self.limit:
            return None
        return (
            f"guardrail abortIf breached: error rate of {self.target} was {rate:.1f}% "
            f"({failed}/{total} probes failed) over the last {format_duration(self.span_s)}, "
            f"above errorRateOver {self.limit:g}%"
        )


def _entrypoint(targets: list[ProbeTarget], spec: DrillSpec) -> ProbeTarget:
    for target in targets:
        if target.role == "entrypoint" or target.url == spec.entrypoint:
            return target
    raise ValueError("guardrails.abortIf needs the entrypoint among the plan's probe targets")


def _end_after_rollback(watch: RollbackWatch, planned_end_ms: float, deadline_ms: float | None) -> EndAt:
    """The engine's ``end_at``: what the watch wants, at most ``MAX_EXTENSION_S`` past the plan and never past the
    invocation's deadline, as a ``time.monotonic()`` instant."""
    cap_ms = planned_end_ms + MAX_EXTENSION_S * 1000.0
    if deadline_ms is not None:
        cap_ms = min(cap_ms, deadline_ms)

    def end_at() -> float | None:
        wanted_ms = watch.wanted_end_ms()
        if wanted_ms is None:
            return None
        return time.monotonic() + (min(wanted_ms, cap_ms) - _now_ms()) / 1000.0

    return end_at


def probe_window(request: ProbeRequest, spec: DrillSpec, *, s3_client: Any, bucket: str,
                 faults: Callable[[], Sequence[FaultRecord]] | None = None,
                 deadline_ms: float | None = None) -> ProbeSummary:
    """Probe every target of the plan for the window, stream the samples to S3, return a summary.

    ``faults`` reads the drill's fault records (where the function may read the drill table): a drill window then
    runs until the recovery phase was watched whole after the real rollback (livefire/probing/rollback_watch.py),
    ending by ``deadline_ms`` (epoch ms) at the latest.

    Raises ``GuardrailBreached`` (after the samples up to the breach are written) when the drill window's
    stop condition fires.
    """
    plan = request.plan
    vantage = request.vantage.name
    drill = request.window == "drill"
    duration = plan.observe_seconds + DRILL_SLACK_S if drill else plan.baseline_seconds
    planned_end_ms = _now_ms() + duration * 1000.0
    watch = (RollbackWatch(faults, spec.phases.recovery + DRILL_SLACK_S, planned_end_ms)
             if drill and faults is not None else None)
    end_at = _end_after_rollback(watch, planned_end_ms, deadline_ms) if watch is not None else None
    settings = ProbeSettings.from_spec(spec.probes, spec.served_by, resolve=resolve_from_env())
    guard: ErrorRateGuard | None = None
    abort_if = spec.guardrails.abort_if
    if drill and abort_if is not None:
        guard = ErrorRateGuard(_entrypoint(plan.targets, spec).name, abort_if)

    writer = SampleChunkWriter(s3_client, bucket, plan.evidence_prefix, vantage, request.window)
    counts = {target.name: [0, 0] for target in plan.targets}

    def on_sample(sample: Sample) -> None:
        counts[sample.target][0 if sample.ok else 1] += 1
        if guard is not None:
            guard.add(sample)
        writer.add(sample)

    engine = ProbeEngine(settings, vantage=vantage)
    # The data checks run beside the drill window of the first vantage (livefire/datachecks/).
    checks = (DataCheckRunner(spec, plan.drill_id, marker_writer(s3_client, bucket, plan.evidence_prefix, vantage))
              if drill and spec.data_checks and plan.vantages and vantage == plan.vantages[0].name else None)

    async def observe(stop_when: StopCheck | None) -> str | None:
        marking = asyncio.create_task(checks.run(duration)) if checks is not None else None
        try:
            return await engine.run(plan.targets, duration, on_sample, stop_when, end_at)
        finally:
            if marking is not None:
                marking.cancel()
                await asyncio.gather(marking, return_exceptions=True)

    started_at_ms = _now_ms()
    try:
        with AlarmWatch(spec.guardrails.alarms if drill else (), home_region=home_region(plan.execution_arn)) as alarms:
            stop_when = first_breach(guard.check if guard is not None else None, alarms.check)
            with watch.reading() if watch is not None else nullcontext():
                reason = asyncio.run(observe(stop_when))
    except BaseException:
        for closing in (writer, checks):
            try:
                if closing is not None:
                    closing.close()
            except Exception:
                logger.exception("could not write the samples of the failed %s window", request.window)
        raise
    keys = writer.close()
    marker_keys = checks.close() if checks is not None else []
    ended_at_ms = _now_ms()
    if reason is not None:
        raise GuardrailBreached(
            f"{reason}; vantage {vantage} stopped probing, "
            f"{len(keys)} sample chunk(s) under {plan.evidence_prefix}samples/{vantage}/"
        )
    return ProbeSummary(
        vantage=vantage,
        window=request.window,
        started_at_ms=started_at_ms,
        ended_at_ms=ended_at_ms,
        sample_keys=keys,
        marker_keys=marker_keys,
        targets=[
            TargetSummary(target=name, sent=ok + failed, succeeded=ok, failed=failed)
            for name, (ok, failed) in counts.items()
        ],
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
