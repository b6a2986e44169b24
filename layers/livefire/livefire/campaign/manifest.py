"""The campaign's own manifest: its report and results with their SHA-256, and each drill with the digest of its
drill manifest, in canonical JSON and signed like a drill's (livefire/evidence/manifest.py, signature.py). Verifying
it checks the campaign's files and signature, then every drill's evidence against the digest the campaign recorded,
and names each drill whose evidence does not match."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from livefire.campaign.model import Campaign, DrillResult
from livefire.evidence.manifest import MANIFEST_NAME, manifest_bytes, manifest_digest, sha256_hex, verify_evidence_dir
from livefire.evidence.signature import SIGNATURE_NAME, SignatureVerifier, Signer, sign_manifest, signature_problems

CAMPAIGN_MANIFEST_VERSION = 1
REPORT_MD, REPORT_HTML, RESULTS = "report.md", "report.html", "results.json"
# Where a drill's evidence folder is, given its id and service (None: not found).
DrillFolder = Callable[[str, str], Path | None]


def drill_entry(result: DrillResult) -> dict[str, Any]:
    return {"index": result.index, "drill_id": result.drill_id, "service": result.service,
            "outcome": result.outcome, "verdict": result.verdict, "manifest_key": result.manifest_key,
            "manifest_digest": result.manifest_digest}


def build_campaign_manifest(campaign: Campaign, results: Sequence[DrillResult], artifacts: Mapping[str, bytes],
                            signer: Signer, stopped: str | None) -> dict[str, Any]:
    return {
        "version": CAMPAIGN_MANIFEST_VERSION,
        "kind": "campaign",
        "campaign_id": campaign.campaign_id,
        "created_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "rules": campaign.rules.model_dump(mode="json", by_alias=True),
        "stopped": stopped,
        "drills": [drill_entry(r) for r in results],
        "artifacts": [{"name": name, "sha256": sha256_hex(data), "bytes": len(data)}
                      for name, data in sorted(artifacts.items())],
        "signing_key": signer.key.model_dump(mode="json"),
    }


def seal_campaign(manifest: Mapping[str, Any], signer: Signer) -> tuple[bytes, bytes, str]:
    """manifest.json, signature.json and the manifest's digest."""
    body = manifest_bytes(manifest)
    digest = manifest_digest(body)
    return body, sign_manifest(signer, digest).to_bytes(), digest


@dataclass(frozen=True)
class CampaignCheck:
    """What verifying a campaign found: every problem, and the drills whose evidence does not match."""

    problems: list[str]
    tampered_drills: list[str]
    drills_checked: int

    @property
    def ok(self) -> bool:
        return not self.problems


def _own_problems(folder: Path, raw: bytes, manifest: Any, verifier: SignatureVerifier) -> list[str]:
    if not isinstance(manifest, dict) or manifest.get("kind") != "campaign" or \
            not isinstance(manifest.get("drills"), list) or not isinstance(manifest.get("artifacts"), list):
        return [f"{MANIFEST_NAME}: not a campaign manifest"]
    if manifest_bytes(manifest) != raw:
        return [f"{MANIFEST_NAME}: not in canonical form (it was rewritten)"]
    problems = []
    for entry in manifest["artifacts"]:
        path = folder / str(entry.get("name", ""))
        if not path.is_file():
            problems.append(f"{entry.get('name')}: missing")
        elif sha256_hex(path.read_bytes()) != entry.get("sha256"):
            problems.append(f"{entry.get('name')}: digest does not match the manifest (changed)")
    signature = folder / SIGNATURE_NAME
    return problems + signature_problems(signature.read_bytes() if signature.is_file() else None,
                                         manifest_digest(raw), verifier, manifest.get("signing_key"))


def verify_campaign_dir(folder: Path, drill_folder: DrillFolder, verifier: SignatureVerifier) -> CampaignCheck:
    """Check the campaign's folder, then each drill that left a manifest against the digest the campaign holds."""
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return CampaignCheck([f"{MANIFEST_NAME}: missing"], [], 0)
    raw = path.read_bytes()
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        return CampaignCheck([f"{MANIFEST_NAME}: not valid JSON ({exc})"], [], 0)
    problems = _own_problems(folder, raw, manifest, verifier)
    if problems and problems[0].startswith(MANIFEST_NAME):
        return CampaignCheck(problems, [], 0)
    tampered: list[str] = []
    checked = 0
    for entry in manifest["drills"]:
        digest = entry.get("manifest_digest")
        if not digest:
            continue
        drill_id, service = str(entry.get("drill_id")), str(entry.get("service"))
        checked += 1
        where = drill_folder(drill_id, service)
        found = verify_evidence_dir(where, verifier=verifier, expected_manifest_digest=digest) if where else None
        if found is None or not found.ok:
            tampered.append(drill_id)
            why = found.first_problem if found is not None else "its evidence folder is missing"
            problems.append(f"drill {drill_id} ({service}): {why}")
    return CampaignCheck(problems, tampered, checked)
