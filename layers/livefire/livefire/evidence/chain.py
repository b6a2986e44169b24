"""Following a service's hash chain of signed manifests, wherever the evidence is (docs/architecture.md §8).

Each manifest names the previous manifest of its service by digest and drill id, and its own sequence number;
each is signed. An ``EvidenceSource`` gives the walk what it needs, from an evidence folder on this machine or
from the bucket and the drill table: a drill's evidence as a folder, what the records say about the drill
(``Recorded``), the chain head, and every sealed drill of a service. Two walks:

- ``verify_drill``: the drill's own evidence in full (every artifact, completeness, signature), its record
  against its manifest, then link by link back to the first drill: each earlier manifest's digest against the
  link, its signature, its record, its identity and its sequence. ``recompute_earlier`` also recomputes every
  artifact of the earlier drills (what a local folder walk does: it is cheap there).
- ``verify_service_chain``: from the chain head, every drill in full, and no sealed drill of the service left off
  the chain (a fork) or sequence skipped (a gap).
Every problem is one line naming the drill, the link or the file; the first one is what `livefire verify` prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from livefire.evidence.manifest import MANIFEST_NAME, manifest_digest, verify_evidence_dir
from livefire.evidence.signature import SIGNATURE_NAME, SignatureVerifier, signature_problems
from livefire.records import ChainHead, DrillRecord

Progress = Callable[[int, int, str], None]  # (drills done, drills expected, drill id)


class EvidenceNotFound(LookupError):
    """The drill (or its evidence) is not there to verify: nothing can be said about tampering."""


@dataclass(frozen=True)
class Recorded:
    """What the drill table (locally: the chain state beside the evidence) holds about a sealed drill."""

    drill_id: str
    manifest_digest: str
    sequence: int | None
    previous_manifest_digest: str | None
    previous_drill_id: str | None
    service: str | None = None
    verdict: str | None = None

    @classmethod
    def of(cls, record: DrillRecord) -> Recorded | None:
        """What a drill record says about its sealed manifest (None before the drill joined its chain). The
        verdict counts only once the Evidence step finished the record (the guardian may close one earlier)."""
        seal = record.seal
        if seal is None:
            return None
        finished = record.status in ("COMPLETED", "NOT_STEADY", "CANCELLED", "ERROR", "ABORTED")
        return cls(drill_id=record.drill_id, manifest_digest=seal.manifest_digest, sequence=seal.sequence,
                   previous_manifest_digest=seal.previous_manifest_digest, previous_drill_id=seal.previous_drill_id,
                   service=record.service, verdict=record.verdict if finished else None)


class EvidenceSource(Protocol):
    """Where the evidence and the records of a service's drills are."""

    records_required: bool  # the bucket has a drill table: a sealed drill without a record is a problem

    def folder(self, drill_id: str, digest: str, *, whole: bool) -> Path | None:
        """The drill's evidence (only manifest.json and signature.json unless ``whole``), None if absent."""

    def recorded(self, drill_id: str) -> Recorded | None: ...

    def head(self, service: str) -> ChainHead | None: ...

    def sealed(self, service: str) -> list[Recorded]: ...

    def missing(self, drill_id: str, service: str, before: str) -> str | None:
        """Why an earlier drill whose evidence is absent means a drill went missing; None when the chain may
        simply go on elsewhere (a folder copied on its own). ``before`` is the later drill's created_at."""

    def stored_problems(self, drill_id: str, digest: str) -> list[str]:
        """What the store itself says about the manifest object (S3 metadata, overwritten versions)."""


@dataclass
class ChainResult:
    ok: bool
    problems: list[str]
    drills: list[str]  # the drills whose evidence or manifest was checked, newest first
    end: str  # where the walk stopped, for people

    @property
    def first_problem(self) -> str | None:
        return self.problems[0] if self.problems else None


def link_name(newer: str, older: str) -> str:
    return f"chain link {newer} → {older}"


