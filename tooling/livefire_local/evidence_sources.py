"""Where `livefire verify` finds evidence (``livefire.evidence.chain.EvidenceSource``): a folder of drills on this
machine, or the stack's bucket and drill table.

Locally a drill's folder is ``<evidence folder>/<drill id>/`` (a renamed copy is found by its manifest digest);
its records are the chain state beside it (``local_chain``), when there is one. In AWS each drill is downloaded
from the prefix its record names; the bucket also says whether the manifest object was overwritten (more than
one version: manifests are written once) and stamps its digest in the object's metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from botocore.exceptions import ClientError

from livefire.evidence.chain import ChainResult, EvidenceNotFound, Recorded, verify_drill
from livefire.evidence.manifest import MANIFEST_NAME, manifest_digest, verify_evidence_dir
from livefire.evidence.seal import MANIFEST_DIGEST_METADATA
from livefire.evidence.signature import SIGNATURE_NAME, SignatureVerifier
from livefire.records import ChainHead, DrillRecord
from livefire.store import DrillStore
from livefire_local.local_chain import LocalChain

SEALS = (MANIFEST_NAME, SIGNATURE_NAME)
ALL_DRILLS = 1_000_000  # every sealed drill of a service, for the fork check (history pages through them)


@dataclass
class _Sibling:
    path: Path
    digest: str
    manifest: dict[str, Any] | None


def _siblings(root: Path) -> list[_Sibling]:
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
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


@dataclass
class LocalEvidence:
    """Drill folders side by side in ``root``; ``start`` is the folder being verified, whatever its name."""

    root: Path
    start: Path | None = None
    records_required: bool = False
    _siblings: list[_Sibling] | None = field(default=None, repr=False)

    @property
    def chain(self) -> LocalChain:
        return LocalChain(self.root)

    def siblings(self) -> list[_Sibling]:
        if self._siblings is None:
            self._siblings = _siblings(self.root) if self.root.is_dir() else []
        return self._siblings

    def folder(self, drill_id: str, digest: str, *, whole: bool) -> Path | None:
        if self.start is not None and (self.start / MANIFEST_NAME).is_file() and \
                manifest_digest((self.start / MANIFEST_NAME).read_bytes()) == digest:
            return self.start
        named = self.root / drill_id
        if PurePosixPath(drill_id).name == drill_id and not drill_id.startswith(".") and named.is_dir():
            return named
        return next((s.path for s in self.siblings() if s.digest == digest), None)

    def recorded(self, drill_id: str) -> Recorded | None:
        return self.chain.recorded(drill_id)

    def head(self, service: str) -> ChainHead | None:
        return self.chain.head(service)

    def sealed(self, service: str) -> list[Recorded]:
        return self.chain.drills(service)

    def missing(self, drill_id: str, service: str, before: str) -> str | None:
        if any(r.drill_id == drill_id for r in self.chain.drills(service)):
            return "the chain state beside the evidence records it"
        older = sorted(s.path.name for s in self.siblings() if s.manifest is not None
                       and s.manifest.get("service") == service and str(s.manifest.get("created_at", "")) < before)
        return f"older drills of {service} are here ({', '.join(older[:3])})" if older else None

    def stored_problems(self, drill_id: str, digest: str) -> list[str]:
        return []


def _manifest_of(folder: Path) -> dict[str, Any] | None:
    """The folder's manifest, when it can be read and names its drill."""
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return manifest if isinstance(manifest, dict) and isinstance(manifest.get("drill_id"), str) else None


def verify_folder(path: Path, verifier: SignatureVerifier, *, depth: int | None = None) -> ChainResult:
    """One drill's evidence folder, then every earlier drill of its service found beside it, recomputed.

    The folder's name is the drill's id (as `livefire run` and `livefire report` write it): when the chain state
    beside it records a drill of that name, the folder must hold that drill's manifest (a swapped-in folder
    of another drill does not pass for it)."""
    folder = path.resolve()
    manifest = _manifest_of(folder)
    if manifest is None:
        problems = verify_evidence_dir(folder, verifier=verifier).problems  # says why it cannot be read
        return ChainResult(ok=False, problems=problems or [f"{MANIFEST_NAME}: names no drill"], drills=[],
                           end="the manifest cannot be read")
    digest = manifest_digest((folder / MANIFEST_NAME).read_bytes())
    source = LocalEvidence(folder.parent, start=folder)
    swapped = []
    if folder.name != manifest["drill_id"] and source.recorded(folder.name) is not None:
        swapped = [f"{MANIFEST_NAME}: the folder of drill {folder.name} holds the manifest of drill "
                   f"{manifest['drill_id']}"]
    result = verify_drill(manifest["drill_id"], digest, source, verifier, recompute_earlier=True, depth=depth)
    return ChainResult(ok=result.ok and not swapped, problems=swapped + result.problems, drills=result.drills,
                       end=result.end)


