"""probe_window in chunks, as the state machine's two lanes run them: chunk k + 1 runs while chunk k still probes,
goes on from chunk k's handoff, and every base slot of every target is probed once across every boundary; the
sample chunks sort in window order under one prefix (real HTTP on loopback; an in-memory bucket). How on time a
boundary is, the workflow test measures (tests/workflow/test_probe_chunks.py)."""

from __future__ import annotations

import io
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from livefire.contracts import ProbeLoop, ProbeRequest, ProbeSummary
from livefire.probing.chunks import decode_chunk
from livefire.probing.window import probe_window
from livefire.spec import DrillSpec
from tests.component.test_probing import Endpoint, _request, _resolving, _spec
from tests.conftest import PROBE_ENGINE_ON_THE_WALL_CLOCK

pytestmark = PROBE_ENGINE_ON_THE_WALL_CLOCK

CHUNK_S = 1.0


class _Bucket:
    """The S3 calls the sample writer and the relay make, in memory."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> None:  # noqa: N803 (boto3's names)
        with self._lock:
            self.objects[Key] = Body

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        with self._lock:
            if Key not in self.objects:
                raise ClientError({"Error": {"Code": "NoSuchKey", "Message": Key}}, "GetObject")
            return {"Body": io.BytesIO(self.objects[Key])}


def _lane(request: ProbeRequest, spec: DrillSpec, bucket: _Bucket, lane: int) -> list[ProbeSummary]:
    """One lane as the state machine loops it: chunks lane, lane + 2, ... until one says done."""
    summaries: list[ProbeSummary] = []
    request = request.model_copy(update={"lane": lane})
    while not summaries or not summaries[-1].done:
        if summaries:
            request = request.model_copy(update={"probe": ProbeLoop(done=False, summary=summaries[-1])})
        summaries.append(probe_window(request, spec, s3_client=bucket, bucket="evidence", chunk_s=CHUNK_S))
    return summaries


def test_two_lanes_probe_a_window_in_chunks_with_every_base_slot_sent_once(monkeypatch):
    bucket = _Bucket()
    with Endpoint() as entry, Endpoint() as use1, Endpoint() as usw2:
        urls = _resolving(monkeypatch, {"entry": entry, "use1": use1, "usw2": usw2})
        spec = _spec(urls["entry"], urls["use1"], urls["usw2"])
        request = _request(spec, "baseline", baseline=3.5, observe=20.0)
        with ThreadPoolExecutor(max_workers=2) as lanes:
            first, second = lanes.map(lambda lane: _lane(request, spec, bucket, lane), (0, 1))

    # Chunks 0, 2 and 4 (which the window never reaches: it ends in chunk 3), and 1 and 3.
    assert [len(first), len(second)] == [3, 2] and first[-1].targets == []
    last = second[-1]
    prefix = last.sample_prefix
    assert any(key == f"{prefix}handoff-000002.json" for key in bucket.objects)
    keys = sorted(key for key in bucket.objects if key.endswith(".jsonl.gz"))
    assert all(key.startswith(prefix) for key in keys)
    by_invocation = [[s for key in keys if key.startswith(f"{prefix}{k:04d}")
                      for s in decode_chunk(bucket.objects[key])] for k in range(4)]
    assert all(max(s.scheduled_ms for s in earlier) < min(s.scheduled_ms for s in later)
               for earlier, later in itertools.pairwise(by_invocation))  # the chunk keys sort in window order
    samples = [s for key in keys for s in decode_chunk(bucket.objects[key])]
    by_target = {t.target: t for t in last.targets}
    for name, counts in by_target.items():
        base = [s for s in samples if s.target == name and not s.burst]
        assert len(base) == 70 == counts.sent  # 3.5 s at 50 ms, counted across the chunks
        scheduled = sorted(s.scheduled_ms for s in base)
        assert all(b - a == pytest.approx(50.0, abs=0.01) for a, b in itertools.pairwise(scheduled))


def test_a_drill_window_within_one_chunk_still_releases_the_lane_waiting_for_a_late_rollback(monkeypatch):
    bucket = _Bucket()
    with Endpoint() as entry, Endpoint() as use1, Endpoint() as usw2:
        urls = _resolving(monkeypatch, {"entry": entry, "use1": use1, "usw2": usw2})
        spec = _spec(urls["entry"], urls["use1"], urls["usw2"])
        request = _request(spec, "drill", baseline=1.0, observe=0.4)  # 0.9 s, but a rollback may add 60 s
        with ThreadPoolExecutor(max_workers=2) as lanes:
            first, second = lanes.map(lambda lane: _lane(request, spec, bucket, lane), (0, 1))

    assert [len(first), len(second)] == [1, 1] and first[0].done and second[0].done
    assert second[0].targets and all(t.sent == first[0].targets[i].sent for i, t in enumerate(second[0].targets))
    keys = sorted(key for key in bucket.objects if key.endswith(".jsonl.gz"))
    assert keys and all(key.startswith(first[0].sample_prefix + "0000") for key in keys)  # chunk 0's only
