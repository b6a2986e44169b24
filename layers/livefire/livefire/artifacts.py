"""Where a drill's artifacts live in the evidence bucket: ``drills/<service>/<drill-id>/...``."""

from __future__ import annotations


def evidence_prefix(service: str, drill_id: str) -> str:
    return f"drills/{service}/{drill_id}/"


def sample_prefix(prefix: str, vantage: str, window: str) -> str:
    """What every sample chunk of one window of one vantage starts with (listing it finds them, in order)."""
    return f"{prefix}samples/{vantage}/{window}-"


def sample_key(prefix: str, vantage: str, window: str, chunk: int) -> str:
    """Chunk N of a window: invocation k of the window numbers its chunks from k x 10,000 (livefire/probing/
    window.py); eight digits keep them sorted (a 24 h window is about 200 invocations)."""
    return f"{sample_prefix(prefix, vantage, window)}{chunk:08d}.jsonl.gz"


def marker_prefix(prefix: str) -> str:
    """What every chunk of the data checks' marker samples starts with (every vantage's)."""
    return f"{prefix}markers/"


def marker_key(prefix: str, vantage: str, chunk: int) -> str:
    """A chunk of the data checks' marker samples written by one vantage (livefire/datachecks/)."""
    return f"{marker_prefix(prefix)}{vantage}-{chunk:08d}.jsonl.gz"


def snapshot_key(prefix: str, fault_id: str, moment: str) -> str:
    return f"{prefix}faults/{fault_id}-{moment}.json"
