"""`make bench`: run every benchmark and write bench/results.md (see each module's docstring for the method).

    python -m bench                      # everything (about 6 minutes on 2 cores)
    python -m bench --only rto,schedule  # some of them; results.md then holds only those
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import assess, blast_radius, coldinit, drill, local_pacing, outages, rpo, rto, schedule
from bench.report import NOT_MEASURED, OtherLoad, Section, machine_description, render, short_machine

BENCHMARKS: dict[str, Callable[[str], Section]] = {
    "coldinit": coldinit.run,
    "schedule": schedule.run,
    "rto": rto.run,
    "assess": assess.run,  # Assess at 10^4..5x10^6 samples against the pre-change commit (about 10 minutes)
    "outages": outages.run,  # RTO accuracy for outages of 0.5 s to 45 s (about 4 minutes)
    "rpo": rpo.run,  # runs whole sandbox drills, like drill: moto in this process
    "blast_radius": blast_radius.run,  # abort and rollback latency: sandbox drills (moto in this process)
    "local_pacing": local_pacing.run,  # probe send lateness of local drills, tuned vs defaults (about 3 minutes)
    "drill": drill.run,  # last: it imports moto into this process
}
RESULTS = Path(__file__).resolve().parent / "results.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated: " + ", ".join(BENCHMARKS))
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    machine = machine_description()
    started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    started = time.monotonic()
    sections: list[Section] = []
    failed = False
    for name in chosen:
        print(f"bench: {name} ...", flush=True)
        meter = OtherLoad()
        began = time.monotonic()
        try:
            section = BENCHMARKS[name](short_machine())
        except Exception:
            failed = True
            section = Section(f"{name}: FAILED", notes=["The benchmark raised:", "```", traceback.format_exc(), "```"])
            print(traceback.format_exc(), file=sys.stderr)
        section.seconds = time.monotonic() - began
        section.others = meter.share()
        print(f"bench: {name} done in {section.seconds:.0f} s", flush=True)
        sections.append(section)
    text = render(sections, machine=machine, started=started_at, total_seconds=time.monotonic() - started)
    args.output.write_text(text)
    print(f"bench: wrote {args.output} in {time.monotonic() - started:.0f} s", flush=True)
    unmeasured = [row.metric for section in sections for row in section.rows if row.livefire == NOT_MEASURED]
    for metric in unmeasured:
        print(f"bench: NOT MEASURED: {metric}", file=sys.stderr)
    return 1 if failed or unmeasured else 0


if __name__ == "__main__":
    sys.exit(main())
