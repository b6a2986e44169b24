"""RTO accuracy: livefire's probe engine and assessment against Chaos Toolkit, on the same scripted outages.

A loopback endpoint (bench.loopback, its own process on core 1) answers 503 during an outage of known length
L and 200 otherwise; the true RTO is L. Each trial probes it for lead + L + tail seconds, the outage starting
lead seconds in; the leads spread the outage's start over a probing period, so that no trial set sits at one
lucky (or unlucky) phase of either prober's schedule. Everything that probes runs on core 0.

- livefire: ``livefire.probing.engine.ProbeEngine`` with the spec's defaults (burst interval, hold, budget),
  samples judged by ``livefire.assessment.assess`` (RTO = first sample of the first sustained healthy run,
  minus the injection; bracket = [last failure, that sample], both send times).
- Chaos Toolkit: ``chaos run --hypothesis-strategy=continuously --hypothesis-frequency F`` on an experiment
  whose steady-state hypothesis is one HTTP probe of the endpoint (tolerance 200) and whose method is an HTTP
  action that starts the outage. RTO from its journal: the first passing check after the first failing one,
  minus the trigger time (the moment the endpoint received the action); bracket = [last failing check, that
  check], both start times.

Loads are compared over a one-minute drill window holding the outage (see DRILL_WINDOW), and livefire's base
interval is calibrated on pilot trials so that its load, watch probes included, equals the load Chaos Toolkit
produced at each frequency.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
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
LEAD = 1.0  # plus a phase: PHASE_SPREAD x frequency x (a golden-ratio sequence over the trials)
PHASE_SPREAD = 1.5
BASE_TAIL = 1.8  # after the outage, plus the frequency: room for one more check, or livefire's sustained run
SUSTAIN = 0.5  # livefire's spec probes.sustain in these trials
# Loads are compared over a one-minute drill window holding one outage (the shipped sandbox drill observes for
# 43 s, the example drill of docs/architecture.md §4 for 250 s). Only the outage and its edges are run; the rest
# of the window is a
# healthy endpoint, probed at the base rate by livefire (the engine sends nothing else to a healthy target, as
# the schedule benchmark measures) and at its constant rate by Chaos Toolkit.
DRILL_WINDOW = 60.0
FREQUENCIES = (1.0, 0.1)
BUDGETED_FREQUENCY = 0.1
CLIENT_CPU, SERVER_CPU = 0, 1
CTK_TIMEOUT_S = 30.0
CALIBRATION_ROUNDS = 3
LOAD_TOLERANCE = 0.05

Check = tuple[float, float, bool]  # (start, end, passed): one check or probe, epoch seconds


@dataclass
class Trial:
    length: float
    seen: bool  # the prober saw the endpoint fail at all
    rto: float | None
    bracket_ms: float | None
    inside: bool  # the true recovery lies between the last failure's send and the first success's answer
    probes: int  # requests the endpoint received during the trial window
    window: float
    interval: float | None = None  # livefire's base interval; None for a prober with a constant rate

    @property
    def error_ms(self) -> float | None:
        return None if self.rto is None or not self.seen else abs(self.rto - self.length) * 1000.0

    @property
    def drill_probes(self) -> float:
        """Probes over DRILL_WINDOW: the trial's, plus the healthy rest of the window at the prober's steady rate."""
        rate = self.probes / self.window if self.interval is None else 1.0 / self.interval
        return self.probes + (DRILL_WINDOW - self.window) * rate

    def describe(self) -> str:
        text = f"{self.length:g} s: "
        if not self.seen:
            return text + "outage not seen"
        if self.rto is None:
            return text + "no RTO"
        return text + f"error {self.error_ms:.1f} ms, bracket {ms(self.bracket_ms)}" + (
            "" if self.inside else ", truth OUTSIDE")


@dataclass
class Config:
    label: str
    trials: list[Trial]
    interval: float | None = None

    def errors(self) -> list[float]:
        return [t.error_ms for t in self.trials if t.error_ms is not None]

    def widths(self) -> list[float]:
        return [t.bracket_ms for t in self.trials if t.bracket_ms is not None and t.seen]

    @property
    def seen(self) -> int:
        return sum(1 for t in self.trials if t.seen)

    @property
    def inside(self) -> int:
        return sum(1 for t in self.trials if t.inside)

    @property
    def judged(self) -> int:
        """Trials with a reported RTO (and so a bracket to check)."""
        return sum(1 for t in self.trials if t.error_ms is not None)

    @property
    def load(self) -> float:
        """Average probes per second over a DRILL_WINDOW holding one outage."""
        return sum(t.drill_probes for t in self.trials) / (len(self.trials) * DRILL_WINDOW)

    @property
    def trial_load(self) -> float:
        """Average probes per second over the trial windows themselves (lead + outage + tail)."""
        return sum(t.probes for t in self.trials) / sum(t.window for t in self.trials)

    def summary(self) -> str:
        errors, widths = self.errors(), self.widths()
        per_trial = sum(t.probes for t in self.trials) / len(self.trials)
        return (
            f"{self.label}: outages seen {self.seen}/{len(self.trials)}; |error| median {ms(median(errors))}, "
            f"max {ms(max(errors, default=None))}; bracket median {ms(median(widths))}, max "
            f"{ms(max(widths, default=None))}; truth inside the bracket {self.inside}/{self.judged}; load "
            f"{self.load:.2f} probes/s over a {DRILL_WINDOW:g} s drill window ({self.trial_load:.2f}/s over the "
            f"trial windows, {per_trial:.1f} probes per trial)"
            + (f"; base interval {self.interval * 1000:.1f} ms" if self.interval else "")
            + ". Trials: " + "; ".join(t.describe() for t in self.trials)
        )


def tail(frequency: float) -> float:
    return BASE_TAIL + frequency


def leads(frequency: float, count: int) -> list[float]:
    return [LEAD + PHASE_SPREAD * frequency * ((k * 0.6180339887498949) % 1.0) for k in range(count)]


def _window_probes(loopback: Loopback, start: float, end: float) -> int:
    return sum(1 for at, _ in loopback.log() if start <= at < end)


def recovery(checks: list[Check], trigger: float) -> tuple[Check, Check] | None:
    """(last failing, first passing) check of the first recovery after the trigger, in start order."""
    after = sorted(c for c in checks if c[0] >= trigger)
    first_failure = next((i for i, c in enumerate(after) if not c[2]), None)
    if first_failure is None:
        return None
    first_pass = next((i for i in range(first_failure + 1, len(after)) if after[i][2]), None)
    return None if first_pass is None else (after[first_pass - 1], after[first_pass])


# ------------------------------------------------------------------------------------------------ livefire


def rto_spec(url: str, interval: float, length: float, after: float) -> DrillSpec:
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
        "phases": {"baseline": "1s", "lead": LEAD, "fault": length, "recovery": after},  # for the record only
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


def livefire_trial(loopback: Loopback, interval: float, after: float, length: float, lead: float = LEAD) -> Trial:
    loopback.reset()
    spec = rto_spec(loopback.url(), interval, length, after)
    vantage = Vantage(name="bench", region="local")
    target = ProbeTarget(name="entrypoint", url=spec.entrypoint, role="entrypoint")
    engine = ProbeEngine(ProbeSettings.from_spec(spec.probes, spec.served_by), vantage=vantage.name)
    samples: list[Sample] = []
    window = lead + length + after
    clock = WallClock()
    outage = time.monotonic() + lead
    loopback.schedule_outage(length, outage)
    asyncio.run(engine.run([target], window, samples.append))
    injected = clock.epoch_ms(outage)
    result = assess(spec, _plan(spec, target, vantage), samples, injected_at_ms=injected, restored_at_ms=None,
                    sample_keys=[])
    truth = clock.epoch_ms(outage + length)
    bracket = result.rto_bracket
    answered = {s.seq: s.ended_ms for s in samples}
    inside = (
        bracket is not None and bracket.last_failure_ms is not None
        and bracket.last_failure_ms <= truth <= answered[bracket.first_success_seq]
    )
    return Trial(
        length=length, seen=any(not s.ok and s.sent_ms >= injected for s in samples), rto=result.rto_seconds,
        bracket_ms=bracket.width_ms if bracket else None, inside=inside,
        probes=_window_probes(loopback, outage - lead, outage + length + after), window=window, interval=interval,
    )


def calibrate(loopback: Loopback, target_load: float, after: float, notes: list[str]) -> float:
    """The base interval at which livefire's load over DRILL_WINDOW (watch probes included) is ``target_load``.

    Pilot trials on the median outage measure the probes the watch adds on top of the base schedule.
    """
    length = sorted(LENGTHS)[len(LENGTHS) // 2]
    interval = 1.0 / target_load
    for _ in range(CALIBRATION_ROUNDS):
        pilot = livefire_trial(loopback, interval, after, length)
        if abs(pilot.drill_probes / DRILL_WINDOW / target_load - 1.0) <= LOAD_TOLERANCE:
            return interval
        extra = pilot.probes - pilot.window / interval  # watch probes on top of the base schedule
        base_needed = target_load * DRILL_WINDOW - extra
        if base_needed < DRILL_WINDOW * target_load / 4:
            notes.append(
                f"At {target_load:.2f} probes/s livefire cannot match the load: its watch alone sends about "
                f"{extra:.0f} probes per outage, more than three quarters of the {target_load * DRILL_WINDOW:.0f} "
                f"probes of a {DRILL_WINDOW:g} s window. livefire ran with Chaos Toolkit's period as its base "
                "interval instead, at a higher load (both loads are in the table)."
            )
            return 1.0 / target_load
        interval = DRILL_WINDOW / base_needed
    return interval


# ------------------------------------------------------------------------------------------- Chaos Toolkit


def _experiment(loopback: Loopback, length: float, lead: float, after: float) -> dict[str, Any]:
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
            "pauses": {"before": lead, "after": length + after},
        }],
        "rollbacks": [],
    }


def _ctk_result(loopback: Loopback, checks: list[Check], trigger: dict[str, float], length: float, lead: float,
                after: float) -> Trial:
    found = recovery(checks, trigger["start_wall"])
    truth = trigger["start_wall"] + length
    start = trigger["start_mono"]
    return Trial(
        length=length, seen=any(not ok for at, _, ok in checks if at >= trigger["start_wall"]),
        rto=None if found is None else found[1][0] - trigger["start_wall"],
        bracket_ms=None if found is None else (found[1][0] - found[0][0]) * 1000.0,
        inside=found is not None and found[0][0] <= truth <= found[1][1],
        probes=_window_probes(loopback, start - lead, start + length + after), window=lead + length + after,
    )


def ctk_trial(chaos: Path, work: Path, loopback: Loopback, frequency: float, length: float, lead: float) -> Trial:
    loopback.reset()
    work = work.resolve()
    experiment, journal = work / "experiment.json", work / "journal.json"
    journal.unlink(missing_ok=True)
    experiment.write_text(json.dumps(_experiment(loopback, length, lead, tail(frequency))))
    subprocess.run(
        [str(chaos), "--no-version-check", "--no-log-file", "--settings", str(work / "settings.yaml"), "run",
         "--journal-path", str(journal), "--hypothesis-strategy=continuously",
         "--hypothesis-frequency", repr(frequency), str(experiment)],
        cwd=work, capture_output=True, text=True, timeout=CTK_TIMEOUT_S, check=False,
    )
    document = json.loads(journal.read_text())
    trigger = document["run"][0]["output"]["body"]
    checks = [
        (datetime.fromisoformat(s["probes"][0]["start"]).timestamp(),
         datetime.fromisoformat(s["probes"][0]["end"]).timestamp(), bool(s["steady_state_met"]))
        for s in document["steady_states"]["during"] if s and s.get("probes")
    ]
    return _ctk_result(loopback, checks, trigger, length, lead, tail(frequency))


def ctk_loop_trial(loopback: Loopback, frequency: float, length: float, lead: float) -> Trial:
    """Stand-in used only when chaostoolkit cannot be installed: its continuous loop, re-implemented.

    One check at a time, each waiting for the previous to end, then a pause of ``frequency`` seconds — as
    ``chaoslib.run.run_hypothesis_continuously`` does — with a fresh connection per check.
    """
    loopback.reset()
    checks: list[Check] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            started = time.time()
            connection = http.client.HTTPConnection("127.0.0.1", loopback.port, timeout=2)
            try:
                connection.request("GET", "/healthz")
                passed = connection.getresponse().status == 200
            except OSError:
                passed = False
            finally:
                connection.close()
            checks.append((started, time.time(), passed))
            stop.wait(frequency)

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    time.sleep(lead)
    trigger = loopback.schedule_outage(length, time.monotonic())
    time.sleep(length + tail(frequency))
    stop.set()
    worker.join(timeout=5)
    return _ctk_result(loopback, checks, trigger, length, lead, tail(frequency))


def find_chaos() -> Path | None:
    for candidate in (Path(__file__).parent / ".work" / "venv" / "bin" / "chaos", shutil.which("chaos")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


# ------------------------------------------------------------------------------------------------- the run


def _trials(run: Callable[[float, float], Trial], frequency: float) -> list[Trial]:
    """Every length TRIALS times, each trial at its own lead (so at its own phase of the probing schedule)."""
    lengths = [length for _ in range(TRIALS) for length in LENGTHS]
    return [run(length, lead) for length, lead in zip(lengths, leads(frequency, len(lengths)), strict=True)]


def _baseline(chaos: Path | None, work: Path, loopback: Loopback, frequency: float) -> Config:
    if chaos is not None:
        return Config(f"Chaos Toolkit, frequency {frequency:g} s",
                      _trials(partial(ctk_trial, chaos, work, loopback, frequency), frequency))
    return Config(f"Chaos Toolkit loop re-implemented (NOT chaostoolkit), frequency {frequency:g} s",
                  _trials(partial(ctk_loop_trial, loopback, frequency), frequency))


def _rows(frequency: float, baseline: Config, ours: Config, bracket_budget: float, machine: str) -> list[Row]:
    where = f"f={frequency:g} s"
    our_max, their_max = max(ours.errors(), default=None), max(baseline.errors(), default=None)
    error_budget, error_status = "— (informational)", "—"
    if frequency == BUDGETED_FREQUENCY and their_max is not None:
        error_budget = f"≤ 1/5 of Chaos Toolkit's at 0.1 s (≤ {their_max / 5:.1f} ms)"
        error_status = status(our_max, their_max / 5, "ms")
    our_widths, their_widths = ours.widths(), baseline.widths()
    count = len(ours.trials)
    equal_load = abs(ours.load / baseline.load - 1.0) <= 2 * LOAD_TOLERANCE
    return [
        Row(f"Outages seen ({where}; {len(LENGTHS)} lengths x {TRIALS})", f"{ours.seen}/{count}",
            f"{baseline.seen}/{len(baseline.trials)}", "—", "—", "—", machine),
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
        Row(f"True recovery inside the reported bracket ({where}; of the trials with an RTO)",
            f"{ours.inside}/{ours.judged}", f"{baseline.inside}/{baseline.judged}", "—", "every time",
            "met" if ours.inside == ours.judged else f"MISSED in {ours.judged - ours.inside} of {ours.judged}",
            machine),
        Row(f"Probes per outage trial, mean ({where}; load over the trial windows)",
            f"{sum(t.probes for t in ours.trials) / count:.1f} ({ours.trial_load:.2f}/s)",
            f"{sum(t.probes for t in baseline.trials) / len(baseline.trials):.1f} ({baseline.trial_load:.2f}/s)",
            ratio(ours.trial_load, baseline.trial_load), "—", "—", machine),
        Row(f"Average probe load over a {DRILL_WINDOW:g} s drill window with the outage ({where})",
            f"{ours.load:.2f}/s", f"{baseline.load:.2f}/s", ratio(ours.load, baseline.load), "equal average load",
            "met" if equal_load else f"not equal: {ratio(ours.load, baseline.load)}", machine),
    ]


def _why(ours: Config, bracket_budget: float) -> str:
    """The largest bracket per outage length: where the accuracy budget is won or lost."""
    per_length = []
    for length in LENGTHS:
        widths = [t.bracket_ms for t in ours.trials if t.length == length and t.bracket_ms is not None]
        errors = [t.error_ms for t in ours.trials if t.length == length and t.error_ms is not None]
        per_length.append(f"{length:g} s outage: bracket ≤ {ms(max(widths, default=None))}, "
                          f"error ≤ {ms(max(errors, default=None))}")
    interval = ours.interval or 0.0
    text = f"Per outage length (f=0.1 s, livefire base interval {interval * 1000:.0f} ms): " + "; ".join(per_length)
    if max(ours.widths(), default=0.0) <= bracket_budget:
        return text + (f". Every recovery was bracketed on the burst grid (≤ {bracket_budget:.0f} ms): the engine "
                       "was still watching the failing target when it came back.")
    return text + (f". Why the budget is missed: a recovery is bracketed on the burst grid (≤ {bracket_budget:.0f} "
                   "ms) only while the target's watch budget lasts; past it the watch slows to the budget's refill "
                   "rate (probing/engine.py), so at this average load a longer outage's recovery is known only to "
                   "the widths shown.")


def run(machine: str) -> Section:
    section = Section("RTO accuracy against Chaos Toolkit")
    work = Path(__file__).resolve().parent / ".work" / "rto"
    work.mkdir(parents=True, exist_ok=True)
    chaos = find_chaos()
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {CLIENT_CPU})
    pairs = []
    try:
        with Loopback(cpu=SERVER_CPU) as loopback:
            for frequency in FREQUENCIES:
                baseline = _baseline(chaos, work, loopback, frequency)
                interval = calibrate(loopback, baseline.load, tail(frequency), section.notes)
                ours = Config(f"livefire at the load of {baseline.label}", interval=interval,
                              trials=_trials(partial(livefire_trial, loopback, interval, tail(frequency)), frequency))
                pairs.append((frequency, baseline, ours))
    finally:
        os.sched_setaffinity(0, affinity)

    bracket_budget = rto_spec("http://x/", 1.0, 1.0, 1.0).probes.burst_interval * 1000.0 + 10.0
    where = f"{machine}; probes on core {CLIENT_CPU}, endpoint on core {SERVER_CPU}"
    for frequency, baseline, ours in pairs:
        section.rows += _rows(frequency, baseline, ours, bracket_budget, where)
        section.notes += [baseline.summary(), ours.summary()]
        if frequency == BUDGETED_FREQUENCY:
            section.notes.append(_why(ours, bracket_budget))
    section.notes += [
        f"Outages of {', '.join(f'{x:g}' for x in LENGTHS)} s, {TRIALS} trials each per configuration; each trial "
        f"window is a lead of {LEAD:g} s + up to {PHASE_SPREAD:g} x frequency (the same leads for both tools) + "
        f"the outage + a {BASE_TAIL:g} s + frequency tail. Probes are counted by the "
        f"endpoint. Loads are compared over a {DRILL_WINDOW:g} s drill window holding the outage: the trial's "
        "probes plus the healthy rest of the window at each prober's steady rate (livefire: its base interval; "
        "Chaos Toolkit: the rate it showed in the trial).",
        "Ground truth: the endpoint process decides 200/503 on CLOCK_MONOTONIC when a request line arrives; the "
        "true RTO is the scripted length. 'Inside the bracket' means the recovery lies between the last "
        "failure's send and the first success's answer (a probe sent just before the recovery can arrive "
        "after it); errors are absolute values.",
        "Both tools get the exact trigger time (the endpoint's own record), so the errors are the probing and "
        f"judging resolution alone. livefire's RTO needs a sustained run of {SUSTAIN:g} s (spec probes.sustain); "
        "Chaos Toolkit's is its first passing check. An outage a prober never saw fail has no error.",
        "Chaos Toolkit's continuous loop waits for each check to end, then sleeps the frequency: its period is "
        "frequency + check time, and its error is up to a whole period. livefire's engine sends on a fixed "
        "base schedule and watches a degraded target on the burst grid, from a per-target token bucket.",
    ]
    if chaos is None:
        section.notes.append("chaostoolkit could not be installed (bench/requirements.txt): the baseline is a "
                             "faithful re-implementation of its continuous loop, clearly NOT chaostoolkit itself.")
    else:
        section.notes.append(f"Chaos Toolkit: {os.path.relpath(chaos, Path(__file__).resolve().parents[1])} "
                             "(versions pinned in bench/requirements.txt).")
    return section