def _relative_name(key: str, prefix: str) -> str:
    name = key[len(prefix):]
    path = PurePosixPath(name)
    if not name or path.is_absolute() or any(part in ("", ".", "..") for part in name.split("/")):
        raise ValueError(f"refusing to write the object {key!r} outside the evidence folder")
    return path.as_posix()


def download_evidence(s3: Any, bucket: str, prefix: str, destination: Path, *,
                      only: tuple[str, ...] | None = None) -> list[str]:
    """Copy the objects under ``prefix`` (just the ``only`` names, if given) into ``destination``; the names."""
    names = []
    destination.mkdir(parents=True, exist_ok=True)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            name = _relative_name(obj["Key"], prefix)
            if only is not None and name not in only:
                continue
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            names.append(name)
    return names


def evidence_location(store: DrillStore, drill_id: str) -> tuple[DrillRecord, str]:
    """The drill record and the key prefix of its evidence; EvidenceNotFound if it has none (yet)."""
    record = store.get_drill(drill_id)
    if record is None:
        raise EvidenceNotFound(f"no drill {drill_id} in the drill table")
    key = record.manifest_key
    if record.seal is None or key is None or not key.endswith(MANIFEST_NAME):
        raise EvidenceNotFound(f"drill {drill_id} has no published evidence (status {record.status})")
    return record, key.removesuffix(MANIFEST_NAME)


@dataclass
class BucketEvidence:
    """The stack's evidence bucket and drill table; drills are downloaded into ``workdir``."""

    s3: Any
    bucket: str
    store: DrillStore
    workdir: Path
    records_required: bool = True
    _records: dict[str, DrillRecord | None] = field(default_factory=dict, repr=False)

    def _record(self, drill_id: str) -> DrillRecord | None:
        if drill_id not in self._records:
            self._records[drill_id] = self.store.get_drill(drill_id)
        return self._records[drill_id]

    def folder(self, drill_id: str, digest: str, *, whole: bool) -> Path | None:
        record = self._record(drill_id)
        if record is None or record.manifest_key is None:
            return None
        destination = self.workdir / drill_id / ("whole" if whole else "seal")
        if not destination.is_dir():
            download_evidence(self.s3, self.bucket, record.manifest_key.removesuffix(MANIFEST_NAME), destination,
                              only=None if whole else SEALS)
        return destination

    def recorded(self, drill_id: str) -> Recorded | None:
        record = self._record(drill_id)
        return Recorded.of(record) if record is not None else None

    def head(self, service: str) -> ChainHead | None:
        return self.store.chain_head(service)

    def sealed(self, service: str) -> list[Recorded]:
        return [Recorded(drill_id=e.drill_id, manifest_digest=e.manifest_digest, sequence=e.sequence,
                         previous_manifest_digest=None, previous_drill_id=None, service=service)
                for e in self.store.history(service, limit=ALL_DRILLS) if e.manifest_digest is not None]

    def missing(self, drill_id: str, service: str, before: str) -> str | None:
        return "the drill table holds no evidence record for it"

    def stored_problems(self, drill_id: str, digest: str) -> list[str]:
        """The manifest object's metadata stamp, and whether the manifest or its signature was ever overwritten."""
        record = self._record(drill_id)
        if record is None or record.manifest_key is None:
            return []
        problems = []
        try:
            stamped = self.s3.head_object(Bucket=self.bucket, Key=record.manifest_key)["Metadata"].get(
                MANIFEST_DIGEST_METADATA)
        except ClientError:
            stamped = None  # a missing manifest is named by the folder check
        else:
            if stamped != digest:
                problems.append(f"{MANIFEST_NAME}: S3 metadata {MANIFEST_DIGEST_METADATA} {stamped} differs from "
                                f"the manifest's digest ({digest})")
        prefix = record.manifest_key.removesuffix(MANIFEST_NAME)
        for name in SEALS:
            key = f"{prefix}{name}"
            listed = self.s3.list_object_versions(Bucket=self.bucket, Prefix=key)
            versions = [v for v in [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])] if v["Key"] == key]
            if len(versions) > 1:
                problems.append(f"{name}: written {len(versions)} times in the bucket (it is written once: an "
                                "earlier version was replaced or deleted)")
        return problems
