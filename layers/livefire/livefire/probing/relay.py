"""The relay between the chunks of a probe window (docs/architecture.md §6).

A window longer than one invocation is probed in chunks of ``chunkSeconds``, chunk k sending the base slots from
grid + k x chunkSeconds on. The state machine runs two lanes per window (chunks 0, 2, 4... and 1, 3, 5...), so
chunk k + 1's function is invoked while chunk k still probes: it waits for its first slot and sends it on time,
with no gap at the boundary for a state transition or a cold start. What chunk k knows about the targets (watch,
burst budget, load, guard) reaches chunk k + 1 as a small S3 object written the moment chunk k stops sending
(``ProbeHandoff``); chunk k + 1 adopts it when it arrives, a few milliseconds in. The window's first chunk writes
where every chunk stands (``ProbeOrigin``). Both live beside the window's sample chunks, under ``samples/``.

Chunk k + 1 starts asking for the handoff only at its own first slot, when chunk k stops sending: polling all the
while it waits (a whole chunk, by default minutes) would cost a hundred S3 GETs a second for nothing and, in local
mode where every function shares one process, take the CPU from the probes of chunk k.
"""

from __future__ import annotations

import threading
import time
from typing import Any, TypeVar

from botocore.exceptions import ClientError
from pydantic import BaseModel

from livefire.artifacts import sample_prefix
from livefire.contracts import ProbeHandoff, ProbeOrigin
from livefire.errors import ProbeRelayLost

POLL_S = 0.01  # how often a chunk looks for what it waits for
Model = TypeVar("Model", bound=BaseModel)


class Relay:
    """The origin and handoffs of one window of one vantage, in the evidence bucket."""

    def __init__(self, s3_client: Any, bucket: str, prefix: str, vantage: str, window: str) -> None:
        self._s3 = s3_client
        self._bucket = bucket
        self._prefix = sample_prefix(prefix, vantage, window)
        self.cancelled = threading.Event()

    def origin_key(self) -> str:
        return f"{self._prefix}origin.json"

    def handoff_key(self, chunk: int) -> str:
        return f"{self._prefix}handoff-{chunk:06d}.json"

    def put_origin(self, origin: ProbeOrigin) -> None:
        self._put(self.origin_key(), origin)

    def put_handoff(self, handoff: ProbeHandoff) -> None:
        self._put(self.handoff_key(handoff.chunk), handoff)

    def wait_origin(self, timeout_s: float) -> ProbeOrigin:
        return self._wait(self.origin_key(), ProbeOrigin, timeout_s)

    def wait_handoff(self, chunk: int, timeout_s: float, *, not_before_ms: float = 0.0) -> ProbeHandoff:
        """Chunk ``chunk``'s handoff, asked for from ``not_before_ms`` on (epoch ms: the earliest it is written)."""
        return self._wait(self.handoff_key(chunk), ProbeHandoff, timeout_s, not_before_ms=not_before_ms)

    def _put(self, key: str, document: BaseModel) -> None:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=document.model_dump_json(by_alias=True).encode(),
                            ContentType="application/json")

    def _wait(self, key: str, model: type[Model], timeout_s: float, *, not_before_ms: float = 0.0) -> Model:
        """Read ``key`` as soon as it exists, looking from ``not_before_ms`` (epoch ms) on (blocking: run it on a
        thread); ProbeRelayLost ``timeout_s`` from now or once ``cancelled`` is set."""
        give_up = time.monotonic() + timeout_s
        self.cancelled.wait(max(0.0, not_before_ms / 1000.0 - time.time()))
        while not self.cancelled.is_set():
            try:
                body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                    raise
            else:
                return model.model_validate_json(body)
            if time.monotonic() >= give_up:
                break
            self.cancelled.wait(POLL_S)
        raise ProbeRelayLost(f"s3://{self._bucket}/{key} did not appear within {timeout_s:.0f} s: the chunk that "
                             "writes it did not run or stopped early")
