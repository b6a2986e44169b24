"""The manifest of a drill's evidence: every artifact with its SHA-256 and size, in canonical JSON.

The manifest's own digest links it to the next drill of the same service (``previous_manifest_digest``, with
``previous_drill_id`` naming whose manifest that is), which makes the manifests of a service a hash chain.
``verify_evidence_dir`` checks one drill's directory; ``livefire.evidence.chain`` follows the links across drills.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

MANIFEST_NAME = "manifest.json"
ASSESSMENT_NAME = "assessment.json"
JUDGED_VERDICTS = ("PASS", "FAIL", "INCONCLUSIVE")
MANIFEST_VERSION = 1
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_STRING_FIELDS = ("drill_id", "service", "pattern", "verdict", "spec_digest", "execution_arn", "created_at")
REQUIRED_FIELDS = ("version", *_STRING_FIELDS, "previous_manifest_digest", "previous_drill_id", "artifacts")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_name(name: str) -> str | None:
    """Why an artifact name is not a safe relative path inside the evidence directory, or None."""
    path = PurePosixPath(name)
    if not name or name != path.as_posix() or path.is_absolute() or "\\" in name:
        return "is not a normalized relative path"
    if any(part in ("..", ".") for part in path.parts):
        return "leaves the evidence directory"
    if name == MANIFEST_NAME:
        return "is the manifest itself"
    return None


def build_manifest(
    artifacts: Mapping[str, bytes],
    *,
    drill_id: str,
    service: str,
    pattern: str,
    verdict: str,
    spec_digest: str,
    execution_arn: str,
    previous_manifest_digest: str | None,
    previous_drill_id: str | None,
    created_at: str,
) -> dict[str, Any]:
    """List every artifact (relative name → bytes) with its digest and size, sorted by name."""
    for name in artifacts:
        problem = _check_name(name)
        if problem:
            raise ValueError(f"artifact name {name!r} {problem}")
    if previous_manifest_digest is not None and not _DIGEST.match(previous_manifest_digest):
        raise ValueError("previous_manifest_digest must be 64 lowercase hex digits")
    if (previous_manifest_digest is None) != (previous_drill_id is None):
        raise ValueError("previous_manifest_digest and previous_drill_id go together")
    return {
        "version": MANIFEST_VERSION,
        "drill_id": drill_id,
        "service": service,
        "pattern": pattern,
        "verdict": verdict,
        "spec_digest": spec_digest,
        "execution_arn": execution_arn,
        "previous_manifest_digest": previous_manifest_digest,
        "previous_drill_id": previous_drill_id,
        "created_at": created_at,
        "artifacts": [
            {"name": name, "sha256": sha256_hex(data), "size": len(data)}
            for name, data in sorted(artifacts.items())
        ],
    }


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """Canonical form: sorted keys, 2-space indent, ASCII only, trailing newline."""
    return (json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode("ascii")


def manifest_digest(data: bytes) -> str:
    return sha256_hex(data)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    problems: list[str]
    first_problem: str | None
    manifest: dict[str, Any] | None = field(default=None, compare=False)
    manifest_digest: str | None = None


def _manifest_problems(manifest: Any) -> list[str]:
    if not isinstance(manifest, dict):
        return [f"{MANIFEST_NAME}: not a JSON object"]
    problems = [f"{MANIFEST_NAME}: missing field {key}" for key in REQUIRED_FIELDS if key not in manifest]
    if problems:
        return problems
    if manifest["version"] != MANIFEST_VERSION:
        problems.append(f"{MANIFEST_NAME}: unsupported version {manifest['version']!r}")
    problems += [
        f"{MANIFEST_NAME}: field {key} must be a string"
        for key in _STRING_FIELDS
        if not isinstance(manifest[key], str)
    ]
    previous = manifest["previous_manifest_digest"]
    if previous is not None and not (isinstance(previous, str) and _DIGEST.match(previous)):
        problems.append(f"{MANIFEST_NAME}: previous_manifest_digest is not a SHA-256 digest")
    previous_drill = manifest["previous_drill_id"]
    if previous_drill is not None and not isinstance(previous_drill, str):
        problems.append(f"{MANIFEST_NAME}: previous_drill_id must be a string")
    elif (previous is None) != (previous_drill is None):
        problems.append(f"{MANIFEST_NAME}: previous_manifest_digest and previous_drill_id go together")
    artifacts = manifest["artifacts"]
    if not isinstance(artifacts, list):
        return [*problems, f"{MANIFEST_NAME}: artifacts must be a list"]
    names: list[str] = []
    for index, entry in enumerate(artifacts):
        where = f"{MANIFEST_NAME}: artifacts[{index}]"
        if not isinstance(entry, dict) or set(entry) != {"name", "sha256", "size"}:
            problems.append(f"{where} must have exactly name, sha256 and size")
            continue
        name, digest, size = entry["name"], entry["sha256"], entry["size"]
        if not isinstance(name, str) or _check_name(name):
            problems.append(f"{where}: name {name!r} is not a safe relative path")
        if not (isinstance(digest, str) and _DIGEST.match(digest)):
            problems.append(f"{where}: sha256 is not a SHA-256 digest")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            problems.append(f"{where}: size is not a byte count")
        if isinstance(name, str):
            names.append(name)
    if len(names) != len(set(names)):
        problems.append(f"{MANIFEST_NAME}: an artifact is listed twice")
    elif names != sorted(names):
        problems.append(f"{MANIFEST_NAME}: artifacts are not sorted by name")
    return problems


def _artifact_problems(root: Path, artifacts: list[dict[str, Any]]) -> list[str]:
    problems = []
    for entry in artifacts:
        name = entry["name"]
        path = root / name
        if not path.is_file():
            problems.append(f"{name}: missing")
            continue
        data = path.read_bytes()
        if len(data) != entry["size"]:
            problems.append(f"{name}: size changed (listed {entry['size']} bytes, found {len(data)})")
        elif sha256_hex(data) != entry["sha256"]:
            problems.append(f"{name}: content changed (SHA-256 differs from the manifest)")
    listed = {entry["name"] for entry in artifacts} | {MANIFEST_NAME}
    on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    problems += [f"{name}: present but not listed in the manifest" for name in on_disk if name not in listed]
    return problems


def _verdict_problems(root: Path, manifest: Mapping[str, Any]) -> list[str]:
    """A judged verdict in the manifest must be the one assessment.json (the source of truth) holds."""
    listed = any(entry["name"] == ASSESSMENT_NAME for entry in manifest["artifacts"])
    if not listed or manifest["verdict"] not in JUDGED_VERDICTS:
        return []
    try:
        assessment = json.loads((root / ASSESSMENT_NAME).read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return [f"{ASSESSMENT_NAME}: not valid JSON"]
    verdict = assessment.get("verdict") if isinstance(assessment, dict) else None
    if verdict != manifest["verdict"]:
        return [f"{MANIFEST_NAME}: verdict {manifest['verdict']} differs from {ASSESSMENT_NAME} ({verdict})"]
    return []


def verify_evidence_dir(path: Path, *, expected_manifest_digest: str | None = None) -> VerifyResult:
    """Recompute every digest from the files on disk and name every problem, the first one first.

    ``expected_manifest_digest`` (from the drill record, the chain head or the next drill's manifest) also
    catches an edit of the manifest that keeps it self-consistent.
    """
    manifest_path = path / MANIFEST_NAME
    if not manifest_path.is_file():
        problem = f"{MANIFEST_NAME}: missing"
        return VerifyResult(ok=False, problems=[problem], first_problem=problem)
    raw = manifest_path.read_bytes()
    digest = manifest_digest(raw)
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        problem = f"{MANIFEST_NAME}: not valid JSON ({exc})"
        return VerifyResult(ok=False, problems=[problem], first_problem=problem, manifest_digest=digest)
    problems: list[str] = []
    if expected_manifest_digest is not None and digest != expected_manifest_digest:
        problems.append(f"{MANIFEST_NAME}: digest {digest} is not the expected {expected_manifest_digest}")
    structure = _manifest_problems(manifest)
    if not structure and manifest_bytes(manifest) != raw:
        structure = [f"{MANIFEST_NAME}: not in canonical form (it was rewritten)"]
    problems += structure
    if not structure:
        problems += _artifact_problems(path, manifest["artifacts"]) or _verdict_problems(path, manifest)
    return VerifyResult(
        ok=not problems,
        problems=problems,
        first_problem=problems[0] if problems else None,
        manifest=manifest if isinstance(manifest, dict) else None,
        manifest_digest=digest,
    )
