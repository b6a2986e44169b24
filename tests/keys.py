"""Signing keys for tests: the local signing key local stacks sign with (kept in the tests' $XDG_CONFIG_HOME by
tests/conftest.py), and sealing an evidence folder by hand, as the Evidence step would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from livefire.evidence.manifest import MANIFEST_NAME, manifest_bytes, manifest_digest
from livefire.evidence.signature import SIGNATURE_NAME, sign_manifest
from livefire_local.signing import LocalSigningKey, PublicKeyVerifier


def local_key() -> LocalSigningKey:
    return LocalSigningKey.load_or_create()


def local_verifier() -> PublicKeyVerifier:
    """The public key of the local signing key: what evidence of a local stack verifies with."""
    return PublicKeyVerifier(local_key().public_pem)


def seal_folder(folder: Path, manifest: dict[str, Any], key: LocalSigningKey | None = None) -> str:
    """Write ``manifest`` canonically and sign it into ``folder``; its digest."""
    raw = manifest_bytes(manifest)
    (folder / MANIFEST_NAME).write_bytes(raw)
    digest = manifest_digest(raw)
    (folder / SIGNATURE_NAME).write_bytes(sign_manifest(key or local_key(), digest).to_bytes())
    return digest
