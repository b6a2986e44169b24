"""The live view of `livefire run` and `livefire start` (docs/architecture.md §10).

While the drill runs, a thread polls the drill's fault records and its probe sample chunks (``live_feed``) every
``poll_s`` seconds, locally from moto's in-process S3 and on AWS from the evidence bucket, so both show the same
view: the current phase with its elapsed and remaining time, and per vantage and target (marked when the local
sandbox served it) the availability so far in that phase, the last status, who is serving (region@version) and the
state of each fault.

On a terminal it is a rich live display (progress lines scroll above it); anywhere else (CI, logs, a pipe) one
plain status line per poll while the drill probes. ``NO_COLOR`` (set and not empty) turns colours off.
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TextIO, cast

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console, Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from livefire.spec import DrillSpec
from livefire_local.console import make_console
from livefire_local.live_feed import (
    FAULT_WORDS,
    Availability,
    ChunkFeed,
    DrillWatch,
    FaultSource,
    status_text,
    who_served,
)

POLL_S = 2.0
STATUS_MARK = "~"  # starts every plain status line
OnEvent = Callable[[dict[str, Any]], None]


def _seconds(value: float) -> str:
    return f"{value:.1f} s"


def _percent(availability: Availability) -> str:
    percent = availability.percent
    if percent is None:
        return "- (no probes read yet)"
    return f"{percent:.1f}% ({availability.ok}/{availability.sent} probes)"


def _clock(watch: DrillWatch, now_ms: float) -> tuple[float, float | None]:
    """Seconds elapsed in the current phase, and the phase's length from the spec (None: open-ended)."""
    started = watch.phase_started_ms.get(watch.phase)
    elapsed = 0.0 if started is None else max(0.0, (now_ms - started) / 1000.0)
    return elapsed, watch.phase_seconds(watch.phase)


def _clock_text(watch: DrillWatch, now_ms: float) -> str:
    elapsed, length = _clock(watch, now_ms)
    if length is None:
        return _seconds(elapsed)
    return f"{_seconds(elapsed)} of {_seconds(length)}, {_seconds(max(0.0, length - elapsed))} left"


def _fault_texts(watch: DrillWatch) -> list[tuple[str, str]]:
    """(what, state) per fault record."""
    rows = []
    for fault in watch.faults:
        planned = fault.planned
        what = f"{planned.kind} on {planned.object_kind} {planned.object_name} in {planned.region}"
        state = FAULT_WORDS.get(fault.status, fault.status.lower())
        explained = fault.detail and fault.status in ("CONFLICT", "FAILED")
        rows.append((what, state + (f" ({fault.detail})" if explained else "")))
    return rows


def _probes_lag(watch: DrillWatch, now_ms: float) -> str:
    latest = watch.latest_probe_ms
    if latest is None:
        return "no probe samples read yet"
    return f"{watch.chunks_read} sample chunks read, newest probe {_seconds(max(0.0, now_ms - latest) / 1000.0)} ago"


def status_line(watch: DrillWatch, now_ms: float) -> str:
    """One plain line: the phase clock, then per vantage and target (the entrypoint first) its availability in the
    phase so far, last status and server, then the faults."""
    phase = watch.probe_phase
    parts = [f"{STATUS_MARK} {watch.phase} {_clock_text(watch, now_ms)}"]
    for (vantage, target), series in watch.series.items():
        last = series.last
        if phase is None or last is None:
            continue
        served = who_served(last) if last.ok else None
        parts.append(f"{target}@{vantage}: available in {phase} {_percent(watch.availability(vantage, target, phase))}"
                     f", last {status_text(last)}, served by {served or 'nobody'}")
    parts += [f"fault {what}: {state}" for what, state in _fault_texts(watch)]
    parts.append(watch.problem or _probes_lag(watch, now_ms))
    return " | ".join(parts)


def _availability_style(availability: Availability) -> str:
    percent = availability.percent
    if percent is None:
        return "dim"
    return "green" if percent >= 99.0 else "yellow" if percent >= 90.0 else "red"


def render(watch: DrillWatch, now_ms: float) -> RenderableType:
    """The terminal view: header, phase progress, one row per vantage and target, the faults."""
    spec = watch.spec
    header = Text.assemble(("drill ", "bold"), (watch.drill_id, "bold cyan"),
                           f"  {spec.pattern}, fault {spec.fault.kind} on {spec.fault.region}")
    elapsed, length = _clock(watch, now_ms)
    clock = Table.grid(padding=(0, 1))
    clock.add_row(Text(f"{watch.phase:<10}", style="bold"),
                  ProgressBar(total=length or 1.0, completed=min(elapsed, length) if length else 0.0,
                              width=32, pulse=length is None),
                  Text(_clock_text(watch, now_ms)))
    phase = watch.probe_phase
    table = Table(box=None, padding=(0, 2), header_style="bold")
    for column in ("vantage", "target", f"availability ({phase or '-'})", "last", "serving"):
        table.add_column(column)
    for (vantage, target), series in watch.series.items():
        availability = watch.availability(vantage, target, phase) if phase else Availability(0, 0)
        last = series.last
        sandbox = watch.reaches.get(target) == "sandbox"  # every other target is real
        table.add_row(
            vantage, Text.assemble(target, (" (sandbox)" if sandbox else "", "dim")),
            Text(_percent(availability), style=_availability_style(availability)),
            Text("-", style="dim") if last is None else Text(status_text(last), style="green" if last.ok else "red"),
            (who_served(last) or "-") if last is not None and last.ok else "-",
        )
    faults = [Text.assemble("fault ", what, ": ", (state, "green" if state == "restored" else "bold red"))
              for what, state in _fault_texts(watch)]
    footer = Text(watch.problem or _probes_lag(watch, now_ms), style="yellow" if watch.problem else "dim")
    return Group(header, clock, table, *faults, footer)


