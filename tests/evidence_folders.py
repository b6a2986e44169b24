"""Evidence folders written by hand for the chain tests: sealed drills of a service side by side, optionally with
the local chain state (livefire_local/local_chain.py) that `livefire run` keeps beside them."""

from __future__ import annotations

import json
from pathlib import Path

from livefire.evidence.chain import Recorded
from livefire.evidence.manifest import ChainLink, build_manifest
from livefire_local.local_chain import LocalChain
from tests.keys import local_key, seal_folder

DRILLS = ("d-1", "d-2", "d-3")
CHUNK = "samples/local/drill-0000.jsonl.gz"


def write_drill(root: Path, drill_id: str, previous: tuple[str, str] | None, *, service: str = "payments",
                minute: int = 0, sequence: int | None = None) -> str:
    """One sealed evidence folder whose manifest links to ``previous`` (drill id, manifest digest); its digest."""
    folder = root / drill_id
    chunk = f"drills/{service}/{drill_id}/{CHUNK}"
    artifacts = {
        "spec.json": f'{{"service": "{service}"}}\n'.encode(),
        "assessment.json": json.dumps({"verdict": "PASS", "sample_keys": [chunk]}).encode(),
        "report.md": f"# Drill {drill_id}: PASS\n".encode(),
        CHUNK: drill_id.encode() * 50,
    }
    for name, data in artifacts.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    link = ChainLink(sequence=sequence or minute + 1, previous_manifest_digest=previous[1] if previous else None,
                     previous_drill_id=previous[0] if previous else None)
    manifest = build_manifest(
        artifacts, drill_id=drill_id, service=service, pattern="active-passive", verdict="PASS",
        spec_digest="cd" * 32, execution_arn=f"arn:aws:states:us-east-1:1:execution:drill:{drill_id}",
        link=link, signing_key=local_key().key, required=["spec.json", "assessment.json", CHUNK],
        created_at=f"2024-05-01T12:{minute:02d}:00.000+00:00",
    )
    return seal_folder(folder, manifest)


def write_chain(root: Path, drills: tuple[str, ...] = DRILLS, service: str = "payments", *,
                recorded: bool = False) -> dict[str, str]:
    """Sealed drills linked oldest first; with ``recorded``, also the local chain state listing them."""
    digests: dict[str, str] = {}
    previous: tuple[str, str] | None = None
    for minute, drill_id in enumerate(drills):
        digests[drill_id] = write_drill(root, drill_id, previous, service=service, minute=minute)
        if recorded:
            LocalChain(root).append(Recorded(
                drill_id=drill_id, manifest_digest=digests[drill_id], sequence=minute + 1,
                previous_manifest_digest=previous[1] if previous else None,
                previous_drill_id=previous[0] if previous else None, service=service, verdict="PASS"))
        previous = (drill_id, digests[drill_id])
    return digests


