"""One probe window of one vantage: what the probe Lambda calls."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any

from livefire.artifacts import marker_prefix, sample_key, sample_prefix
from livefire.config import DEFAULT_PROBE_CHUNK_S
from livefire.contracts import ProbeHandoff, ProbeOrigin, ProbeRequest, ProbeSummary, ProbeTarget, Sample, TargetSummary
from livefire.datachecks.marking import DataCheckRunner, marker_writer
from livefire.errors import GuardrailBreached
from livefire.guardrails import AlarmWatch, StopCheck, cloudwatch_for, first_breach, home_region
from livefire.probing.carry import Chunk, Handoff
from livefire.probing.chunks import SampleChunkWriter
from livefire.probing.engine import START_LEAD_S, ChunkResult, EndAt, ProbeEngine, ProbeSettings
from livefire.probing.relay import Relay
from livefire.probing.rollback_watch import MAX_EXTENSION_S, RollbackWatch
from livefire.records import FaultRecord
from livefire.spec import AbortIf, DrillSpec, format_duration

RESOLVE_ENV = "LIVEFIRE_RESOLVE"
DRILL_SLACK_S = 0.5
LANES = 2  # the state machine's lanes per window: chunk k + 1 is up and waiting while chunk k probes
ORIGIN_WAIT_S = 120.0  # beyond its own chunk, how long a chunk waits for what an earlier one writes
SEQ_STRIDE = 10_000_000  # chunk k numbers its samples from k x SEQ_STRIDE (chunks overlap in time)
CHUNK_STRIDE = 10_000  # chunk k numbers its sample and marker chunks from k x CHUNK_STRIDE

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

    def adopt(self, first_ms: float | None, recent: Sequence[tuple[float, bool]]) -> None:
        """Add what the previous chunk's guard saw (``carried``) to what this one saw meanwhile."""
        if first_ms is not None and (self._first_ms is None or first_ms < self._first_ms):
            self._first_ms = first_ms
        self._recent = sorted([*recent, *self._recent])
        self._latest_ms = max([self._latest_ms, *(at for at, _ in recent)])

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


def _origin(relay: Relay, plan_s: float, reach_s: float, chunk_s: float) -> ProbeOrigin:
    """The window's first chunk: every target's grid starts now; the other chunks read where (if the window may
    reach them: ``reach_s``, the plan and a late rollback's extension)."""
    started_at_ms = _now_ms()
    grid_ms = started_at_ms + START_LEAD_S * 1000.0
    origin = ProbeOrigin(started_at_ms=started_at_ms, grid_ms=grid_ms, planned_end_ms=grid_ms + plan_s * 1000.0,
                         chunk_seconds=chunk_s)
    if reach_s > chunk_s:
        relay.put_origin(origin)
    return origin


def _summary(request: ProbeRequest, chunk: int, started_at_ms: int, result: ChunkResult | None, *,
             sample_chunks: int = 0, marker_chunks: int = 0) -> ProbeSummary:
    """The chunk's summary: the load so far of every target (the previous chunks' included), and the lane's
    next chunk unless the window is done. ``result`` None: a chunk the window never reached."""
    plan, vantage = request.plan, request.vantage.name
    ended_at_ms = _now_ms()
    seconds = max((ended_at_ms - started_at_ms) / 1000.0, 1e-3)
    done = result is None or result.done
    return ProbeSummary(
        vantage=vantage,
        window=request.window,
        started_at_ms=started_at_ms,
        ended_at_ms=ended_at_ms,
        done=done,
        next_chunk=None if done else chunk + LANES,
        sample_prefix=sample_prefix(plan.evidence_prefix, vantage, request.window),
        sample_chunks=sample_chunks,
        marker_prefix=marker_prefix(plan.evidence_prefix) if marker_chunks else None,
        marker_chunks=marker_chunks,
        targets=[
            TargetSummary(target=t.target, sent=t.sent, succeeded=t.succeeded, failed=t.sent - t.succeeded,
                          watch=t.watch, peak_per_second=t.peak_per_second,
                          average_per_second=round(t.sent / seconds, 3))
            for t in (result.targets if result is not None else [])
        ],
    )


