"""The load a drill put on each endpoint, counted from the probes really sent: base schedule and watch bursts."""

from __future__ import annotations

from livefire.assessment.columns import SampleColumns
from livefire.assessment.load import probe_load
from livefire.contracts import Sample

T0 = 1_700_000_000_000.0  # a whole second: the one-second buckets start here


def probe(seq: int, sent: float, *, target: str = "entry", burst: bool = False) -> Sample:
    return Sample(target=target, vantage="local", seq=seq, scheduled_ms=T0 + sent, sent_ms=T0 + sent,
                  ended_ms=T0 + sent + 5, ok=not burst, status=200 if not burst else 503, latency_ms=5.0,
                  served_by="us-east-1" if not burst else None, burst=burst)


def test_a_base_schedule_with_one_watched_second_counts_its_watch_probes_and_peaks_in_that_second() -> None:
    base = [probe(i, i * 100.0) for i in range(101)]  # 10 a second for 10 s
    watch = [probe(1000 + i, 3000.0 + 5 + i * 10.0, burst=True) for i in range(90)]  # 10 ms apart in second 3

    [load] = probe_load(SampleColumns.of(base + watch).groups)

    assert (load.vantage, load.target, load.sent, load.watch) == ("local", "entry", 191, 90)
    assert load.peak_per_s == 100  # second 3: 10 base probes and 90 watch probes
    assert load.average_per_s == 19.1  # 191 probes over 10 s


def test_each_target_gets_its_own_row_and_a_single_probe_has_no_average() -> None:
    samples = [probe(0, 0.0, target="alone"), probe(0, 0.0), probe(1, 500.0)]

    loads = probe_load(SampleColumns.of(samples).groups)

    assert [(load.target, load.sent, load.average_per_s, load.peak_per_s) for load in loads] == [
        ("alone", 1, None, 1), ("entry", 2, 4.0, 2)]
