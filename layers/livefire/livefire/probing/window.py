"""One probe window of one vantage: what the probe Lambda calls."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from typing import Any

from livefire.artifacts import marker_prefix, sample_key, sample_prefix
from livefire.contracts import ProbeRequest, ProbeResume, ProbeSummary, ProbeTarget, Sample, TargetSummary
from livefire.datachecks.marking import DataCheckRunner, marker_writer
from livefire.errors import GuardrailBreached
from livefire.guardrails import AlarmWatch, StopCheck, first_breach, home_region
from livefire.probing.carry import Chunk
from livefire.probing.chunks import SampleChunkWriter
from livefire.probing.engine import START_LEAD_S, ChunkResult, EndAt, ProbeEngine, ProbeSettings
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

    def __init__(self, target: str, abort_if: AbortIf, first_ms: float | None = None,
                 recent: Sequence[tuple[float, bool]] = ()) -> None:
        """``first_ms`` and ``recent``: what the guard saw in the window's earlier chunks (``carried``)."""
        self.target = target
        self.limit = abort_if.error_rate_over
        self.span_s = abort_if.for_
        self._first_ms = first_ms
        self._recent = list(recent)
        self._latest_ms = max((at for at, _ in self._recent), default=0.0)

    def carried(self) -> tuple[float | None, list[tuple[float, bool]]]:
        """(first sample's instant, the base samples of the last ``for`` span): what the next chunk goes on from."""
        cutoff = self._latest_ms - self.span_s * 1000.0
        return self._first_ms, [entry for entry in self._recent if entry[0] > cutoff]

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


def _end_after_rollback(watch: RollbackWatch, planned_end_ms: float) -> EndAt:
    """The engine's ``end_at``: what the watch wants, at most ``MAX_EXTENSION_S`` past the plan, as a
    ``time.monotonic()`` instant (a chunk's own stop bounds each invocation)."""
    cap_ms = planned_end_ms + MAX_EXTENSION_S * 1000.0

    def end_at() -> float | None:
        wanted_ms = watch.wanted_end_ms()
        if wanted_ms is None:
            return None
        return time.monotonic() + (min(wanted_ms, cap_ms) - _now_ms()) / 1000.0

    return end_at


def _first_chunk(duration_s: float) -> ProbeResume:
    """Where a window's first chunk starts: every target on its grid from now, nothing carried."""
    started_at_ms = _now_ms()
    grid_ms = started_at_ms + START_LEAD_S * 1000.0
    end_ms = grid_ms + duration_s * 1000.0
    return ProbeResume(started_at_ms=started_at_ms, grid_ms=grid_ms, planned_end_ms=end_ms, end_ms=end_ms, chunk=0,
                       sample_chunks=0, targets=[])


def _summary(request: ProbeRequest, carried: ProbeResume, result: ChunkResult, *, stop_ms: float,
             sample_chunks: int, marker_chunks: int) -> ProbeSummary:
    plan, vantage = request.plan, request.vantage.name
    ended_at_ms = _now_ms()
    seconds = max((ended_at_ms - carried.started_at_ms) / 1000.0, 1e-3)
    done = result.done
    resume = None if done else carried.model_copy(update={
        "end_ms": result.end_ms, "chunk": carried.chunk + 1, "stopped_ms": stop_ms, "sample_chunks": sample_chunks,
        "marker_chunks": marker_chunks, "targets": result.targets,
    })
    return ProbeSummary(
        vantage=vantage,
        window=request.window,
        started_at_ms=carried.started_at_ms,
        ended_at_ms=ended_at_ms,
        done=done,
        resume=resume,
        sample_prefix=sample_prefix(plan.evidence_prefix, vantage, request.window),
        sample_chunks=sample_chunks,
        marker_prefix=marker_prefix(plan.evidence_prefix) if marker_chunks else None,
        marker_chunks=marker_chunks,
        targets=[
            TargetSummary(target=t.target, sent=t.sent, succeeded=t.succeeded, failed=t.sent - t.succeeded,
                          watch=t.watch, peak_per_second=t.peak_per_second,
                          average_per_second=round(t.sent / seconds, 3))
            for t in result.targets
        ],
    )