def record_problems(where: str, recorded: Recorded | None, manifest: dict[str, Any], digest: str,
                    *, required: bool) -> list[str]:
    """The drill's record against its manifest (``where`` prefixes each problem)."""
    drill_id = manifest.get("drill_id")
    if recorded is None:
        return [f"{where}the drill table has no evidence record for {drill_id}"] if required else []
    problems = []
    if recorded.manifest_digest != digest:
        problems.append(f"{where}the record of {drill_id} holds manifest digest {recorded.manifest_digest}, "
                        f"not {digest}")
    for name, value in (("sequence", recorded.sequence), ("previous_drill_id", recorded.previous_drill_id),
                        ("previous_manifest_digest", recorded.previous_manifest_digest),
                        ("service", recorded.service), ("verdict", recorded.verdict)):
        if value is not None and value != manifest.get(name):
            problems.append(f"{where}the record of {drill_id} holds {name} {value}, the manifest {manifest.get(name)}")
    if recorded.sequence is not None and recorded.previous_drill_id is None and manifest.get("previous_drill_id"):
        problems.append(f"{where}the record of {drill_id} holds no previous drill, the manifest "
                        f"{manifest.get('previous_drill_id')}")
    return problems


def _identity_problems(where: str, manifest: dict[str, Any], drill_id: str, service: str) -> list[str]:
    problems = []
    if manifest.get("drill_id") != drill_id:
        problems.append(f"{where}{MANIFEST_NAME} is the manifest of drill {manifest.get('drill_id')}, not {drill_id}")
    if manifest.get("service") != service:
        problems.append(f"{where}{MANIFEST_NAME} belongs to service {manifest.get('service')}, not {service}")
    return problems


def _sealed_manifest(folder: Path, expected: str, verifier: SignatureVerifier,
                     where: str) -> tuple[list[str], dict[str, Any] | None]:
    """An earlier drill checked by its manifest and signature only: the link's digest, then the signature."""
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return [f"{where}{MANIFEST_NAME}: missing"], None
    raw = path.read_bytes()
    actual = manifest_digest(raw)
    problems = [] if actual == expected else [f"{where}{MANIFEST_NAME}: digest {actual} is not the expected {expected}"]
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return [*problems, f"{where}{MANIFEST_NAME}: not valid JSON"], None
    if not isinstance(manifest, dict):
        return [*problems, f"{where}{MANIFEST_NAME}: not a JSON object"], None
    signature = folder / SIGNATURE_NAME
    raw_signature = signature.read_bytes() if signature.is_file() else None
    problems += [where + p for p in signature_problems(raw_signature, actual, verifier, manifest.get("signing_key"))]
    return problems, manifest


@dataclass
class _Walk:
    source: EvidenceSource
    verifier: SignatureVerifier
    service: str
    problems: list[str] = field(default_factory=list)
    drills: list[str] = field(default_factory=list)

    def check(self, folder: Path, drill_id: str, digest: str, *, whole: bool, where: str) -> dict[str, Any] | None:
        """One drill's evidence, record and stored manifest; its manifest, or None when it cannot be read."""
        if whole:
            result = verify_evidence_dir(folder, verifier=self.verifier, expected_manifest_digest=digest)
            self.problems += [f"{where}{problem}" for problem in result.problems]
            manifest, actual = result.manifest, result.manifest_digest
        else:
            found, manifest = _sealed_manifest(folder, digest, self.verifier, where)
            self.problems += found
            actual = manifest_digest((folder / MANIFEST_NAME).read_bytes()) if manifest is not None else None
        self.problems += [where + p for p in self.source.stored_problems(drill_id, digest)]
        if manifest is None or actual is None:
            return None
        self.problems += _identity_problems(where, manifest, drill_id, self.service)
        self.problems += record_problems(where, self.source.recorded(drill_id), manifest, actual,
                                         required=self.source.records_required)
        self.drills.append(drill_id)
        return manifest

    def back(self, manifest: dict[str, Any], *, whole: bool, depth: int | None,
             progress: Progress | None, total: int) -> str:
        """Follow the links back from ``manifest``; where the walk ended."""
        while True:
            previous, previous_id = manifest.get("previous_manifest_digest"), manifest.get("previous_drill_id")
            newer = str(manifest.get("drill_id"))
            if not isinstance(previous, str) or not isinstance(previous_id, str):
                return f"the first drill of {self.service}"
            if depth is not None and len(self.drills) > depth:
                return f"the depth limit ({depth} earlier drills)"
            link = link_name(newer, previous_id)
            if previous_id in self.drills:
                self.problems.append(f"{link}: the chain loops back to {previous_id}")
                return "a loop"
            folder = self.source.folder(previous_id, previous, whole=whole)
            if folder is None:
                reason = self.source.missing(previous_id, self.service, str(manifest.get("created_at", "")))
                if reason is not None:
                    self.problems.append(f"{link}: the evidence of {previous_id} is missing, but {reason}")
                return f"{previous_id}, whose evidence is not here"
            if progress is not None:
                progress(len(self.drills) + 1, total, previous_id)
            earlier = self.check(folder, previous_id, previous, whole=whole, where=f"{link}: {previous_id}/")
            if earlier is None:
                return f"{previous_id}, whose manifest cannot be read"
            sequence, older_sequence = manifest.get("sequence"), earlier.get("sequence")
            if isinstance(sequence, int) and isinstance(older_sequence, int) and older_sequence != sequence - 1:
                self.problems.append(f"{link}: gap: sequence {sequence} follows sequence {older_sequence}")
            manifest = earlier

    def result(self, end: str) -> ChainResult:
        return ChainResult(ok=not self.problems, problems=self.problems, drills=self.drills, end=end)


