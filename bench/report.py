"""The rows of bench/results.md and the machine they were measured on."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

NOT_MEASURED = "NOT MEASURED"


@dataclass
class Row:
    metric: str
    livefire: str
    baseline: str
    ratio: str
    budget: str
    status: str  # "met", "MISSED by ...", or "—" when DESIGN §9 sets no budget for the row
    machine: str


@dataclass
class Section:
    """One benchmark's rows plus the prose that says how it was measured and why a budget is missed."""

    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before and after


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or "unknown CPU"


def short_machine() -> str:
    """The machine column of a row; the full description heads results.md."""
    return f"{os.cpu_count()} cores, {_cpu_name()}"


def machine_description() -> str:
    cpu = _cpu_name()
    try:
        with open("/proc/meminfo") as fh:
            total_kb = int(next(line.split()[1] for line in fh if line.startswith("MemTotal")))
        memory = f"{total_kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        memory = "unknown memory"
    return (
        f"{os.cpu_count()} x {cpu}, {memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def ratio(value: float | None, baseline: float | None) -> str:
    if value is None or baseline is None or baseline == 0:
        return "—"
    return f"{value / baseline:.3g}x"


def ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} ms"


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile, as livefire.assessment computes it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def status(value: float | None, limit: float, unit: str, *, lower_is_better: bool = True) -> str:
    if value is None:
        return "MISSED (not measured)"
    ok = value <= limit if lower_is_better else value >= limit
    if ok:
        return "met"
    return f"MISSED by {abs(value - limit):.3g} {unit}".rstrip()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(sections: Sequence[Section], *, machine: str, started: str, total_seconds: float) -> str:
    busiest = max((max(section.load) for section in sections), default=0.0)
    cores = os.cpu_count() or 1
    lines = [
        "# livefire benchmarks",
        "",
        f"Written by `make bench` on {started} in {total_seconds:.0f} s. Machine: {machine}.",
        "Benchmarks are programs, not tests: nothing here is asserted by the test suite. Every baseline was",
        "measured in the same run, on the same machine, against the same loopback endpoints.",
        f"Highest 1-minute load average seen around a benchmark: {busiest:.2f} on {cores} cores"
        + (" — other processes were busy on this machine, so timings are pessimistic." if busiest > cores / 2
           else " (a quiet machine)."),
        "",
        "| metric | livefire | baseline (same run) | ratio | budget (DESIGN §9) | budget status | machine |",
        "|---|---|---|---|---|---|---|",
    ]
    for section in sections:
        for row in section.rows:
            cells = [row.metric, row.livefire, row.baseline, row.ratio, row.budget, row.status, row.machine]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    for section in sections:
        lines += ["", f"## {section.title}", "",
                  f"(ran {section.seconds:.0f} s; 1-minute load average {section.load[0]:.2f} before, "
                  f"{section.load[1]:.2f} after)", ""]
        lines += [f"- {note}" for note in section.notes]
    return "\n".join(lines) + "\n"