class ConsoleLines(io.TextIOBase):
    """A text stream that prints each complete line through a console, so progress lines written from several
    threads scroll above the live display instead of tearing it."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._pending = threading.local()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        buffered = getattr(self._pending, "text", "") + text
        *lines, self._pending.text = buffered.split("\n")
        for line in lines:
            self._console.print(Text(line), soft_wrap=True)
        return len(text)


class _Watcher:
    """The polling thread of one drill's live view."""

    def __init__(self, view: LiveView, watch: DrillWatch, feed: ChunkFeed, store: FaultSource) -> None:
        self.view = view
        self.watch = watch
        self.feed = feed
        self.store = store
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, name="livefire-live", daemon=True)

    def on_event(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.watch.on_event(event)

    def poll(self) -> None:
        try:
            faults = self.store.faults_of(self.watch.drill_id)
            chunks = self.feed.poll()
        except (BotoCoreError, ClientError, ValueError) as exc:  # the view must never stop the drill it watches
            with self.lock:
                self.watch.problem = f"live view could not read the drill: {exc}"
            return
        with self.lock:
            self.watch.problem = None
            self.watch.set_faults(faults)
            for window, samples in chunks:
                self.watch.add_chunk(window, samples)

    def renderable(self) -> RenderableType:
        with self.lock:
            return render(self.watch, time.time() * 1000.0)

    def run(self) -> None:
        start = time.monotonic()
        tick = 0
        while not self.stopped.wait(max(0.0, start + tick * self.view.poll_s - time.monotonic())):
            self.poll()
            if not self.view.terminal:
                with self.lock:
                    probing = self.watch.phase in ("baseline", "lead", "fault", "recovery")
                    line = status_line(self.watch, time.time() * 1000.0)
                if probing:
                    self.view.line(line)
            tick = max(tick + 1, int((time.monotonic() - start) / self.view.poll_s) + 1)


class LiveView:
    """Where the live view of a drill goes: a rich live display on a terminal, plain status lines elsewhere.

    ``stream`` is what the drill's progress lines should be written to (they scroll above the live display).
    """

    def __init__(self, out: TextIO, *, environ: Mapping[str, str] = os.environ, poll_s: float = POLL_S,
                 terminal: bool | None = None) -> None:
        self.console = make_console(out, environ)
        self.terminal = self.console.is_terminal if terminal is None else terminal
        self.poll_s = poll_s
        self.stream = cast(TextIO, ConsoleLines(self.console)) if self.terminal else out
        self._out = out
        self._t0 = time.monotonic()

    def line(self, text: str) -> None:
        print(f"[{time.monotonic() - self._t0:6.2f}s] {text}", file=self._out, flush=True)

    @contextmanager
    def watch(self, spec: DrillSpec, drill_id: str, on_event: OnEvent, *, s3: Any, bucket: str,
              store: FaultSource, served_by_sandbox: frozenset[str] = frozenset()) -> Iterator[OnEvent]:
        """Show the drill live until the block ends; yields the history-event callback to follow it with.
        ``served_by_sandbox``: the host:ports the local sandbox serves (``livefire run``), shown per target."""
        watch = DrillWatch(spec, drill_id, served_by_sandbox=served_by_sandbox)
        watcher = _Watcher(self, watch, ChunkFeed(s3, bucket, spec, drill_id), store)

        def both(event: dict[str, Any]) -> None:
            on_event(event)
            watcher.on_event(event)

        live = None
        if self.terminal:
            from rich.live import Live

            live = Live(get_renderable=watcher.renderable, console=self.console, refresh_per_second=2,
                        redirect_stdout=False, redirect_stderr=False)
            live.start()
        watcher.thread.start()
        try:
            yield both
        finally:
            watcher.stopped.set()
            try:
                watcher.thread.join()
                if live is not None:
                    watcher.poll()  # the last frame shows the drill as it ended
            finally:
                if live is not None:
                    live.stop()


@contextmanager
def watch_drill(live: LiveView | None, spec: DrillSpec, drill_id: str, on_event: OnEvent, *, s3: Any, bucket: str,
                store: FaultSource, served_by_sandbox: frozenset[str] = frozenset()) -> Iterator[OnEvent]:
    """``live.watch`` when there is a live view, else just ``on_event``."""
    if live is None:
        yield on_event
        return
    with live.watch(spec, drill_id, on_event, s3=s3, bucket=bucket, store=store,
                    served_by_sandbox=served_by_sandbox) as follow:
        yield follow
