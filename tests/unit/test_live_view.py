"""The live view, driven by a recorded drill: fixed history events, fault records and sample chunks in an in-memory
bucket (no real drill), rendered for a terminal and as plain status lines."""

from __future__ import annotations

import io
import re
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from rich.console import Console

from livefire.contracts import Sample
from livefire.planning import planned_faults
from livefire.probing.chunks import encode_chunk
from livefire.spec import parse_spec
from livefire.store import FaultRecord
from livefire_local.console import make_console
from livefire_local.live import LiveView, render, status_line
from livefire_local.live_feed import ChunkFeed, DrillWatch
from tests.conftest import sandbox_spec_document
from tests.fakes import InMemoryS3

DRILL = "payments-active-passive-20260101T000000Z-abcd"
PREFIX = f"drills/payments/{DRILL}/samples/default/"
T0 = 1_767_225_600_000.0  # the Baseline state is entered
DRILL_AT = T0 + 1_000.0  # the Drill state is entered
INJECTED = DRILL_AT + 1_000.0
NOW = INJECTED + 1_500.0
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-7]|38;[0-9;]+)m")


class FakeStore:
    def __init__(self, faults: list[FaultRecord]) -> None:
        self.faults = faults

    def faults_of(self, drill_id: str) -> list[FaultRecord]:
        return [f for f in self.faults if f.drill_id == drill_id]


class TerminalText(io.StringIO):
    def isatty(self) -> bool:
        return True


SPEC = parse_spec(sandbox_spec_document(phases={"baseline": "1s", "lead": "1s", "fault": "3s", "recovery": "4s"}))


def sample(target: str, seq: int, sent_ms: float, ok: bool, served: str | None = "us-east-1") -> Sample:
    return Sample(target=target, vantage="default", seq=seq, scheduled_ms=sent_ms, sent_ms=sent_ms,
                  ended_ms=sent_ms + 5, ok=ok, status=200 if ok else 503, latency_ms=5.0,
                  served_by=served if ok else None, version="v1" if ok else None)


def baseline_chunk() -> list[Sample]:
    return [sample(t, i, T0 + 100 * i, True, "us-east-1" if t != "us-west-2" else "us-west-2")
            for t in ("entrypoint", "us-east-1", "us-west-2") for i in range(10)]


def drill_chunk() -> list[Sample]:
    """Lead: 10 successes; fault: 4 failures then 4 successes from the standby (entrypoint), the primary failing."""
    lead = [sample("entrypoint", i, DRILL_AT + 100 * i, True) for i in range(10)]
    fault = [sample("entrypoint", 10 + i, INJECTED + 100 * i, False) for i in range(4)]
    fault += [sample("entrypoint", 14 + i, INJECTED + 400 + 100 * i, True, "us-west-2") for i in range(4)]
    primary = [sample("us-east-1", i, INJECTED + 100 * i, False) for i in range(8)]
    return lead + fault + primary


def fault_record(status: str = "INJECTED", *, restored_at_ms: float | None = None,
                 detail: str | None = None) -> FaultRecord:
    planned = planned_faults(SPEC)[0]
    return FaultRecord(drill_id=DRILL, fault_id=planned.fault_id, status=status, planned=planned,
                       snapshot_key="snapshot", expires_at=0, injected_at_ms=int(INJECTED),
                       restored_at_ms=int(restored_at_ms) if restored_at_ms is not None else None, detail=detail)


def entered(name: str, at_ms: float) -> dict[str, Any]:
    return {"type": "TaskStateEntered", "timestamp": datetime.fromtimestamp(at_ms / 1000, UTC),
            "stateEnteredEventDetails": {"name": name}}


def recorded_bucket() -> InMemoryS3:
    s3 = InMemoryS3()
    s3.put_object(Key=f"{PREFIX}baseline-0000.jsonl.gz", Body=encode_chunk(baseline_chunk()))
    s3.put_object(Key=f"{PREFIX}drill-0000.jsonl.gz", Body=encode_chunk(drill_chunk()))
    return s3


