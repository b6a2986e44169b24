"""One marker operation as stored (``MarkerSample``, a line of a gzipped JSON Lines chunk under ``markers/``), and
the marker a store answers with (``Marker``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from livefire.probing.chunks import decode_lines


@dataclass(frozen=True)
class Marker:
    """A marker as a store holds it: its sequence number and when its write was sent (UTC epoch ms)."""

    seq: int
    sent_ms: float


MarkerOp = Literal["write", "read", "standby-write", "confirm"]


class MarkerSample(BaseModel):
    """One write (in the primary region) or one read (in another region) of a data check; with ``standbyWrites``,
    also one write in another region (``standby-write``) or one look in the primary for that region's markers
    (``confirm``).

    Times are UTC epoch milliseconds: when the operation was scheduled, sent, and answered (or failed)."""

    model_config = ConfigDict(extra="forbid")

    check: str = Field(description="the data check's name")
    region: str = Field(description="the region written to (op write, standby-write) or read from (op read); "
                                    "confirm: the region whose standby markers were looked for in the primary")
    op: MarkerOp
    scheduled_ms: float
    sent_ms: float
    ended_ms: float
    ok: bool = Field(description="write: the store acknowledged the marker; read: the store answered")
    seq: int | None = Field(default=None, description="write: the marker written; read: the newest marker the "
                                                      "region held (None: none yet, or the read failed)")
    marker_ms: float | None = Field(default=None, description="the send instant of the marker ``seq``")
    error: str | None = Field(default=None, description="why the operation failed (an error class or status)")
    asked: list[int] | None = Field(default=None, description="confirm: the standby markers looked for")
    held: list[int] | None = Field(default=None, description="confirm: those of them the primary held")


def decode_markers(data: bytes) -> list[MarkerSample]:
    return [MarkerSample.model_validate_json(line) for line in decode_lines(data)]


def load_markers(s3_client: Any, bucket: str, keys: Iterable[str]) -> list[MarkerSample]:
    """Read marker chunks back, in the order of ``keys``."""
    samples: list[MarkerSample] = []
    for key in keys:
        samples.extend(decode_markers(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()))
    return samples
