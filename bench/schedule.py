"""Probe schedule: how exactly and how cheaply the engine keeps 20 x 10 Hz and 100 x 10 Hz on one core.

The probing process is pinned to core 0 and the loopback endpoints (bench.loopback) run in their own process
on core 1. livefire's jitter is each base probe's send time minus its scheduled time (``Sample.sent_ms -
Sample.scheduled_ms``); CPU is the probing process's user + system time over the run.

Baseline: Chaos Toolkit with one HTTP probe per endpoint in its steady-state hypothesis, run continuously at
frequency 0.1 s (its way to ask for 10 Hz). It has no schedule to be late against, so its regularity is the
deviation of each endpoint's interval between two checks from 100 ms; its CPU is the ``chaos`` process's,
minus a run of the same experiment without the continuous phase (start-up and the before/after checks).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import resource
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.loopback import Loopback
from bench.report import Row, Section, ms, percentile, ratio, status
from bench.rto import find_chaos
from livefire.contracts import ProbeTarget, Sample
from livefire.probing.engine import ProbeEngine, ProbeSettings

LOADS = (20, 100)  # endpoints, each at 10 Hz
INTERVAL = 0.1
DURATION = 8.0
CLIENT_CPU, SERVER_CPU = 0, 1
JITTER_BUDGET_MS = 20.0
CTK_TIMEOUT_S = 60.0


@dataclass
class Schedule:
    endpoints: int
    probes: int
    failed: int
    seconds: float
    cpu_seconds: float
    jitter_ms: list[float]

    @property
    def rate(self) -> float:
        return self.probes / self.seconds

    @property
    def cpu_per_1000(self) -> float:
        return self.cpu_seconds / max(self.probes, 1) * 1000.0


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def livefire_schedule(loopback: Loopback, endpoints: int) -> Schedule:
    settings = ProbeSettings(interval=INTERVAL, timeout=1.0, burst_interval=0.01)
    targets = [ProbeTarget(name=f"ep{i}", url=loopback.url(f"/ep/{i}"), role="entrypoint") for i in range(endpoints)]
    samples: list[Sample] = []
    engine = ProbeEngine(settings, vantage="bench")
    cpu = _cpu(resource.RUSAGE_SELF)
    asyncio.run(engine.run(targets, DURATION, samples.append))
    cpu = _cpu(resource.RUSAGE_SELF) - cpu
    base = [s for s in samples if not s.burst]
    return Schedule(
        endpoints=endpoints, probes=len(samples), failed=sum(1 for s in samples if not s.ok), seconds=DURATION,
        cpu_seconds=cpu, jitter_ms=[s.sent_ms - s.scheduled_ms for s in base],
    )


def _experiment(loopback: Loopback, endpoints: int, pause: float) -> dict[str, object]:
    return {
        "version": "1.0.0", "title": f"{endpoints} endpoints at 10 Hz", "description": "livefire bench",
        "steady-state-hypothesis": {
            "title": "every endpoint answers 200",
            "probes": [{"type": "probe", "name": f"ep{i}", "tolerance": 200,
                        "provider": {"type": "http", "url": loopback.url(f"/ep/{i}"), "timeout": 2}}
                       for i in range(endpoints)],
        },
        "method": [{"type": "action", "name": "mark", "pauses": {"after": pause},
                    "provider": {"type": "http", "method": "POST", "url": loopback.url("/control/reset")}}],
        "rollbacks": [],
    }


def _chaos(chaos: Path, work: Path, document: dict[str, object], strategy: list[str]) -> tuple[dict[str, Any], float]:
    experiment, journal = work / "schedule-experiment.json", work / "schedule-journal.json"
    experiment.write_text(json.dumps(document))
    journal.unlink(missing_ok=True)
    cpu = _cpu(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [str(chaos), "--no-version-check", "--no-log-file", "--settings", str(work / "settings.yaml"), "run",
         "--journal-path", str(journal), *strategy, str(experiment)],
        cwd=work, capture_output=True, text=True, timeout=CTK_TIMEOUT_S, check=False,
    )
    return json.loads(journal.read_text()), _cpu(resource.RUSAGE_CHILDREN) - cpu


def ctk_schedule(chaos: Path, work: Path, loopback: Loopback, endpoints: int) -> Schedule:
    _, startup_cpu = _chaos(chaos, work, _experiment(loopback, endpoints, 0.0), [])
    journal, cpu = _chaos(chaos, work, _experiment(loopback, endpoints, DURATION),
                          ["--hypothesis-strategy=continuously", "--hypothesis-frequency", "0.1"])
    starts: dict[str, list[float]] = {}
    failed = 0
    for state in journal["steady_states"]["during"]:
        for probe in (state or {}).get("probes", []):
            starts.setdefault(probe["activity"]["name"], []).append(
                datetime.fromisoformat(probe["start"]).timestamp())
            failed += 0 if probe.get("tolerance_met") else 1
    probes = sum(len(v) for v in starts.values())
    deviations = [abs(b - a - INTERVAL) * 1000.0 for series in starts.values() for a, b in itertools.pairwise(series)]
    everything = [t for series in starts.values() for t in series]
    seconds = (max(everything) - min(everything)) if everything else DURATION
    return Schedule(endpoints=endpoints, probes=probes, failed=failed, seconds=seconds or DURATION,
                    cpu_seconds=max(cpu - startup_cpu, 0.0), jitter_ms=deviations)


def run(machine: str) -> Section:
    section = Section("Probe schedule on one core")
    where = f"{machine}; probes pinned to core {CLIENT_CPU}, endpoints on core {SERVER_CPU}"
    chaos = find_chaos()
    work = (Path(__file__).parent / ".work" / "schedule").resolve()
    work.mkdir(parents=True, exist_ok=True)
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {CLIENT_CPU})
    results: list[tuple[Schedule, Schedule | None]] = []
    try:
        with Loopback(cpu=SERVER_CPU) as loopback:
            for endpoints in LOADS:
                ours = livefire_schedule(loopback, endpoints)
                theirs = ctk_schedule(chaos, work, loopback, endpoints) if chaos is not None else None
                results.append((ours, theirs))
                time.sleep(0.5)
    finally:
        os.sched_setaffinity(0, affinity)

    for ours, theirs in results:
        label = f"{ours.endpoints} endpoints x 10 Hz"
        p50, p99 = percentile(ours.jitter_ms, 50), percentile(ours.jitter_ms, 99)
        t50 = percentile(theirs.jitter_ms, 50) if theirs else None
        t99 = percentile(theirs.jitter_ms, 99) if theirs else None
        budgeted = ours.endpoints == 20
        section.rows += [
            Row(f"Send jitter p50 / p99, {label}", f"{ms(p50)} / {ms(p99)}",
                f"{ms(t50)} / {ms(t99)} (interval deviation)" if theirs else "—", ratio(p99, t99),
                f"p99 ≤ {JITTER_BUDGET_MS:g} ms" if budgeted else "—",
                status(p99, JITTER_BUDGET_MS, "ms") if budgeted else "—", where),
            Row(f"Achieved probe rate, {label} (asked {ours.endpoints * 10}/s)", f"{ours.rate:.1f}/s",
                f"{theirs.rate:.1f}/s" if theirs else "—", ratio(ours.rate, theirs.rate if theirs else None),
                "—", "—", where),
            Row(f"CPU seconds per 1,000 probes, {label}", f"{ours.cpu_per_1000:.3f} s",
                f"{theirs.cpu_per_1000:.3f} s" if theirs else "—",
                ratio(ours.cpu_per_1000, theirs.cpu_per_1000 if theirs else None), "—", "—", where),
        ]
        section.notes.append(
            f"{label}: livefire sent {ours.probes} probes in {ours.seconds:g} s ({ours.failed} failed), "
            f"{ours.cpu_seconds:.2f} CPU s"
            + (f"; Chaos Toolkit sent {theirs.probes} in {theirs.seconds:.1f} s ({theirs.failed} failed), "
               f"{theirs.cpu_seconds:.2f} CPU s after start-up" if theirs else "")
        )
    section.notes += [
        "livefire: fresh connection per probe (the default), every endpoint on its own 100 ms grid, the grids "
        "spread over the interval; jitter = send time - scheduled time of every base probe (no probe is ever "
        "skipped or delayed by a slow answer).",
        "Chaos Toolkit runs the probes of one hypothesis one after the other and then sleeps 0.1 s, so the rate "
        "it achieves per endpoint is 1 / (0.1 s + the time of all the checks); its column shows how far each "
        "endpoint's interval strays from 100 ms.",
    ]
    if chaos is None:
        section.notes.append("chaostoolkit could not be installed, so the schedule has no baseline column.")
    return section
