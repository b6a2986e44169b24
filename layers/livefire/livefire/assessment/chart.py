"""The probes' timeline chart, binned once from the columns: what report.html draws per endpoint and vantage
(docs/architecture.md §7, §8).

Assess already holds every sample as columns, so it bins them here and writes the result as ``timeline.json``;
the Evidence step draws the chart from that file instead of reading and decoding every sample chunk again (it
bins the chunks itself only for a drill that ended before Assess). Each lane is cut into ``BINS`` pixel columns
over the time axis shared by every lane: a bin's outcome is success, failure or both, and who served it is the
label most of its successes named; a bin without a probe carries the state of the last probe before it forward,
unless that probe is more than ``gap_ms`` older. Lanes are stored as runs of equal bins.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from itertools import compress

from pydantic import BaseModel, Field

from livefire.assessment.columns import SampleColumns, Series, served_label

CHART_NAME = "timeline.json"
BINS = 400
OK_COLOUR, FAIL_COLOUR, MIXED_COLOUR = "#2da44e", "#cf222e", "#d4a72c"
NOT_NAMED = "(not named)"

CARRY_INTERVALS = 3  # a bin without a probe shows the last state for up to this many probe intervals
Run = tuple[int, int, str]  # bins [start, end) that share one value


class ChartLane(BaseModel):
    """One endpoint seen from one vantage."""

    target: str = Field(description="The probed target.")
    vantage: str = Field(description="The vantage that probed it.")
    probes: int = Field(description="How many probes it sent (both windows).")
    failed: int = Field(description="How many of them failed.")
    outcome: list[Run] = Field(description="Runs of bins by outcome colour (success, failure, both).")
    served: list[Run] = Field(description="Runs of bins by who served (region@version, as the answers named it).")


class TimelineChart(BaseModel):
    """The chart of a drill's probes (timeline.json): the shared axis, the labels of who served, one lane per
    target and vantage. Times are UTC epoch ms."""

    start_ms: float = Field(description="The first probe's send: the axis starts there.")
    end_ms: float = Field(description="The last probe's end: the axis ends there (at least 1 ms after the start).")
    bins: int = Field(description="Bins per lane.")
    gap_ms: float = Field(description="How long a bin without a probe carries the last state forward.")
    labels: list[str] = Field(description="Every label of who served a success, sorted.")
    lanes: list[ChartLane] = Field(description="One lane per target and vantage, by target then vantage.")


def chart_gap_ms(interval_s: float) -> float:
    """How long an empty bin carries the last state forward, for a base probe interval of ``interval_s``."""
    return CARRY_INTERVALS * interval_s * 1000.0


def runs(values: Sequence[str | None]) -> list[Run]:
    """The runs of equal values, the empty ones (None) left out."""
    found: list[Run] = []
    start = 0
    for index in range(1, len(values) + 1):
        if index == len(values) or values[index] != values[start]:
            if values[start] is not None:
                found.append((start, index, str(values[start])))
            start = index
    return found


def _labels(series: Series) -> dict[tuple[int, int], str]:
    """The label of every (served_by, version) code pair of the series' successes."""
    names = series.tables
    pairs = {pair for pair, good in zip(zip(series.served_by, series.version, strict=True), series.ok, strict=True)
             if good}
    return {(r, v): served_label(names.served_by.names[r] or NOT_NAMED, names.version.names[v]) for r, v in pairs}


def _edges(series: Series, start_ms: float, width: float) -> list[int]:
    """Where each bin's samples start in the series (in send order, so a bin is a slice): ``edges[k]`` is the
    index of the first sample in bin k or later, for k = 0..BINS. Found by bisection, then checked against the
    bin each sample falls in, so a sample on an edge lands where the division puts it."""
    sent = series.sent_ms

    def bin_of(i: int) -> int:
        return min(BINS - 1, max(0, int((sent[i] - start_ms) / width)))

    edges = [0]
    for k in range(1, BINS):
        i = bisect_left(sent, start_ms + k * width, lo=edges[-1])
        while i > edges[-1] and bin_of(i - 1) >= k:
            i -= 1
        while i < len(sent) and bin_of(i) < k:
            i += 1
        edges.append(i)
    return [*edges, len(sent)]


def _lane(parts: Sequence[Series], start_ms: float, end_ms: float, gap_ms: float) -> ChartLane:
    width = max(end_ms - start_ms, 1.0) / BINS
    ok, bad = [0] * BINS, [0] * BINS
    served: list[Counter[str]] = [Counter() for _ in range(BINS)]
    for series in parts:
        labels = _labels(series)
        edges = _edges(series, start_ms, width)
        for index in range(BINS):
            begin, end = edges[index], edges[index + 1]
            if begin == end:
                continue
            good = sum(series.ok[begin:end])
            ok[index] += good
            bad[index] += end - begin - good
            if good:
                pairs = Counter(compress(zip(series.served_by[begin:end], series.version[begin:end], strict=True),
                                         series.ok[begin:end]))
                for pair, count in pairs.items():
                    served[index][labels[pair]] += count
    outcome: list[str | None] = []
    who: list[str | None] = []
    last: tuple[str | None, str | None] = (None, None)
    last_seen = -math.inf
    for index in range(BINS):
        if ok[index] or bad[index]:
            colour = MIXED_COLOUR if ok[index] and bad[index] else OK_COLOUR if ok[index] else FAIL_COLOUR
            label = served[index].most_common(1)[0][0] if served[index] else None
            last, last_seen = (colour, label), start_ms + (index + 1) * width
        elif start_ms + index * width - last_seen > gap_ms:
            last = (None, None)
        outcome.append(last[0])
        who.append(last[1])
    return ChartLane(target=parts[0].target, vantage=parts[0].vantage, probes=sum(len(s) for s in parts),
                     failed=sum(len(s) - sum(s.ok) for s in parts), outcome=runs(outcome), served=runs(who))


def timeline_chart(windows: Sequence[SampleColumns], gap_ms: float) -> TimelineChart | None:
    """The chart of the samples of every window (baseline, drill) on one axis; None when there is none."""
    spans = [window.span() for window in windows]
    firsts = [first for first, _ in spans if first is not None]
    lasts = [last for _, last in spans if last is not None]
    if not firsts or not lasts:
        return None
    start_ms, end_ms = min(firsts), max(lasts)
    lanes: dict[tuple[str, str], list[Series]] = {}
    for window in windows:
        for (vantage, target), series in window.groups.items():
            if len(series):
                lanes.setdefault((target, vantage), []).append(series)
    labels = {label for parts in lanes.values() for series in parts for label in _labels(series).values()}
    return TimelineChart(
        start_ms=start_ms, end_ms=end_ms, bins=BINS, gap_ms=gap_ms, labels=sorted(labels),
        lanes=[_lane(lanes[key], start_ms, max(end_ms, start_ms + 1.0), gap_ms) for key in sorted(lanes)],
    )