def recorded_watch(*faults: FaultRecord) -> DrillWatch:
    watch = DrillWatch(SPEC, DRILL)
    for name, at in (("Plan", T0 - 500), ("Baseline", T0), ("Drill", DRILL_AT)):
        watch.on_event(entered(name, at))
    watch.set_faults(list(faults) or [fault_record()])
    for window, samples in ChunkFeed(recorded_bucket(), "bucket", SPEC, DRILL).poll():
        watch.add_chunk(window, samples)
    return watch


def test_the_terminal_view_shows_the_phase_clock_availability_server_and_fault_state() -> None:
    console = Console(record=True, width=120, force_terminal=True)

    console.print(render(recorded_watch(), NOW))
    text = console.export_text()

    assert "fault" in text and "1.5 s of 3.0 s, 1.5 s left" in text
    assert re.search(r"default\s+entrypoint\s+50\.0% \(4/8 probes\)\s+200\s+us-west-2@v1", text), text
    assert re.search(r"default\s+us-east-1\s+0\.0% \(0/8 probes\)\s+http-503\s+-", text), text
    assert re.search(r"default\s+us-west-2\s+- \(no probes read yet\)\s+200\s+us-west-2@v1", text), text
    assert "fault http-abort on VirtualService payments in us-east-1: injected" in text
    assert "2 sample chunks read" in text


def test_the_plain_status_line_names_the_entrypoints_availability_and_who_serves_it() -> None:
    line = status_line(recorded_watch(), NOW)

    assert line.startswith("~ fault 1.5 s of 3.0 s, 1.5 s left | ")
    assert "entrypoint@default: available in fault 50.0% (4/8 probes), last 200, served by us-west-2@v1" in line
    assert "us-east-1@default: available in fault 0.0% (0/8 probes), last http-503, served by nobody" in line
    assert "fault http-abort on VirtualService payments in us-east-1: injected" in line
    assert "\x1b" not in line


def test_availability_is_counted_in_the_current_phase_only_cut_at_the_injection_and_the_restore() -> None:
    watch = recorded_watch()

    lead = watch.availability("default", "entrypoint", "lead")
    fault = watch.availability("default", "entrypoint", "fault")
    baseline = watch.availability("default", "entrypoint", "baseline")
    watch.set_faults([fault_record("RESTORED", restored_at_ms=INJECTED + 600)])

    assert (lead.ok, lead.sent, fault.ok, fault.sent, baseline.sent) == (10, 10, 4, 8, 10)
    assert watch.phase == "recovery"
    assert watch.availability("default", "entrypoint", "fault").sent == 6
    assert watch.availability("default", "entrypoint", "recovery").percent == 100.0


def test_a_refused_restore_shows_as_refused_with_its_reason() -> None:
    watch = recorded_watch(fault_record("CONFLICT", detail="the VirtualService changed since the injection"))

    assert "restore refused (the VirtualService changed since the injection)" in status_line(watch, NOW)


def test_the_phase_follows_the_states_and_concludes_with_the_last_probed_phase_shown() -> None:
    watch = recorded_watch()

    watch.on_event(entered("Assess", NOW))

    assert watch.phase == "concluding"
    assert watch.probe_phase == "fault"
    line = status_line(watch, NOW + 2_000)
    assert line.startswith("~ concluding 2.0 s | entrypoint@default: available in fault 50.0%")


def test_the_feed_reads_each_chunk_once_with_one_listing_per_vantage_and_poll() -> None:
    s3 = recorded_bucket()
    feed = ChunkFeed(s3, "bucket", SPEC, DRILL)

    first = feed.poll()
    s3.put_object(Key=f"{PREFIX}drill-0001.jsonl.gz", Body=encode_chunk(drill_chunk()[:3]))
    second = feed.poll()
    third = feed.poll()

    assert [(w, len(s)) for w, s in first] == [("baseline", 30), ("drill", 26)]
    assert [(w, len(s)) for w, s in second] == [("drill", 3)]
    assert third == []
    assert (s3.lists, s3.gets) == (3, 3)