def _service_of(folder: Path) -> str:
    """The service a folder's manifest names ('?' when it cannot be read: the walk then reports why)."""
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "?"
    return str(manifest.get("service")) if isinstance(manifest, dict) else "?"


def verify_drill(drill_id: str, digest: str, source: EvidenceSource, verifier: SignatureVerifier, *,
                 recompute_earlier: bool = False, depth: int | None = None) -> ChainResult:
    """A drill's evidence in full, its record, and its links back to the service's first drill."""
    folder = source.folder(drill_id, digest, whole=True)
    if folder is None:
        raise EvidenceNotFound(f"the evidence of drill {drill_id} is not there")
    walk = _Walk(source, verifier, _service_of(folder))
    manifest = walk.check(folder, drill_id, digest, whole=True, where="")
    if manifest is None:
        return walk.result("the manifest cannot be read")
    head = source.head(walk.service)
    if head is not None and head.drill_id == drill_id and (head.digest, head.sequence) != (
            digest, manifest.get("sequence")):
        walk.problems.append(f"chain head of {walk.service}: digest {head.digest} (sequence {head.sequence}) is not "
                             f"this drill's manifest {digest} (sequence {manifest.get('sequence')})")
    return walk.result(walk.back(manifest, whole=recompute_earlier, depth=depth, progress=None, total=0))


def verify_service_chain(service: str, source: EvidenceSource, verifier: SignatureVerifier, *,
                         progress: Progress | None = None) -> ChainResult:
    """Every drill of the service from its chain head, recomputed in full; a fork or a gap is named."""
    head = source.head(service)
    if head is None:
        raise EvidenceNotFound(f"no evidence chain of {service}")
    walk = _Walk(source, verifier, service)
    if progress is not None:
        progress(1, head.sequence, head.drill_id)
    folder = source.folder(head.drill_id, head.digest, whole=True)
    if folder is None:
        walk.problems.append(f"chain head of {service}: the evidence of {head.drill_id} is missing")
        return walk.result(f"{head.drill_id}, the chain head, whose evidence is not here")
    manifest = walk.check(folder, head.drill_id, head.digest, whole=True, where=f"{head.drill_id}/")
    if manifest is None:
        return walk.result(f"{head.drill_id}, the chain head, whose manifest cannot be read")
    if manifest.get("sequence") != head.sequence:
        walk.problems.append(f"chain head of {service}: sequence {head.sequence}, but the manifest of "
                             f"{head.drill_id} has {manifest.get('sequence')}")
    end = walk.back(manifest, whole=True, depth=None, progress=progress, total=head.sequence)
    on_chain = set(walk.drills)
    for recorded in sorted(source.sealed(service), key=lambda r: (r.sequence or 0, r.drill_id)):
        if recorded.drill_id not in on_chain:
            walk.problems.append(f"fork: drill {recorded.drill_id} (sequence {recorded.sequence}, manifest "
                                 f"{recorded.manifest_digest}) is not on the chain of {service}")
    return walk.result(end)
