"""Follow a service's hash chain of manifests back from one drill, locally or in the evidence bucket.

Each manifest names the previous manifest of its service by digest and drill id. From an evidence folder the
previous drills are looked up among its siblings (``livefire-evidence/<drill-id>/``); the walk stops at the
service's first drill, or where the previous drill was never copied here — unless older drills of the same
service *are* here, which means a drill in between went missing. From the bucket, every link is also checked
against the drill records in DynamoDB, the manifest's S3 metadata and the chain head.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from botocore.exceptions import ClientError

from livefire.evidence.manifest import MANIFEST_NAME, manifest_digest, verify_evidence_dir
from livefire.store import DrillStore

MANIFEST_DIGEST_METADATA = "manifest-sha256"
_DRILL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class EvidenceNotFound(LookupError):
    """The drill (or its evidence) is not there to verify: nothing can be said about tampering."""


@dataclass(frozen=True)
class ChainResult:
    ok: bool
    problems: list[str]
    drills: list[str]  # the drills whose evidence or manifest was checked, newest first
    end: str  # where the walk stopped, for people

    @property
    def first_problem(self) -> str | None:
        return self.problems[0] if self.problems else None


@dataclass(frozen=True)
class _Sibling:
    path: Path
    digest: str
    manifest: dict[str, Any] | None


def _link(newer: str, older: str) -> str:
    return f"chain link {newer} → {older}"


def _siblings(root: Path) -> list[_Sibling]:
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        path = folder / MANIFEST_NAME
        if not path.is_file():
            continue
        raw = path.read_bytes()
        try:
            parsed = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            parsed = None
        found.append(_Sibling(folder, manifest_digest(raw), parsed if isinstance(parsed, dict) else None))
    return found


def _locate(root: Path, drill_id: str, digest: str, siblings: list[_Sibling]) -> Path | None:
    """The folder of the previous drill: named after it, else (a renamed copy) holding its manifest digest."""
    if _DRILL_ID.match(drill_id) and (root / drill_id).is_dir():
        return root / drill_id
    return next((s.path for s in siblings if s.digest == digest), None)


def _older_of_service(siblings: list[_Sibling], visited: set[Path], service: str, before: str) -> list[str]:
    return sorted(
        s.path.name for s in siblings
        if s.path.resolve() not in visited and s.manifest is not None
        and s.manifest.get("service") == service and str(s.manifest.get("created_at", "")) < before
    )


def _identity_problems(link: str, name: str, manifest: dict[str, Any], drill_id: str, service: str) -> list[str]:
    problems = []
    if manifest.get("drill_id") != drill_id:
        problems.append(f"{link}: {name}/{MANIFEST_NAME} is the manifest of drill {manifest.get('drill_id')}")
    if manifest.get("service") != service:
        problems.append(f"{link}: {name}/{MANIFEST_NAME} belongs to service {manifest.get('service')}")
    return problems


def verify_chain_dir(path: Path, *, depth: int | None = None) -> ChainResult:
    """Verify one drill's evidence folder, then every earlier drill of its service found beside it."""
    head = verify_evidence_dir(path)
    problems = list(head.problems)
    manifest = head.manifest
    if manifest is None or not isinstance(manifest.get("drill_id"), str):
        return ChainResult(ok=False, problems=problems, drills=[], end="the manifest cannot be read")
    service = str(manifest.get("service"))
    drills = [manifest["drill_id"]]
    root = path.resolve().parent  # "." must still find its siblings
    siblings = _siblings(root)
    visited = {path.resolve()}
    end = ""
    while not end:
        previous, previous_id = manifest.get("previous_manifest_digest"), manifest.get("previous_drill_id")
        if not isinstance(previous, str) or not isinstance(previous_id, str):
            end = f"the first drill of {service}"
            break
        if depth is not None and len(drills) > depth:
            end = f"the depth limit ({depth} earlier drills)"
            break
        link = _link(str(manifest["drill_id"]), previous_id)
        folder = _locate(root, previous_id, previous, siblings)
        if folder is None:
            older = _older_of_service(siblings, visited, service, str(manifest.get("created_at", "")))
            if older:
                problems.append(f"{link}: the evidence of {previous_id} is missing, but older drills of {service} "
                                f"are here ({', '.join(older[:3])})")
            end = f"{previous_id}, whose evidence is not here"
            break
        if folder.resolve() in visited:
            problems.append(f"{link}: the chain loops back to {folder.name}")
            break
        visited.add(folder.resolve())
        result = verify_evidence_dir(folder, expected_manifest_digest=previous)
        problems += [f"{link}: {folder.name}/{problem}" for problem in result.problems]
        if result.manifest is None:
            end = f"{previous_id}, whose manifest cannot be read"
            break
        problems += _identity_problems(link, folder.name, result.manifest, previous_id, service)
        manifest = result.manifest
        drills.append(previous_id)
    return ChainResult(ok=not problems, problems=problems, drills=drills, end=end or "a loop")


# ------------------------------------------------------------------------------------------------ the bucket


def _relative_name(key: str, prefix: str) -> str:
    name = key[len(prefix):]
    path = PurePosixPath(name)
    if not name or path.is_absolute() or any(part in ("", ".", "..") for part in name.split("/")):
        raise ValueError(f"refusing to write the object {key!r} outside the evidence folder")
    return path.as_posix()


