"""probe_window in chunks, as the state machine loops over them: each invocation goes on from the previous one's
summary, the sample chunks are numbered on across invocations under one sortable prefix, and every base slot of
every target is probed once (real HTTP on loopback; an in-memory bucket)."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest

from livefire.artifacts import sample_key
from livefire.contracts import ProbeLoop, ProbeSummary
from livefire.probing.chunks import decode_chunk
from livefire.probing.window import probe_window
from tests.component.test_probing import Endpoint, _request, _resolving, _spec


class _Bucket:
    """The one S3 call the sample writer makes, in memory."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> None:  # noqa: N803 (boto3's names)
        with self._lock:
            self.objects[Key] = Body


def test_a_window_in_chunks_numbers_its_sample_chunks_on_and_probes_every_base_slot_once(monkeypatch):
    bucket = _Bucket()
    with Endpoint() as entry, Endpoint() as use1, Endpoint() as usw2:
        urls = _resolving(monkeypatch, {"entry": entry, "use1": use1, "usw2": usw2})
        spec = _spec(urls["entry"], urls["use1"], urls["usw2"])
        request = _request(spec, "baseline", baseline=1.2, observe=20.0)
        summaries: list[ProbeSummary] = []
        while not summaries or not summaries[-1].done:
            if summaries:
                request = request.model_copy(update={"probe": ProbeLoop(done=False, summary=summaries[-1])})
            summaries.append(probe_window(request, spec, s3_client=bucket, bucket="evidence", chunk_s=0.3))

    last = summaries[-1]
    assert len(summaries) >= 3 and all(s.resume is not None for s in summaries[:-1]) and last.resume is None
    prefix = request.plan.evidence_prefix
    assert sorted(bucket.objects) == [sample_key(prefix, "local", "baseline", n) for n in range(last.sample_chunks)]
    assert all(key.startswith(last.sample_prefix) for key in bucket.objects)
    samples = [s for key in sorted(bucket.objects) for s in decode_chunk(bucket.objects[key])]
    for target in last.targets:
        base = sorted(s.scheduled_ms for s in samples if s.target == target.target and not s.burst)
        assert len(base) == 24 == target.sent  # 1.2 s at 50 ms
        assert all(b - a == pytest.approx(50.0, abs=0.01) for a, b in itertools.pairwise(base))
        assert 12 <= target.peak_per_second <= 20 and target.average_per_second > 0  # at most one a 50 ms
    assert len({s.started_at_ms for s in summaries}) == 1