def probe_window(request: ProbeRequest, spec: DrillSpec, *, s3_client: Any, bucket: str,
                 faults: Callable[[], Sequence[FaultRecord]] | None = None,
                 chunk_s: float = DEFAULT_PROBE_CHUNK_S, deadline_ms: float | None = None) -> ProbeSummary:
    """Probe every target of the plan for one chunk of the window (chunks of ``chunk_s`` seconds on one grid,
    livefire/probing/relay.py; never past ``deadline_ms``, epoch ms), stream the samples to S3, return a
    summary: ``done``, or the chunk this lane probes next. The request's ``probe`` is the lane's previous chunk
    (none: the lane's first, ``lane``).

    ``faults`` reads the drill's fault records (where the function may read the drill table): a drill window then
    runs until the recovery phase was watched whole after the real rollback (livefire/probing/rollback_watch.py).

    Raises ``GuardrailBreached`` (after the samples up to the breach are written) when the drill window's
    stop condition fires.
    """
    plan = request.plan
    vantage = request.vantage.name
    drill = request.window == "drill"
    index = request.probe.summary.next_chunk if request.probe is not None else request.lane
    index = index or 0
    plan_s = plan.observe_seconds + DRILL_SLACK_S if drill else plan.baseline_seconds
    reach_s = plan_s + (MAX_EXTENSION_S if drill else 0.0)  # the furthest a window may go
    relay = Relay(s3_client, bucket, plan.evidence_prefix, vantage, request.window)
    if index == 0:
        origin = _origin(relay, plan_s, reach_s, chunk_s)
    elif reach_s <= index * chunk_s:
        return _summary(request, index, _now_ms(), None)  # the window never reaches this chunk
    else:
        origin = relay.wait_origin(ORIGIN_WAIT_S)
    grid_ms, step_ms = origin.grid_ms, origin.chunk_seconds * 1000.0
    start_ms = grid_ms + index * step_ms
    if start_ms >= origin.planned_end_ms + (reach_s - plan_s) * 1000.0:
        return _summary(request, index, origin.started_at_ms, None)
    stop_ms = min(start_ms + step_ms, deadline_ms if deadline_ms is not None else math.inf)
    chunk = Chunk(grid_ms=grid_ms, end_ms=origin.planned_end_ms, start_ms=start_ms, stop_ms=stop_ms,
                  seq_base=index * SEQ_STRIDE)
    watch = (RollbackWatch(faults, spec.phases.recovery + DRILL_SLACK_S, origin.planned_end_ms)
             if drill and faults is not None else None)
    end_at = _end_after_rollback(watch, origin.planned_end_ms) if watch is not None else None
    settings = ProbeSettings.from_spec(spec.probes, spec.served_by, resolve=resolve_from_env())
    guard: ErrorRateGuard | None = None
    abort_if = spec.guardrails.abort_if
    if drill and abort_if is not None:
        guard = ErrorRateGuard(_entrypoint(plan.targets, spec).name, abort_if)

    first = index * CHUNK_STRIDE
    writer = SampleChunkWriter(s3_client, bucket, plan.evidence_prefix, vantage, request.window,
                               key=lambda n: sample_key(plan.evidence_prefix, vantage, request.window, first + n))

    def on_sample(sample: Sample) -> None:
        if guard is not None:
            guard.add(sample)
        writer.add(sample)

    engine = ProbeEngine(settings, vantage=vantage)
    # The data checks run beside the drill window of the first vantage (livefire/datachecks/).
    markers = marker_writer(s3_client, bucket, plan.evidence_prefix, vantage, first=first)
    checks = (DataCheckRunner(spec, plan.drill_id, markers)
              if drill and spec.data_checks and plan.vantages and vantage == plan.vantages[0].name else None)
    relaying = ThreadPoolExecutor(max_workers=2, thread_name_prefix="livefire-relay")
    handed: list[Future[None]] = []

    async def previous() -> Handoff:
        timeout_s = (stop_ms - _now_ms()) / 1000.0 + ORIGIN_WAIT_S
        handoff = await asyncio.get_running_loop().run_in_executor(
            relaying, functools.partial(relay.wait_handoff, index - 1, timeout_s, not_before_ms=start_ms))
        if guard is not None:
            guard.adopt(handoff.guard_first_ms, handoff.guard)
        return Handoff(handoff.targets, handoff.end_ms, handoff.over)

    def on_stop(handoff: Handoff) -> None:
        first_ms, recent = guard.carried() if guard is not None else (None, [])
        document = ProbeHandoff(chunk=index, end_ms=handoff.end_ms, over=handoff.over, targets=list(handoff.targets),
                                guard_first_ms=first_ms, guard=recent)
        handed.append(relaying.submit(relay.put_handoff, document))

    async def observe(stop_when: StopCheck | None) -> ChunkResult:
        # The data checks go on as long as the probes do (a late rollback extends the window past the plan: its
        # restore is looked after too); they are cancelled when the engine returns.
        marking = (asyncio.create_task(checks.run((stop_ms - grid_ms) / 1000.0,
                                                  origin_ms=grid_ms, from_s=(start_ms - grid_ms) / 1000.0))
                   if checks is not None else None)
        try:
            return await engine.run_chunk(plan.targets, chunk, on_sample, stop_when, end_at,
                                          previous=previous() if index > 0 else None,
                                          on_stop=on_stop if reach_s > (index + 1) * chunk_s else None)
        finally:
            if marking is not None:
                marking.cancel()
                await asyncio.gather(marking, return_exceptions=True)

    try:
        with AlarmWatch(spec.guardrails.alarms if drill else (), home_region=home_region(plan.execution_arn),
                        clients=cloudwatch_for(spec)) as alarms:
            stop_when = first_breach(guard.check if guard is not None else None, alarms.check)
            with watch.reading() if watch is not None else nullcontext():
                result = asyncio.run(observe(stop_when))
    except BaseException:
        relay.cancelled.set()
        for closing in (writer, checks):
            try:
                if closing is not None:
                    closing.close()
            except Exception:
                logger.exception("could not write the samples of the failed %s window", request.window)
        raise
    finally:
        relaying.shutdown(wait=True)
    for put in handed:
        put.result()
    keys = writer.close()
    marker_chunks = len(checks.close(final=result.done)) if checks is not None else 0
    if result.reason is not None:
        raise GuardrailBreached(
            f"{result.reason}; vantage {vantage} stopped probing, "
            f"{len(keys)} more sample chunk(s) under {plan.evidence_prefix}samples/{vantage}/"
        )
    return _summary(request, index, origin.started_at_ms, result, sample_chunks=len(keys),
                    marker_chunks=marker_chunks)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
