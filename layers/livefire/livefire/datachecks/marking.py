"""The data checks of one drill window: a writer in the primary region and a reader per other region, each on a
fixed schedule (operation ``i`` at ``start + i * interval`` whatever the earlier ones are doing, like the probes:
docs/architecture.md §6), every operation a ``MarkerSample`` streamed to S3 in chunks under ``markers/``.

With ``standbyWrites`` each interval also writes a marker in every read region and looks in the primary for the
oldest of that region's acknowledged markers it was not yet seen to hold (up to the store's ``look_batch``; one not held
goes to the back of the line, so every one is looked for again until the window ends).

The store calls block (``http.client``, boto3), so each runs on a small thread pool of its own; the schedule is
kept by the event loop. When the window ends the checks delete their own markers (a window still running after an
emergency rollback cleans up behind it); the drill's cleanup record makes every other ending do it too
(``cleanup.py``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from livefire.artifacts import marker_key
from livefire.datachecks.markers import MarkerOp, MarkerSample
from livefire.datachecks.stores import MarkerError, MarkerStore, delete_markers, marker_roles, store_for
from livefire.probing.chunks import SampleChunkWriter
from livefire.spec import DrillSpec
from livefire.spec.datachecks import DataCheck, marker_prefix

MAX_WORKERS = 4
MAX_IN_FLIGHT = 4 * MAX_WORKERS
OVERLOADED = "overloaded: not sent, too many operations in flight"
logger = logging.getLogger(__name__)


def _now_ms() -> float:
    return time.time_ns() / 1_000_000


@dataclass
class CheckRun:
    """One data check in one window: its store and where its samples go."""

    check: DataCheck
    write_region: str
    store: MarkerStore
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _unconfirmed: dict[str, deque[int]] = field(default_factory=dict, repr=False)  # per region, oldest first

    def _sample(self, op: MarkerOp, region: str, scheduled_ms: float,
                call: Callable[[float], dict[str, Any]]) -> MarkerSample:
        """Run ``call`` (given the send instant; it returns the sample's own fields) as one operation."""
        sent_ms = _now_ms()
        try:
            fields = call(sent_ms)
        except Exception as exc:  # a store may answer anything: the operation failed, the schedule goes on
            error = str(exc) if isinstance(exc, MarkerError) else type(exc).__name__
            return MarkerSample(check=self.check.name, region=region, op=op,
                                scheduled_ms=scheduled_ms, sent_ms=sent_ms, ended_ms=_now_ms(), ok=False,
                                error=error[:200])
        return MarkerSample(check=self.check.name, region=region, op=op,
                            scheduled_ms=scheduled_ms, sent_ms=sent_ms, ended_ms=_now_ms(), ok=True, **fields)

    def overloaded(self, op: MarkerOp, region: str, scheduled_ms: float) -> MarkerSample:
        """An operation not sent: too many were still in flight."""
        now = _now_ms()
        return MarkerSample(check=self.check.name, region=region, op=op, scheduled_ms=scheduled_ms, sent_ms=now,
                            ended_ms=now, ok=False, error=OVERLOADED)

    def write(self, seq: int, scheduled_ms: float) -> MarkerSample:
        def put(sent_ms: float) -> dict[str, Any]:
            self.store.write(seq, sent_ms)
            return {"seq": seq, "marker_ms": sent_ms}

        return self._sample("write", self.write_region, scheduled_ms, put)

    def read(self, region: str, scheduled_ms: float) -> MarkerSample:
        def get(_: float) -> dict[str, Any]:
            marker = self.store.newest(region)
            return {"seq": marker.seq, "marker_ms": marker.sent_ms} if marker is not None else {}

        return self._sample("read", region, scheduled_ms, get)

    def write_standby(self, region: str, seq: int, scheduled_ms: float) -> MarkerSample:
        def put(sent_ms: float) -> dict[str, Any]:
            self.store.write_standby(region, seq, sent_ms)
            with self._lock:
                self._unconfirmed.setdefault(region, deque()).append(seq)
            return {"seq": seq, "marker_ms": sent_ms}

        return self._sample("standby-write", region, scheduled_ms, put)

    def resume_looks(self, before: int) -> None:
        """A chunk after the first (``run``'s ``from_s``) does not know which standby markers the earlier ones saw
        in the primary: every marker before ``before`` is looked for again (one seen is dropped from the line at
        once; one never acknowledged is not counted by Assess)."""
        with self._lock:
            for region in self.check.read_regions if self.check.standby_writes else ():
                self._unconfirmed.setdefault(region, deque()).extendleft(reversed(range(before)))

    def confirm(self, region: str, scheduled_ms: float) -> MarkerSample:
        """Look in the primary for the oldest of ``region``'s acknowledged markers not yet seen there."""
        with self._lock:
            line = self._unconfirmed.setdefault(region, deque())
            asked = [line.popleft() for _ in range(min(self.store.look_batch, len(line)))]

        def look(_: float) -> dict[str, Any]:
            held: set[int] = set()
            try:
                held = self.store.in_primary(region, asked) if asked else set()
            finally:
                with self._lock:  # not held, or not looked at: asked again after the others
                    line.extend(seq for seq in asked if seq not in held)
            return {"asked": asked, "held": sorted(held)}

        return self._sample("confirm", region, scheduled_ms, look)


class DataCheckRunner:
    """Every data check of the spec for one window of ``duration_s`` seconds."""

    def __init__(self, spec: DrillSpec, drill_id: str, writer: SampleChunkWriter) -> None:
        primary = next(r.name for r in spec.regions if r.role == "primary")
        self.drill_id = drill_id
        self.writer = writer
        self.roles = marker_roles(spec)
        self.runs = [CheckRun(check, check.write_region or primary,
                              store_for(check, marker_prefix(drill_id, check.name), self.roles))
                     for check in spec.data_checks]
        self._pool = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="livefire-markers")

    async def run(self, duration_s: float, origin_ms: float | None = None, from_s: float = 0.0) -> None:
        """Write and read on schedule until ``duration_s`` past ``origin_ms`` (epoch ms; default now) has passed
        (or the task is cancelled), then wait for the operations in flight. A window probed in chunks passes its
        origin to every chunk, and where the previous chunk's schedule stopped (``from_s``): the schedule goes on
        (an operation due while no chunk ran is sent at once)."""
        loop = asyncio.get_running_loop()
        start_ms = _now_ms() if origin_ms is None else origin_ms
        start = time.monotonic() + (start_ms - _now_ms()) / 1000.0
        pending: set[asyncio.Future[MarkerSample]] = set()

        def launch(job: Callable[[], MarkerSample], skipped: MarkerSample) -> None:
            if len(pending) >= MAX_IN_FLIGHT:  # the store is slower than the schedule: say so, queue nothing
                self.writer.add(skipped)
                return
            future = loop.run_in_executor(self._pool, job)
            pending.add(future)
            future.add_done_callback(pending.discard)
            future.add_done_callback(self._emit)

        schedule = [(run, index) for run in self.runs
                    for index in range(math.ceil(from_s / run.check.interval),
                                       math.ceil(duration_s / run.check.interval))]
        schedule.sort(key=lambda item: item[1] * item[0].check.interval)
        for run in self.runs:
            run.resume_looks(math.ceil(from_s / run.check.interval))
        try:
            for run, index in schedule:
                offset = index * run.check.interval
                await asyncio.sleep(max(0.0, start + offset - time.monotonic()))
                scheduled_ms = start_ms + offset * 1000.0
                launch(partial(run.write, index, scheduled_ms), run.overloaded("write", run.write_region, scheduled_ms))
                for region in run.check.read_regions:
                    launch(partial(run.read, region, scheduled_ms), run.overloaded("read", region, scheduled_ms))
                    if run.check.standby_writes:
                        launch(partial(run.write_standby, region, index, scheduled_ms),
                               run.overloaded("standby-write", region, scheduled_ms))
                        launch(partial(run.confirm, region, scheduled_ms),
                               run.overloaded("confirm", region, scheduled_ms))
        finally:
            if pending:
                await asyncio.wait(pending)

    def _emit(self, future: asyncio.Future[MarkerSample]) -> None:
        if not future.cancelled() and future.exception() is None:
            self.writer.add(future.result())

    def close(self, final: bool = True) -> list[str]:
        """Delete this drill's markers from every store once the window ends (``final``; logged, not raised: the
        cleanup record retries them on every rollback path), then write the last chunk; the chunk keys."""
        self._pool.shutdown(wait=True)
        for run in self.runs if final else ():
            try:
                delete_markers(run.check, marker_prefix(self.drill_id, run.check.name), self.roles)
            except MarkerError as exc:
                logger.warning("could not delete the markers of data check %s: %s", run.check.name, exc)
        return self.writer.close()


def marker_writer(s3_client: object, bucket: str, prefix: str, vantage: str, first: int = 0) -> SampleChunkWriter:
    """The chunk writer of a window's marker samples: ``<prefix>markers/<vantage>-NNNNNN.jsonl.gz``, numbered from
    ``first`` (the chunks earlier invocations of the window wrote)."""
    return SampleChunkWriter(s3_client, bucket, prefix, vantage, "markers",
                             key=lambda chunk: marker_key(prefix, vantage, first + chunk))