def probe_window(request: ProbeRequest, spec: DrillSpec, *, s3_client: Any, bucket: str,
                 faults: Callable[[], Sequence[FaultRecord]] | None = None,
                 chunk_s: float = math.inf, deadline_ms: float | None = None) -> ProbeSummary:
    """Probe every target of the plan for one chunk of the window (at most ``chunk_s`` seconds, and never past
    ``deadline_ms``, epoch ms), stream the samples to S3, return a summary: ``done``, or where the next chunk goes
    on (``resume``; the request's ``probe`` is the previous chunk's).

    ``faults`` reads the drill's fault records (where the function may read the drill table): a drill window then
    runs until the recovery phase was watched whole after the real rollback (livefire/probing/rollback_watch.py).

    Raises ``GuardrailBreached`` (after the samples up to the breach are written) when the drill window's
    stop condition fires.
    """
    plan = request.plan
    vantage = request.vantage.name
    drill = request.window == "drill"
    settings = ProbeSettings.from_spec(spec.probes, spec.served_by, resolve=resolve_from_env())
    previous = request.probe.summary.resume if request.probe is not None else None
    carried = previous or _first_chunk(plan.observe_seconds + DRILL_SLACK_S if drill else plan.baseline_seconds)
    stop_ms = min(_now_ms() + chunk_s * 1000.0, deadline_ms if deadline_ms is not None else math.inf)
    chunk = Chunk(grid_ms=carried.grid_ms, end_ms=carried.end_ms, stop_ms=stop_ms, targets=carried.targets)
    watch = (RollbackWatch(faults, spec.phases.recovery + DRILL_SLACK_S, carried.planned_end_ms)
             if drill and faults is not None else None)
    end_at = _end_after_rollback(watch, carried.planned_end_ms) if watch is not None else None
    guard: ErrorRateGuard | None = None
    abort_if = spec.guardrails.abort_if
    if drill and abort_if is not None:
        guard = ErrorRateGuard(_entrypoint(plan.targets, spec).name, abort_if, carried.guard_first_ms, carried.guard)

    first = carried.sample_chunks
    writer = SampleChunkWriter(s3_client, bucket, plan.evidence_prefix, vantage, request.window,
                               key=lambda n: sample_key(plan.evidence_prefix, vantage, request.window, first + n))

    def on_sample(sample: Sample) -> None:
        if guard is not None:
            guard.add(sample)
        writer.add(sample)

    engine = ProbeEngine(settings, vantage=vantage)
    # The data checks run beside the drill window of the first vantage (livefire/datachecks/).
    markers = marker_writer(s3_client, bucket, plan.evidence_prefix, vantage, first=carried.marker_chunks)
    checks = (DataCheckRunner(spec, plan.drill_id, markers)
              if drill and spec.data_checks and plan.vantages and vantage == plan.vantages[0].name else None)

    async def observe(stop_when: StopCheck | None) -> ChunkResult:
        marking = (asyncio.create_task(checks.run((min(carried.end_ms, stop_ms) - carried.grid_ms) / 1000.0,
                                                  origin_ms=carried.grid_ms,
                                                  from_s=max(carried.stopped_ms - carried.grid_ms, 0.0) / 1000.0))
                   if checks is not None else None)
        try:
            return await engine.run_chunk(plan.targets, chunk, on_sample, stop_when, end_at)
        finally:
            if marking is not None:
                marking.cancel()
                await asyncio.gather(marking, return_exceptions=True)

    try:
        with AlarmWatch(spec.guardrails.alarms if drill else (), home_region=home_region(plan.execution_arn)) as alarms:
            stop_when = first_breach(guard.check if guard is not None else None, alarms.check)
            with watch.reading() if watch is not None else nullcontext():
                result = asyncio.run(observe(stop_when))
    except BaseException:
        for closing in (writer, checks):
            try:
                if closing is not None:
                    closing.close()
            except Exception:
                logger.exception("could not write the samples of the failed %s window", request.window)
        raise
    keys = writer.close()
    marker_chunks = carried.marker_chunks + (len(checks.close(final=result.done)) if checks is not None else 0)
    if result.reason is not None:
        raise GuardrailBreached(
            f"{result.reason}; vantage {vantage} stopped probing, "
            f"{first + len(keys)} sample chunk(s) under {plan.evidence_prefix}samples/{vantage}/"
        )
    if guard is not None:
        guard_first_ms, recent = guard.carried()
        carried = carried.model_copy(update={"guard_first_ms": guard_first_ms, "guard": recent})
    return _summary(request, carried, result, stop_ms=stop_ms, sample_chunks=first + len(keys),
                    marker_chunks=marker_chunks)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
