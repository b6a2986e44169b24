"""The rows of bench/results.md and the machine they were measured on."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

NOT_MEASURED = "NOT MEASURED"
QUIET = 0.05  # share of the CPU others may use while the machine still counts as quiet


@dataclass
class Row:
    metric: str
    livefire: str
    baseline: str
    ratio: str
    budget: str
    status: str  # "met", "MISSED by ...", or "—" when docs/architecture.md §13 sets no budget for the row
    machine: str


@dataclass
class Section:
    """One benchmark's rows plus the prose that says how it was measured and why a budget is missed."""

    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    others: float = 0.0  # share of the machine's CPU that other processes used meanwhile


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


class OtherLoad:
    """How much of the machine processes other than this benchmark (and its children) used, from now on.

    All CPU time the kernel counts as busy (/proc/stat), minus this process's and its reaped children's.
    """

    def __init__(self) -> None:
        self._busy, self._mine, self._wall = self._busy_seconds(), self._my_seconds(), time.monotonic()

    @staticmethod
    def _busy_seconds() -> float:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _my_seconds() -> float:
        return sum(u.ru_utime + u.ru_stime
                   for u in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)))

    def share(self) -> float:
        others = (self._busy_seconds() - self._busy) - (self._my_seconds() - self._mine)
        available = (time.monotonic() - self._wall) * (os.cpu_count() or 1)
        return max(0.0, others) / available if available > 0 else 0.0


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
    busiest = max((section.others for section in sections), default=0.0)
    lines = [
        "# livefire benchmarks",
        "",
        f"Written by `make bench` on {started} in {total_seconds:.0f} s. Machine: {machine}.",
        "Benchmarks are programs, not tests: nothing here is asserted by the test suite. Every baseline was",
        "measured in the same run, on the same machine, against the same loopback endpoints.",
        f"Other processes used at most {busiest:.0%} of the machine's CPU during any one benchmark"
        + (": the machine was shared, so timings are pessimistic." if busiest > QUIET else " (a quiet machine)."),
        "",
        ("| metric | livefire | baseline (same run) | ratio | budget (docs/architecture.md §13) | budget status "
         "| machine |"),
        "|---|---|---|---|---|---|---|",
    ]
    for section in sections:
        for row in section.rows:
            cells = [row.metric, row.livefire, row.baseline, row.ratio, row.budget, row.status, row.machine]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    for section in sections:
        lines += ["", f"## {section.title}", "",
                  f"(ran {section.seconds:.0f} s; other processes used {section.others:.0%} of the machine's CPU "
                  "meanwhile)", ""]
        lines += [f"- {note}" for note in section.notes]
    return "\n".join(lines) + "\n"
