"""RTO accuracy: livefire's probe engine and assessment against Chaos Toolkit, on the same scripted outages.

A loopback endpoint (bench.loopback, its own process on core 1) answers 503 during an outage of known length
L and 200 otherwise; the true RTO is L. Each trial probes it for LEAD + L + TAIL seconds, the outage starting
LEAD seconds in. Everything that probes runs on core 0.

- livefire: ``livefire.probing.engine.ProbeEngine`` with the spec's defaults (burst interval, hold, budget),
  samples judged by ``livefire.assessment.assess`` (RTO = first sample of the first sustained healthy run,
  minus the injection; bracket = [last failure, that sample]).
- Chaos Toolkit: ``chaos run --hypothesis-strategy=continuously --hypothesis-frequency F`` on an experiment
  whose steady-state hypothesis is one HTTP probe of the endpoint (tolerance 200) and whose method is an HTTP
  action that starts the outage. RTO from its journal: the first passing check after the first failing one,
  minus the trigger time (the moment the endpoint received the action).

Both are compared at equal average probe load: the load is counted by the endpoint itself over the trial
window, and livefire's base interval is calibrated (pilot trials) so that its load, bursts included, matches
the load Chaos Toolkit produced at each frequency.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.loopback import Loopback
from bench.report import Row, Section, median, ms, ratio, status
from livefire.assessment import assess
from livefire.contracts import Plan, ProbeTarget, Sample
from livefire.probing.engine import ProbeEngine, ProbeSettings, WallClock
from livefire.spec import DrillSpec, Vantage, parse_spec

LENGTHS = (0.737, 1.513, 2.291)  # seconds: multiples of neither 1 s, 100 ms nor 10 ms
TRIALS = 3
LEAD = 1.0
TAIL = 1.8
SUSTAIN = 0.5  # livefire's sustain: the tail leaves room for it
FREQUENCIES = (1.0, 0.1)
CLIENT_CPU, SERVER_CPU = 0, 1
CTK_TIMEOUT_S = 30.0
CALIBRATION_ROUNDS = 3
LOAD_TOLERANCE = 0.05


@dataclass
class Trial:
    length: float
    rto: float | None
    bracket_ms: float | None
    inside: bool
    probes: int  # requests the endpoint received during the trial window
    window: float

    @property
    def error_ms(self) -> float | None:
        return None if self.rto is None else abs(self.rto - self.length) * 1000.0

    @property
    def load(self) -> float:
        return self.probes / self.window


@dataclass
class Config:
    label: str
    trials: list[Trial]
    interval: float | None = None

    def errors(self) -> list[float]:
        return [t.error_ms for t in self.trials if t.error_ms is not None]

    def widths(self) -> list[float]:
        return [t.bracket_ms for t in self.trials if t.bracket_ms is not None]

    @property
    def load(self) -> float:
        return sum(t.probes for t in self.trials) / sum(t.window for t in self.trials)

    @property
    def missing(self) -> int:
        return sum(1 for t in self.trials if t.rto is None)


def _window_probes(loopback: Loopback, start: float, end: float) -> int:
    return sum(1 for at, _ in loopback.log() if start <= at < end)


# ------------------------------------------------------------------------------------------------ livefire


def rto_spec(url: str, interval: float) -> DrillSpec:
    return parse_spec({
        "apiVersion": "livefire/v1", "kind": "Drill",
        "metadata": {"name": "bench-rto", "service": "bench"},
        "pattern": "active-passive",
        "regions": [
            {"name": "primary", "role": "primary", "cluster": {"sandbox": "bench"}, "endpoint": url},
            {"name": "standby", "role": "standby", "endpoint": url},
        ],
        "entrypoint": url,
        "fault": {"kind": "http-abort", "region": "primary", "target": {"namespace": "bench", "virtualService": "b"},
                  "abort": {"httpStatus": 503, "percent": 100}},
        "phases": {"baseline": "1s", "lead": LEAD, "fault": max(LENGTHS), "recovery": TAIL},
        "probes": {"interval": interval, "timeout": "1s", "sustain": SUSTAIN},
        "objectives": {"rto": "30s"},
        "guardrails": {"allowedNamespaces": ["bench"]},
    })


def _plan(spec: DrillSpec, target: ProbeTarget, vantage: Vantage) -> Plan:
    return Plan(
        drill_id="bench-rto", execution_arn="local", service="bench", pattern=spec.pattern, mode="live",
        spec_key="spec.json", spec_digest=spec.digest(), evidence_prefix="", started_at_ms=0,
        vantages=[vantage], targets=[target], faults=[], baseline_seconds=0.0,
        observe_seconds=spec.observe_seconds, lead_wait_seconds=1, fault_wait_seconds=1,
    )


def livefire_trial(loopback: Loopback, interval: float, length: float) -> Trial:
    loopback.reset()
    spec = rto_spec(loopback.url(), interval)
    vantage = Vantage(name="bench", region="local")
    target = ProbeTarget(name="entrypoint", url=spec.entrypoint, role="entrypoint")
    engine = ProbeEngine(ProbeSettings.from_spec(spec.probes, spec.served_by), vantage=vantage.name)
    samples: list[Sample] = []
    window = LEAD + length + TAIL
    clock = WallClock()
    outage = time.monotonic() + LEAD
    loopback.schedule_outage(length, outage)
    asyncio.run(engine.run([target], window, samples.append))
    result = assess(spec, _plan(spec, target, vantage), samples, injected_at_ms=clock.epoch_ms(outage),
                    restored_at_ms=None, sample_keys=[])
    truth_ms = clock.epoch_ms(outage + length)
    bracket = result.rto_bracket
    inside = (
        bracket is not None and bracket.last_failure_ms is not None
        and bracket.last_failure_ms <= truth_ms <= bracket.first_success_ms
    )
    return Trial(
        length=length, rto=result.rto_seconds, bracket_ms=bracket.width_ms if bracket else None, inside=inside,
        probes=_window_probes(loopback, outage - LEAD, outage + length + TAIL), window=window,
    )


def calibrate(loopback: Loopback, target_load: float, notes: list[str]) -> float:
    """The base interval at which livefire's load (bursts included) matches ``target_load`` on a pilot outage."""
    length = sorted(LENGTHS)[len(LENGTHS) // 2]
    window = LEAD + length + TAIL
    interval = 1.0 / target_load
    for _ in range(CALIBRATION_ROUNDS):
        pilot = livefire_trial(loopback, interval, length)
        if abs(pilot.load / target_load - 1.0) <= LOAD_TOLERANCE:
            return interval
        extra = pilot.probes - window / interval  # burst probes on top of the base schedule
        base_needed = target_load * window - extra
        if base_needed < window / interval * 0.25 or base_needed < 2:
            notes.append(
                f"At {target_load:.2f} probes/s over a {window:.1f} s window livefire's bursts alone "
                f"({extra:.0f} probes per trial) exceed the budget: livefire ran at the same base interval as "
                "Chaos Toolkit instead, so its load is higher (both loads are in the table)."
            )
            return 1.0 / target_load
        interval = window / base_needed
    return interval


# ------------------------------------------------------------------------------------------- Chaos Toolkit


def _iso_seconds(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def ctk_rto(checks: list[tuple[float, bool]], trigger_wall: float) -> tuple[float, float] | None:
    """The bracket (last failing, first passing check start) of the first pass after the first failure."""
    after = sorted((at, ok) for at, ok in checks if at >= trigger_wall)
    first_failure = next((i for i, (_, ok) in enumerate(after) if not ok), None)
    if first_failure is None:
        return None
    first_pass = next((i for i in range(first_failure + 1, len(after)) if after[i][1]), None)
    if first_pass is None:
        return None
    return after[first_pass - 1][0], after[first_pass][0]


def _experiment(loopback: Loopback, length: float) -> dict[str, Any]:
    return {
        "version": "1.0.0",
        "title": "endpoint recovers from a scripted outage",
        "description": "livefire bench: RTO as Chaos Toolkit sees it",
        "steady-state-hypothesis": {
            "title": "the endpoint answers 200",
            "probes": [{"type": "probe", "name": "healthz", "tolerance": 200,
                        "provider": {"type": "http", "url": loopback.url(), "timeout": 2}}],
        },
        "method": [{
            "type": "action", "name": "start-outage",
            "provider": {"type": "http", "method": "POST", "timeout": 5,
                         "url": loopback.url(f"/control/outage?seconds={length!r}")},
            "pauses": {"before": LEAD, "after": length + TAIL},
        }],
        "rollbacks": [],
    }


def ctk_trial(chaos: Path, work: Path, loopback: Loopback, frequency: float, length: float) -> Trial:
    loopback.reset()
    work = work.resolve()
    experiment = work / "experiment.json"
    journal = work / "journal.json"
    journal.unlink(missing_ok=True)
    experiment.write_text(json.dumps(_experiment(loopback, length)))
    subprocess.run(
        [str(chaos), "--no-version-check", "--no-log-file", "--settings", str(work / "settings.yaml"), "run",
         "--journal-path", str(journal), "--hypothesis-strategy=continuously",
         "--hypothesis-frequency", repr(frequency), str(experiment)],
        cwd=work, capture_output=True, text=True, timeout=CTK_TIMEOUT_S, check=False,
    )
    document = json.loads(journal.read_text())
    trigger = document["run"][0]["output"]["body"]
    checks = [(_iso_seconds(s["probes"][0]["start"]), bool(s["steady_state_met"]))
              for s in document["steady_states"]["during"] if s and s.get("probes")]
    return _ctk_result(loopback, checks, trigger, length)


def _ctk_result(loopback: Loopback, checks: list[tuple[float, bool]], trigger: dict[str, float],
                length: float) -> Trial:
    bracket = ctk_rto(checks, trigger["start_wall"])
    truth = trigger["start_wall"] + length
    start = trigger["start_mono"]
    return Trial(
        length=length,
        rto=None if bracket is None else bracket[1] - trigger["start_wall"],
        bracket_ms=None if bracket is None else (bracket[1] - bracket[0]) * 1000.0,
        inside=bracket is not None and bracket[0] <= truth <= bracket[1],
        probes=_window_probes(loopback, start - LEAD, start + length + TAIL), window=LEAD + length + TAIL,
    )


def ctk_loop_trial(loopback: Loopback, frequency: float, length: float) -> Trial:
    """Stand-in used only when chaostoolkit cannot be installed: its continuous loop, re-implemented.

    One check at a time, each waiting for the previous to end, then a pause of ``frequency`` seconds — as
    ``chaoslib.run.run_hypothesis_continuously`` does — with a fresh connection per check.
    """
    import http.client

    loopback.reset()
    checks: list[tuple[float, bool]] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            at = time.time()
            connection = http.client.HTTPConnection("127.0.0.1", loopback.port, timeout=2)
            try:
                connection.request("GET", "/healthz")
                ok = connection.getresponse().status == 200
            except OSError:
                ok = False
            finally:
                connection.close()
            checks.append((at, ok))
            stop.wait(frequency)

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    time.sleep(LEAD)
    trigger = loopback.schedule_outage(length, time.monotonic())
    time.sleep(length + TAIL)
    stop.set()
    worker.join(timeout=5)
    return _ctk_result(loopback, checks, trigger, length)


def find_chaos() -> Path | None:
    for candidate in (Path(__file__).parent / ".work" / "venv" / "bin" / "chaos", shutil.which("chaos")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


# ------------------------------------------------------------------------------------------------- the run


def _trials(run: Callable[[float], Trial]) -> list[Trial]:
    return [run(length) for _ in range(TRIALS) for length in LENGTHS]


def _summary(config: Config) -> str:
    errors, widths = config.errors(), config.widths()
    inside = sum(1 for t in config.trials if t.inside)
    return (f"{config.label}: |error| median {ms(median(errors))}, max {ms(max(errors, default=None))}; "
            f"bracket median {ms(median(widths))}, max {ms(max(widths, default=None))}; truth inside bracket "
            f"{inside}/{len(config.trials)}; {config.missing} trials without an RTO; load {config.load:.2f} probes/s, "
            f"{sum(t.probes for t in config.trials) / len(config.trials):.1f} probes per trial"
            + (f"; base interval {config.interval * 1000:.1f} ms" if config.interval else ""))


def _rows(frequency: float, baseline: Config, ours: Config, bracket_budget: float, machine: str) -> list[Row]:
    where = f"f={frequency:g} s"
    our_max, their_max = max(ours.errors(), default=None), max(baseline.errors(), default=None)
    error_budget, error_status = "— (informational)", "—"
    if frequency == 0.1 and their_max is not None:
        error_budget = f"≤ 1/5 of Chaos Toolkit's at 0.1 s (≤ {their_max / 5:.1f} ms)"
        error_status = status(our_max, their_max / 5, "ms")
    our_widths, their_widths = ours.widths(), baseline.widths()
    misses = sum(1 for t in ours.trials if not t.inside)
    return [
        Row(f"RTO error, max ({where}; load {ours.load:.2f} vs {baseline.load:.2f} probes/s)", ms(our_max),
            ms(their_max), ratio(our_max, their_max), error_budget, error_status, machine),
        Row(f"RTO error, median ({where})", ms(median(ours.errors())), ms(median(baseline.errors())),
            ratio(median(ours.errors()), median(baseline.errors())), "—", "—", machine),
        Row(f"RTO bracket width, median / max ({where})",
            f"{ms(median(our_widths))} / {ms(max(our_widths, default=None))}",
            f"{ms(median(their_widths))} / {ms(max(their_widths, default=None))}",
            ratio(max(our_widths, default=None), max(their_widths, default=None)),
            f"≤ burst interval + 10 ms = {bracket_budget:.0f} ms",
            status(max(our_widths, default=None), bracket_budget, "ms"), machine),
        Row(f"True recovery inside the bracket ({where})", f"{len(ours.trials) - misses}/{len(ours.trials)}",
            f"{sum(t.inside for t in baseline.trials)}/{len(baseline.trials)}", "—", "every time",
            "met" if misses == 0 else f"MISSED in {misses} of {len(ours.trials)} trials", machine),
        Row(f"Probes sent per trial, mean ({where})",
            f"{sum(t.probes for t in ours.trials) / len(ours.trials):.1f} ({ours.load:.2f}/s)",
            f"{sum(t.probes for t in baseline.trials) / len(baseline.trials):.1f} ({baseline.load:.2f}/s)",
            ratio(ours.load, baseline.load), "equal average load", "—", machine),
    ]


def run(machine: str) -> Section:
    section = Section("RTO accuracy against Chaos Toolkit")
    work = Path(__file__).parent / ".work" / "rto"
    work.mkdir(parents=True, exist_ok=True)
    chaos = find_chaos()
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {CLIENT_CPU})
    try:
        with Loopback(cpu=SERVER_CPU) as loopback:
            pairs = []
            for frequency in FREQUENCIES:
                if chaos is not None:
                    baseline = Config(f"Chaos Toolkit, frequency {frequency:g} s",
                                      _trials(lambda length, f=frequency: ctk_trial(chaos, work, loopback, f, length)))
                else:
                    baseline = Config(f"Chaos Toolkit loop re-implemented (NOT chaostoolkit), frequency {frequency:g} s",
                                      _trials(lambda length, f=frequency: ctk_loop_trial(loopback, f, length)))
                interval = calibrate(loopback, baseline.load, section.notes)
                ours = Config(f"livefire at the load of {baseline.label}",
                              _trials(lambda length, i=interval: livefire_trial(loopback, i, length)), interval=interval)
                pairs.append((frequency, baseline, ours))
    finally:
        os.sched_setaffinity(0, affinity)

    bracket_budget = rto_spec("http://x/", 1.0).probes.burst_interval * 1000.0 + 10.0
    for frequency, baseline, ours in pairs:
        section.rows += _rows(frequency, baseline, ours, bracket_budget, machine)
        section.notes += [_summary(baseline), _summary(ours)]
    section.notes += [
        f"Outages of {', '.join(f'{x:g}' for x in LENGTHS)} s, {TRIALS} trials each per configuration; each trial "
        f"window is {LEAD:g} s lead + outage + {TAIL:g} s tail. Loads are counted by the endpoint over the window.",
        "Ground truth: the endpoint process decides 200/503 on CLOCK_MONOTONIC when a request line arrives. "
        "Errors compare the reported RTO with the scripted length; a probe sent a fraction of a millisecond "
        "before the recovery can still arrive after it, so errors are absolute values.",
        "Both tools get the exact trigger time (the endpoint's own record), so the errors are the probing and "
        "judging resolution alone. livefire's RTO needs a sustained run of "
        f"{SUSTAIN:g} s (spec probes.sustain); Chaos Toolkit's is its first passing check.",
        "Chaos Toolkit's continuous loop waits for each check to end, then sleeps the frequency: its period is "
        "frequency + check time, and its error is up to a whole period. livefire's engine sends on a fixed "
        "schedule and bursts at the spec's burstInterval after a change of state.",
    ]
    if chaos is None:
        section.notes.append("chaostoolkit could not be installed (bench/requirements.txt): the baseline is a "
                             "faithful re-implementation of its continuous loop, clearly NOT chaostoolkit itself.")
    else:
        section.notes.append(f"Chaos Toolkit: {chaos} (versions pinned in bench/requirements.txt).")
    return section