def download_evidence(s3: Any, bucket: str, prefix: str, destination: Path) -> list[str]:
    """Copy every object under ``prefix`` into ``destination``; returns the relative names written."""
    names = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            name = _relative_name(obj["Key"], prefix)
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            names.append(name)
    return names


def evidence_location(store: DrillStore, drill_id: str) -> tuple[dict[str, Any], str]:
    """The drill record and the key prefix of its evidence; EvidenceNotFound if it has none (yet)."""
    record = store.get_drill(drill_id)
    if record is None:
        raise EvidenceNotFound(f"no drill {drill_id} in the drill table")
    key = record.get("manifestKey")
    if not record.get("manifestDigest") or not isinstance(key, str) or not key.endswith(MANIFEST_NAME):
        raise EvidenceNotFound(f"drill {drill_id} has no published evidence (status {record.get('status')})")
    return record, key.removesuffix(MANIFEST_NAME)


def _get(s3: Any, bucket: str, key: str) -> tuple[bytes, dict[str, str]] | None:
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    return response["Body"].read(), dict(response.get("Metadata") or {})


def _remote_link(
    s3: Any, bucket: str, store: DrillStore, link: str, drill_id: str, expected: str, service: str
) -> tuple[list[str], dict[str, Any] | None]:
    """Check one link against the previous drill's record and manifest object; its manifest to go on from."""
    record = store.get_drill(drill_id)
    if record is None or not isinstance(record.get("manifestKey"), str):
        return [f"{link}: the drill table has no evidence record for {drill_id}"], None
    problems = []
    if record.get("manifestDigest") != expected:
        problems.append(f"{link}: the drill record of {drill_id} holds manifest digest "
                        f"{record.get('manifestDigest')}, not {expected}")
    fetched = _get(s3, bucket, record["manifestKey"])
    if fetched is None:
        return [*problems, f"{link}: {drill_id}/{MANIFEST_NAME}: missing"], None
    raw, _ = fetched
    actual = manifest_digest(raw)
    if actual != expected:
        problems.append(f"{link}: {drill_id}/{MANIFEST_NAME}: digest {actual} is not the expected {expected}")
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return [*problems, f"{link}: {drill_id}/{MANIFEST_NAME}: not valid JSON"], None
    if not isinstance(manifest, dict):
        return [*problems, f"{link}: {drill_id}/{MANIFEST_NAME}: not a JSON object"], None
    return [*problems, *_identity_problems(link, drill_id, manifest, drill_id, service)], manifest


def verify_drill(
    drill_id: str, *, s3: Any, store: DrillStore, bucket: str, workdir: Path, depth: int | None = None
) -> ChainResult:
    """Verify a drill's evidence in the bucket (downloaded into ``workdir``) and its chain back to the first drill.

    The drill's own artifacts are all recomputed; earlier drills are checked link by link (their manifest
    against the link, their drill record and their identity). Raises EvidenceNotFound when there is no evidence.
    """
    record, prefix = evidence_location(store, drill_id)
    expected = str(record["manifestDigest"])
    folder = workdir / drill_id
    download_evidence(s3, bucket, prefix, folder)
    result = verify_evidence_dir(folder, expected_manifest_digest=expected)
    problems = list(result.problems)  # the expected manifest digest is the drill record's
    fetched = _get(s3, bucket, f"{prefix}{MANIFEST_NAME}")
    stamped = fetched[1].get(MANIFEST_DIGEST_METADATA) if fetched else None
    if fetched is not None and stamped != expected:
        problems.append(f"{MANIFEST_NAME}: S3 metadata {MANIFEST_DIGEST_METADATA} {stamped} differs from the drill "
                        f"record ({expected})")
    manifest = result.manifest
    if manifest is None:
        return ChainResult(ok=False, problems=problems, drills=[], end="the manifest cannot be read")
    service = str(record.get("service") or manifest.get("service"))
    chain_head = store.chain_head(service)
    if chain_head is not None and chain_head.drill_id == drill_id and chain_head.digest != expected:
        problems.append(f"chain head of {service}: digest {chain_head.digest} is not this drill's manifest "
                        f"({expected})")
    drills, end = [drill_id], ""
    while not end:
        previous, previous_id = manifest.get("previous_manifest_digest"), manifest.get("previous_drill_id")
        if not isinstance(previous, str) or not isinstance(previous_id, str):
            end = f"the first drill of {service}"
        elif depth is not None and len(drills) > depth:
            end = f"the depth limit ({depth} earlier drills)"
        elif previous_id in drills:
            problems.append(f"{_link(str(manifest.get('drill_id')), previous_id)}: the chain loops")
            end = "a loop"
        else:
            link = _link(str(manifest.get("drill_id")), previous_id)
            found, earlier = _remote_link(s3, bucket, store, link, previous_id, previous, service)
            problems += found
            drills.append(previous_id)
            if earlier is None:
                end = f"{previous_id}, whose manifest cannot be read"
            else:
                manifest = earlier
    return ChainResult(ok=not problems, problems=problems, drills=drills, end=end)
