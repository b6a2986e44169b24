"""Where a drill's artifacts live in the evidence bucket: ``drills/<service>/<drill-id>/...``."""

from __future__ import annotations


def evidence_prefix(service: str, drill_id: str) -> str:
    return f"drills/{service}/{drill_id}/"


def sample_key(prefix: str, vantage: str, window: str, chunk: int) -> str:
    return f"{prefix}samples/{vantage}/{window}-{chunk:04d}.jsonl.gz"


def marker_key(prefix: str, vantage: str, chunk: int) -> str:
    """A chunk of the data checks' marker samples written by one vantage (livefire/datachecks/)."""
    return f"{prefix}markers/{vantage}-{chunk:04d}.jsonl.gz"


def snapshot_key(prefix: str, fault_id: str, moment: str) -> str:
    return f"{prefix}faults/{fault_id}-{moment}.json"
