"""Samples as columns: read chunk by chunk into one compact series per vantage and target, in send order."""

from __future__ import annotations

from typing import Any

import pytest

from livefire.assessment.chart import BINS, chart_gap_ms, timeline_chart
from livefire.assessment.columns import SampleColumns
from livefire.contracts import Sample
from livefire.probing.chunks import encode_chunk, list_chunks, read_chunks
from tests.fakes import InMemoryS3

T0 = 1_700_000_000_000.0


def sample(seq: int, sent: float, *, target: str = "entry", ok: bool = True, **fields: Any) -> Sample:
    return Sample(target=target, vantage="local", seq=seq, scheduled_ms=T0 + sent, sent_ms=T0 + sent,
                  ended_ms=T0 + sent + 5, ok=ok, status=200 if ok else 503, latency_ms=5.0,
                  served_by="us-east-1" if ok else None, **fields)


def test_a_series_reads_back_every_field_of_every_sample_in_send_order() -> None:
    late = sample(1, 200, ok=False, error="timeout", burst=True)
    early = sample(0, 100, version="v2")

    series = SampleColumns.of([late, early]).groups[("local", "entry")]

    assert len(series) == 2
    assert [s.seq for s in series] == [0, 1]
    first, second = series[0], series[-1]
    assert (first.sent_ms, first.ok, first.status, first.error, first.served_by, first.version, first.burst) == (
        T0 + 100, True, 200, None, "us-east-1", "v2", False)
    assert (second.ok, second.status, second.error, second.served_by, second.burst) == (
        False, 503, "timeout", None, True)
    assert [s.seq for s in series[0:2]] == [0, 1]


def test_a_chunk_with_a_line_that_is_not_a_sample_is_refused_whole() -> None:
    columns = SampleColumns.of([sample(0, 100)])
    good = [sample(1, 200).model_dump(), sample(0, 200, target="other").model_dump()]
    broken = dict(sample(2, 300, target="third").model_dump(), ok="yes")

    with pytest.raises(ValueError, match="not a probe sample"):
        columns.add_rows([*good, broken])

    assert list(columns.groups) == [("local", "entry")]
    assert len(columns.groups[("local", "entry")]) == 1


def test_chunks_are_listed_by_prefix_and_read_in_key_order_on_a_few_threads() -> None:
    prefix = "drills/payments/d-1/samples/local/drill-"
    objects = {f"{prefix}{n:06d}.jsonl.gz": encode_chunk([sample(n, 100.0 * n)]) for n in range(40)}
    objects["drills/payments/d-1/samples/local/baseline-000000.jsonl.gz"] = encode_chunk([sample(99, 0)])
    s3 = InMemoryS3(objects)

    keys = list_chunks(s3, "bucket", prefix)
    read = list(read_chunks(s3, "bucket", keys, workers=3))

    assert keys == sorted(k for k in objects if k.startswith(prefix))
    assert [key for key, _ in read] == keys
    assert [rows[0]["seq"] for _, rows in read] == list(range(40))


def test_the_chart_of_a_long_drill_has_at_most_one_shape_per_bin_and_counts_every_probe() -> None:
    flapping = [sample(i, 10.0 * i, ok=i % 3 != 0) for i in range(5_000)]

    chart = timeline_chart([SampleColumns.of(flapping)], chart_gap_ms(0.1))

    assert chart is not None
    lane = chart.lanes[0]
    assert (lane.probes, lane.failed) == (5_000, len([i for i in range(5_000) if i % 3 == 0]))
    assert len(lane.outcome) <= BINS and len(lane.served) <= BINS
    assert chart.labels == ["us-east-1"]


def test_no_samples_make_no_chart() -> None:
    assert timeline_chart([SampleColumns()], chart_gap_ms(0.1)) is None
