"""The manifest of a drill's evidence: every artifact with its SHA-256 and size, in canonical JSON, signed.

Besides the artifacts, the manifest names its place in the service's chain (``sequence``, 1 for the first drill,
and the digest and drill id of the previous manifest), the key that signs it (``signing_key``), and what must
exist for its outcome (``required``: the spec, plan, fault records and reports, and for a judged drill
assessment.json and every sample chunk the assessment counted). ``verify_evidence_dir`` checks one drill's folder:
every digest, nothing missing or added, completeness, the verdict against assessment.json, and the signature
(docs/architecture.md §8). ``livefire.evidence.chain`` follows the links across drills.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from livefire.artifacts import evidence_prefix
from livefire.evidence.signature import SIGNATURE_NAME, SignatureVerifier, SigningKey, signature_problems

MANIFEST_NAME = "manifest.json"
ASSESSMENT_NAME = "assessment.json"
JUDGED_VERDICTS = ("PASS", "FAIL", "INCONCLUSIVE")
MANIFEST_VERSION = 2
NOT_ARTIFACTS = (MANIFEST_NAME, SIGNATURE_NAME)  # the seal of the evidence, not part of what it lists
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_STRING_FIELDS = ("drill_id", "service", "pattern", "verdict", "spec_digest", "execution_arn", "created_at")
REQUIRED_FIELDS = ("version", *_STRING_FIELDS, "sequence", "previous_manifest_digest", "previous_drill_id",
                   "signing_key", "required", "artifacts")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_name(name: str) -> str | None:
    """Why an artifact name is not a safe relative path inside the evidence directory, or None."""
    path = PurePosixPath(name)
    if not name or name != path.as_posix() or path.is_absolute() or "\\" in name:
        return "is not a normalized relative path"
    if any(part in ("..", ".") for part in path.parts):
        return "leaves the evidence directory"
    if name in NOT_ARTIFACTS:
        return "is the manifest or its signature"
    return None


class ChainLink(BaseModel):
    """A manifest's place in its service's chain: its sequence number and the manifest before it."""

    model_config = ConfigDict(frozen=True)

    sequence: int = Field(ge=1, description="1 for the service's first drill, then one more per drill.")
    previous_manifest_digest: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$",
                                                 description="SHA-256 of the previous manifest (None: first).")
    previous_drill_id: str | None = Field(default=None, description="The drill of the previous manifest.")

    @model_validator(mode="after")
    def _first_has_no_previous(self) -> ChainLink:
        if (self.previous_manifest_digest is None) != (self.previous_drill_id is None):
            raise ValueError("previous_manifest_digest and previous_drill_id go together")
        if (self.sequence == 1) != (self.previous_manifest_digest is None):
            raise ValueError("only the first drill of a service (sequence 1) has no previous manifest")
        return self


def build_manifest(
    artifacts: Mapping[str, bytes],
    *,
    drill_id: str,
    service: str,
    pattern: str,
    verdict: str,
    spec_digest: str,
    execution_arn: str,
    link: ChainLink,
    signing_key: SigningKey,
    required: Sequence[str],
    created_at: str,
) -> dict[str, Any]:
    """List every artifact (relative name → bytes) with its digest and size, sorted by name."""
    for name in artifacts:
        problem = _check_name(name)
        if problem:
            raise ValueError(f"artifact name {name!r} {problem}")
    absent = sorted(set(required) - set(artifacts))
    if absent:
        raise ValueError(f"required artifacts are missing: {', '.join(absent)}")
    return {
        "version": MANIFEST_VERSION,
        "drill_id": drill_id,
        "service": service,
        "pattern": pattern,
        "verdict": verdict,
        "spec_digest": spec_digest,
        "execution_arn": execution_arn,
        "sequence": link.sequence,
        "previous_manifest_digest": link.previous_manifest_digest,
        "previous_drill_id": link.previous_drill_id,
        "signing_key": signing_key.model_dump(),
        "required": sorted(set(required)),
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


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _link_problems(manifest: Mapping[str, Any]) -> list[str]:
    sequence, previous, previous_drill = (manifest["sequence"], manifest["previous_manifest_digest"],
                                          manifest["previous_drill_id"])
    if not _is_count(sequence) or sequence < 1:
        return [f"{MANIFEST_NAME}: sequence is not a number from 1"]
    if previous is not None and not (isinstance(previous, str) and _DIGEST.match(previous)):
        return [f"{MANIFEST_NAME}: previous_manifest_digest is not a SHA-256 digest"]
    if previous_drill is not None and not isinstance(previous_drill, str):
        return [f"{MANIFEST_NAME}: previous_drill_id must be a string"]
    if (previous is None) != (previous_drill is None):
        return [f"{MANIFEST_NAME}: previous_manifest_digest and previous_drill_id go together"]
    if (sequence == 1) != (previous is None):
        return [f"{MANIFEST_NAME}: sequence {sequence} {'has no' if previous is None else 'has a'} previous manifest"]
    return []


def _entry_problems(artifacts: list[Any]) -> list[str]:
    problems, names = [], []
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
        if not _is_count(size):
            problems.append(f"{where}: size is not a byte count")
        if isinstance(name, str):
            names.append(name)
    if len(names) != len(set(names)):
        problems.append(f"{MANIFEST_NAME}: an artifact is listed twice")
    elif names != sorted(names):
        problems.append(f"{MANIFEST_NAME}: artifacts are not sorted by name")
    return problems


def _manifest_problems(manifest: Any) -> list[str]:
    if not isinstance(manifest, dict):
        return [f"{MANIFEST_NAME}: not a JSON object"]
    problems = [f"{MANIFEST_NAME}: missing field {key}" for key in REQUIRED_FIELDS if key not in manifest]
    if problems:
        return problems
    if manifest["version"] != MANIFEST_VERSION:
        return [f"{MANIFEST_NAME}: unsupported version {manifest['version']!r}"]
    problems += [f"{MANIFEST_NAME}: field {key} must be a string" for key in _STRING_FIELDS
                 if not isinstance(manifest[key], str)]
    problems += _link_problems(manifest)
    if not isinstance(manifest["signing_key"], dict) or set(manifest["signing_key"]) != set(SigningKey.model_fields):
        problems.append(f"{MANIFEST_NAME}: signing_key must have exactly {', '.join(SigningKey.model_fields)}")
    required = manifest["required"]
    if not isinstance(required, list) or not all(isinstance(name, str) for name in required):
        problems.append(f"{MANIFEST_NAME}: required must be a list of names")
    if not isinstance(manifest["artifacts"], list):
        return [*problems, f"{MANIFEST_NAME}: artifacts must be a list"]
    return problems + _entry_problems(manifest["artifacts"])


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
    listed = {entry["name"] for entry in artifacts} | set(NOT_ARTIFACTS)
    on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    problems += [f"{name}: present but not listed in the manifest" for name in on_disk if name not in listed]
    return problems


def _assessment(root: Path, manifest: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """assessment.json when the manifest lists it (its problem when it cannot be read)."""
    if not any(entry["name"] == ASSESSMENT_NAME for entry in manifest["artifacts"]):
        return None, []
    if not (root / ASSESSMENT_NAME).is_file():
        return None, []  # named missing already
    try:
        assessment = json.loads((root / ASSESSMENT_NAME).read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None, [f"{ASSESSMENT_NAME}: not valid JSON"]
    return (assessment, []) if isinstance(assessment, dict) else (None, [f"{ASSESSMENT_NAME}: not a JSON object"])


def _completeness_problems(manifest: Mapping[str, Any], assessment: dict[str, Any] | None) -> list[str]:
    """What the outcome needs must be listed: the manifest's ``required`` names, every chunk assessed and every raw
    telemetry answer judged."""
    listed = {entry["name"] for entry in manifest["artifacts"]}
    problems = [f"{name}: required for the drill's outcome but not listed in the manifest"
                for name in manifest["required"] if name not in listed]
    if manifest["verdict"] in JUDGED_VERDICTS and ASSESSMENT_NAME not in listed:
        problems.append(f"{ASSESSMENT_NAME}: a judged drill ({manifest['verdict']}) without its assessment")
    if assessment is None:
        return problems
    prefix = evidence_prefix(manifest["service"], manifest["drill_id"])
    keys = assessment.get("sample_keys")
    telemetry = assessment.get("telemetry")
    answers = telemetry.get("query_keys") if isinstance(telemetry, dict) else None
    for key in [*(keys if isinstance(keys, list) else []), *(answers if isinstance(answers, list) else [])]:
        name = str(key).removeprefix(prefix)
        if name == key:
            problems.append(f"{ASSESSMENT_NAME}: counts sample chunk {key}, outside this drill's evidence")
        elif name not in listed or name not in manifest["required"]:
            problems.append(f"{name}: counted by {ASSESSMENT_NAME} but not listed as required in the manifest")
    return problems


def _verdict_problems(manifest: Mapping[str, Any], assessment: dict[str, Any] | None) -> list[str]:
    """A judged verdict in the manifest must be the one assessment.json (the source of truth) holds."""
    if assessment is None or manifest["verdict"] not in JUDGED_VERDICTS:
        return []
    if assessment.get("verdict") != manifest["verdict"]:
        return [f"{MANIFEST_NAME}: verdict {manifest['verdict']} differs from {ASSESSMENT_NAME} "
                f"({assessment.get('verdict')})"]
    return []


def _content_problems(path: Path, manifest: dict[str, Any], digest: str, verifier: SignatureVerifier) -> list[str]:
    problems = _artifact_problems(path, manifest["artifacts"])
    assessment, unreadable = _assessment(path, manifest)
    problems += unreadable + _completeness_problems(manifest, assessment) + _verdict_problems(manifest, assessment)
    signature = path / SIGNATURE_NAME
    raw = signature.read_bytes() if signature.is_file() else None
    return problems + signature_problems(raw, digest, verifier, manifest["signing_key"])


def verify_evidence_dir(path: Path, *, verifier: SignatureVerifier,
                        expected_manifest_digest: str | None = None) -> VerifyResult:
    """Recompute every digest from the files on disk and name every problem, the first one first.

    ``verifier`` is the public key the manifest must be signed with; ``expected_manifest_digest`` (from the drill
    record, the chain head or the next drill's manifest) also catches a manifest replaced by another signed one.
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
    problems += structure or _content_problems(path, manifest, digest, verifier)
    return VerifyResult(
        ok=not problems,
        problems=problems,
        first_problem=problems[0] if problems else None,
        manifest=manifest if isinstance(manifest, dict) else None,
        manifest_digest=digest,
    )