def test_the_feed_reads_at_most_its_budget_of_chunks_per_poll_and_the_rest_next_time() -> None:
    s3 = InMemoryS3()
    for chunk in range(5):
        s3.put_object(Key=f"{PREFIX}drill-{chunk:04d}.jsonl.gz", Body=encode_chunk(drill_chunk()[:1]))
    feed = ChunkFeed(s3, "bucket", SPEC, DRILL, max_chunks=2)

    polls = [len(feed.poll()) for _ in range(4)]

    assert polls == [2, 2, 1, 0]
    assert s3.gets == 5


def test_the_terminal_view_says_which_targets_the_local_sandbox_served() -> None:
    console = Console(record=True, width=120, force_terminal=True)
    watch = DrillWatch(SPEC, DRILL, served_by_sandbox=frozenset({"use1.payments.sandbox:80"}))

    console.print(render(watch, NOW))
    text = console.export_text()

    assert re.search(r"default\s+us-east-1 \(sandbox\)\s", text), text
    assert re.search(r"default\s+entrypoint\s", text) and "entrypoint (sandbox)" not in text
    assert re.search(r"default\s+us-west-2\s", text) and "us-west-2 (sandbox)" not in text


@pytest.mark.parametrize(("environ", "coloured"), [({}, True), ({"NO_COLOR": "1"}, False)], ids=["colour", "NO_COLOR"])
def test_no_color_turns_the_colours_of_the_terminal_view_off(environ: dict[str, str], coloured: bool) -> None:
    out = TerminalText()
    console = make_console(out, environ)

    console.print(render(recorded_watch(), NOW))

    assert console.is_terminal
    assert bool(ANSI_COLOUR.search(out.getvalue())) is coloured


def test_off_a_terminal_the_view_prints_a_status_line_every_poll_while_the_drill_probes() -> None:
    out = io.StringIO()
    view = LiveView(out, environ={}, poll_s=0.05)
    events: list[dict[str, Any]] = []

    with view.watch(SPEC, DRILL, events.append, s3=recorded_bucket(), bucket="bucket",
                    store=FakeStore([fault_record()])) as follow:
        follow(entered("Baseline", T0))
        follow(entered("Drill", DRILL_AT))
        give_up = time.monotonic() + 30
        while out.getvalue().count("~ fault") < 3 and time.monotonic() < give_up:
            time.sleep(0.05)

    lines = [line for line in out.getvalue().splitlines() if "~ " in line]
    assert len(events) == 2
    assert not view.terminal
    assert len(lines) >= 3
    assert all(re.match(r"\[\s*\d+\.\d\ds\] ~ fault ", line) for line in lines[-3:]), lines
    assert "entrypoint@default: available in fault 50.0% (4/8 probes)" in lines[-1]


def test_on_a_terminal_progress_lines_written_in_pieces_print_whole() -> None:
    out = TerminalText()
    view = LiveView(out, environ={"NO_COLOR": "1"})

    view.stream.write("> Ba")
    view.stream.write("seline\n< Baseline (1.00s)\n")

    assert view.terminal
    assert out.getvalue().splitlines() == ["> Baseline", "< Baseline (1.00s)"]


def test_on_a_terminal_the_live_display_ends_showing_the_drill_as_last_read() -> None:
    out = TerminalText()
    view = LiveView(out, environ={"NO_COLOR": "1"}, poll_s=0.05)

    with view.watch(SPEC, DRILL, lambda _: None, s3=recorded_bucket(), bucket="bucket",
                    store=FakeStore([fault_record()])) as follow:
        follow(entered("Baseline", T0))
        follow(entered("Drill", DRILL_AT))

    assert "50.0% (4/8 probes)" in out.getvalue()
    assert "~ " not in out.getvalue()  # no plain status lines on a terminal
