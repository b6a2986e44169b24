"""Stream probe samples to S3 as gzipped JSON Lines chunks, so a crash loses at most one chunk.

``add`` runs on the probe event loop and only appends; serializing, compressing and the S3 put happen on a
single worker thread (chunks are written in order) so a slow put never delays a probe send.
"""

from __future__ import annotations

import gzip
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel

from livefire.artifacts import sample_key
from livefire.contracts import Sample

_GZIP_MAGIC = b"\x1f\x8b"


def encode_chunk(samples: Iterable[BaseModel]) -> bytes:
    lines = "".join(f"{sample.model_dump_json()}\n" for sample in samples)
    return gzip.compress(lines.encode("utf-8"), mtime=0)


def decode_lines(data: bytes) -> list[bytes]:
    """The non-empty lines of a chunk."""
    if data[:2] == _GZIP_MAGIC:  # tolerate a client that already undid the Content-Encoding
        data = gzip.decompress(data)
    return [line for line in data.splitlines() if line.strip()]


def decode_chunk(data: bytes) -> list[Sample]:
    return [Sample.model_validate_json(line) for line in decode_lines(data)]


def decode_rows(data: bytes) -> list[dict[str, Any]]:
    """The objects of a chunk as plain JSON (no model per line: Assess turns them into columns), parsed in one call
    as one array (from text: a third quicker than from bytes)."""
    if data[:2] == _GZIP_MAGIC:
        data = gzip.decompress(data)
    rows = json.loads("[" + ",".join(line for line in data.decode("utf-8").split("\n") if line.strip()) + "]")
    if not all(isinstance(row, dict) for row in rows):
        raise ValueError("a chunk line is not a JSON object")
    return rows


class SampleChunkWriter:
    def __init__(
        self,
        s3_client: Any,
        bucket: str,
        prefix: str,
        vantage: str,
        window: str,
        *,
        max_samples: int = 5000,
        max_age_s: float = 5.0,
        key: Callable[[int], str] | None = None,
    ) -> None:
        """``key``: the S3 key of chunk N (default: the probe samples' ``sample_key``; data checks name theirs)."""
        if max_samples < 1:
            raise ValueError("max_samples must be at least 1")
        self._s3 = s3_client
        self._bucket = bucket
        self._key = key or (lambda chunk: sample_key(prefix, vantage, window, chunk))
        self._max_samples = max_samples
        self._max_age_s = max_age_s
        self._buffer: list[BaseModel] = []
        self._opened_at = 0.0
        self._keys: list[str] = []
        self._puts: list[Future[None]] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="livefire-chunks")
        self._closed = False

    @property
    def keys(self) -> list[str]:
        """The keys of the chunks handed to S3 so far (written once ``close`` returns)."""
        return list(self._keys)

    def add(self, sample: BaseModel) -> None:
        if self._closed:
            raise RuntimeError("the sample chunk writer is closed")
        if not self._buffer:
            self._opened_at = time.monotonic()
        self._buffer.append(sample)
        if len(self._buffer) >= self._max_samples or time.monotonic() - self._opened_at >= self._max_age_s:
            self.flush()

    def flush(self) -> None:
        """Hand the buffered samples to the writer thread; raise if an earlier put failed."""
        if self._buffer:
            key = self._key(len(self._keys))
            batch, self._buffer = self._buffer, []
            self._keys.append(key)
            self._puts.append(self._executor.submit(self._put, key, batch))
        self._raise_failed_put()

    def close(self) -> list[str]:
        """Write what is buffered, wait for every put, and return the keys of all chunks, in order.

        Raises the error of a failed put (on every call: a key is only returned once it is written).
        """
        if not self._closed:
            self._closed = True
            try:
                self.flush()
            finally:
                self._executor.shutdown(wait=True)
        for put in self._puts:
            put.result()
        return list(self._keys)

    def _raise_failed_put(self) -> None:
        for put in self._puts:
            if put.done() and put.exception() is not None:
                put.result()

    def _put(self, key: str, batch: list[BaseModel]) -> None:
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=encode_chunk(batch),
            ContentType="application/x-ndjson",
            ContentEncoding="gzip",
        )


def load_samples(s3_client: Any, bucket: str, keys: Iterable[str]) -> list[Sample]:
    """Read sample chunks back, in the order of ``keys``."""
    samples: list[Sample] = []
    for key in keys:
        body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
        samples.extend(decode_chunk(body))
    return samples


def list_chunks(s3_client: Any, bucket: str, prefix: str) -> list[str]:
    """The keys of every chunk under ``prefix`` (e.g. ``<drill>/samples/``), in key order: chunk N of a window
    after chunk N-1."""
    keys: list[str] = []
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [obj["Key"] for obj in page.get("Contents", []) if obj["Key"].endswith(".jsonl.gz")]
    return sorted(keys)


def read_chunks(s3_client: Any, bucket: str, keys: Sequence[str], *, workers: int = 4
                ) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Each chunk's objects (``decode_rows``), in the order of ``keys``: fetched and decoded on ``workers``
    threads, at most twice that many chunks read ahead, so memory holds a bounded number of chunks."""

    def fetch(key: str) -> list[dict[str, Any]]:
        return decode_rows(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="livefire-read") as pool:
        pending: deque[tuple[str, Future[list[dict[str, Any]]]]] = deque()
        try:
            for key in keys:
                pending.append((key, pool.submit(fetch, key)))
                if len(pending) >= 2 * workers:
                    done_key, done = pending.popleft()
                    yield done_key, done.result()
            while pending:
                done_key, done = pending.popleft()
                yield done_key, done.result()
        finally:
            for _, future in pending:
                future.cancel()
