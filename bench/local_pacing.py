"""How late a local drill sends its probes, with the local stack's shared-process tuning
(tooling/livefire_local/aws.py ``shared_process_tuning``: the heap frozen out of the garbage collector's full
collections, full collections 10x rarer, a 0.5 ms thread switch interval) and, as the baseline in the same run, with
Python's defaults.

Every function of a local drill is a thread of one process. Sandbox sessions alternate between the two modes; each
runs one warm-up drill (its functions' first imports) and then RUNS measured drills of
drills/sandbox/active-passive.yaml with PHASES. Lateness is each base probe's send instant minus its scheduled
instant, over the drill window (the fault and the recovery, where Inject and Rollback run beside the probes), read
back from the drill's sample chunks. Full collections are timed with ``gc.callbacks`` while the measured drills run.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from bench.report import Row, Section, ratio, status
from livefire.probing.chunks import load_samples
from livefire.spec import parse_spec

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "drills" / "sandbox" / "active-passive.yaml"
PHASES = {"baseline": "2s", "lead": "1s", "fault": "3s", "recovery": "7s"}
RUNS = 3
SESSIONS = 2  # per mode, alternating
LONG_COLLECTION_S = 0.05
MAX_LATENESS_BUDGET_MS = 50.0  # the chunk-boundary allowance (docs/architecture.md §13)


class FullCollections:
    """The durations of the garbage collector's full (generation 2) collections while it is installed."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds.append(time.perf_counter() - self._started)

    @contextlib.contextmanager
    def installed(self) -> Iterator[FullCollections]:
        gc.callbacks.append(self)
        try:
            yield self
        finally:
            gc.callbacks.remove(self)


@contextlib.contextmanager
def _python_defaults() -> Iterator[None]:
    """The local stack without its tuning: the baseline."""
    from livefire_local import aws

    tuned = aws.shared_process_tuning
    aws.shared_process_tuning = lambda *_args, **_kwargs: contextlib.nullcontext()  # type: ignore[assignment]
    try:
        yield
    finally:
        aws.shared_process_tuning = tuned


def _document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(DOCUMENT.read_text())
    document["phases"] = dict(PHASES)
    return document


def _lateness_ms(stack: Any, drill_id: str) -> list[float]:
    listed = stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=f"drills/payments/{drill_id}/samples/")
    keys = [o["Key"] for o in listed.get("Contents", []) if "/drill-" in o["Key"] and o["Key"].endswith(".jsonl.gz")]
    return [s.sent_ms - s.scheduled_ms for s in load_samples(stack.s3, stack.bucket, keys) if not s.burst]


def _session(tuned: bool, index: int) -> tuple[list[float], list[float], int]:
    """(lateness of every measured base probe in ms, full collections in s, drills that did not pass)."""
    from livefire_local.runner import follow_execution, sandbox_session, start_drill
    from tests.conftest import MESH_DIR

    document = _document()
    lateness: list[float] = []
    failed = 0
    with contextlib.ExitStack() as stack_of:
        if not tuned:
            stack_of.enter_context(_python_defaults())
        mesh_and_stack = stack_of.enter_context(sandbox_session(parse_spec(document), MESH_DIR, ROOT))
        stack = mesh_and_stack[1]
        collections = FullCollections()
        for run in range(RUNS + 1):
            drill_id = f"bench-pacing-{'tuned' if tuned else 'defaults'}-{index}-{run}"
            with collections.installed() if run > 0 else contextlib.nullcontext():
                arn = start_drill(stack, drill_id, {"spec": document})
                execution = follow_execution(stack, arn, 120.0, lambda _event: None)
            if run == 0:
                continue  # the warm-up: the functions' first imports
            failed += execution["status"] != "SUCCEEDED"
            lateness += _lateness_ms(stack, drill_id)
    return lateness, collections.seconds, failed


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _describe(lateness: list[float], collections: list[float]) -> str:
    long = [s for s in collections if s >= LONG_COLLECTION_S]
    return (f"p50 {statistics.median(lateness):.1f} ms / p99 {_quantile(lateness, 0.99):.1f} ms / "
            f"max {max(lateness):.1f} ms; {len(long)} full collections ≥ {LONG_COLLECTION_S * 1000:.0f} ms "
            f"(longest {max(collections, default=0.0) * 1000:.0f} ms)")


def run(machine: str) -> Section:
    section = Section("Local drills: probe send lateness with the shared-process tuning vs Python's defaults")
    measured: dict[bool, tuple[list[float], list[float], int]] = {True: ([], [], 0), False: ([], [], 0)}
    for index in range(SESSIONS):
        for tuned in (False, True):
            lateness, collections, failed = _session(tuned, index)
            before = measured[tuned]
            measured[tuned] = (before[0] + lateness, before[1] + collections, before[2] + failed)
    (tuned_late, tuned_gc, tuned_failed), (default_late, default_gc, default_failed) = measured[True], measured[False]
    drills = SESSIONS * RUNS
    section.rows.append(Row(
        f"Drill-window base-probe send lateness, local sandbox drill ({drills} drills a mode, "
        f"{len(tuned_late)} probes)",
        _describe(tuned_late, tuned_gc),
        "Python's defaults: " + _describe(default_late, default_gc),
        ratio(_quantile(tuned_late, 0.99), _quantile(default_late, 0.99)) + " at p99",
        f"max ≤ {MAX_LATENESS_BUDGET_MS:.0f} ms (the chunk-boundary allowance)",
        status(max(tuned_late), MAX_LATENESS_BUDGET_MS, "ms"), machine))
    section.notes += [
        f"{SESSIONS} sandbox sessions a mode, alternating (defaults first), each a warm-up drill then {RUNS} measured "
        f"drills of drills/sandbox/active-passive.yaml with phases {PHASES}; drills not SUCCEEDED: tuned "
        f"{tuned_failed}, defaults {default_failed}.",
        "Lateness is a base probe's send instant minus its scheduled instant over the drill window, read back from "
        "the sample chunks; on AWS each function has its own CPU and heap, so these stalls are local mode's own.",
    ]
    return section
