"""The signature of a drill's manifest (signature.json beside manifest.json), docs/architecture.md §8.

The Evidence step signs the manifest's SHA-256 with an asymmetric KMS key (ECC_NIST_P256, ECDSA_SHA_256) that
only its role may use. What is signed is a short statement naming the digest (``signed_message``), sent as a RAW
message so that KMS hashes it once more: the same bytes verify with the public key alone, offline, and under moto
(whose KMS ignores MessageType DIGEST). A signature names its key by id and by the SHA-256 of the public key
(DER SubjectPublicKeyInfo), the fingerprint every report and ``livefire public-key`` show.

Checking a signature needs a public key a verifier trusts: the layer holds only the ``SignatureVerifier``
protocol; the command line provides it (``livefire_local.signing``), so the layer ships no cryptography library.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field, ValidationError

SIGNATURE_NAME = "signature.json"
SIGNING_ALGORITHM = "ECDSA_SHA_256"
SIGNING_KEY_SPEC = "ECC_NIST_P256"
_PEM = re.compile(r"-----BEGIN PUBLIC KEY-----(.+?)-----END PUBLIC KEY-----", re.S)


class SigningKey(BaseModel):
    """Which key signs a drill's manifest: its id (a KMS key ARN, or ``local:<path>``) and its fingerprint."""

    key_id: str = Field(description="The KMS key ARN, or local:<path> of the local signing key.")
    public_key_sha256: str = Field(description="SHA-256 of the public key (DER SubjectPublicKeyInfo), hex.")


class ManifestSignature(BaseModel):
    """signature.json: the manifest's digest, signed."""

    version: Literal[1] = Field(default=1, description="The format of this document.")
    algorithm: Literal["ECDSA_SHA_256"] = Field(default="ECDSA_SHA_256", description="The KMS signing algorithm.")
    key: SigningKey = Field(description="The key that signed.")
    manifest_sha256: str = Field(description="SHA-256 of manifest.json, the digest that was signed.")
    signature: str = Field(description="The DER-encoded ECDSA signature of signed_message(manifest_sha256), base64.")

    def to_bytes(self) -> bytes:
        return (json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n").encode()


class Signer(Protocol):
    """What signs manifests: a KMS key in AWS, the same KMS API locally."""

    @property
    def key(self) -> SigningKey: ...

    def sign(self, message: bytes) -> bytes: ...


class SignatureVerifier(Protocol):
    """A public key the verifier trusts."""

    @property
    def fingerprint(self) -> str: ...

    def verify(self, message: bytes, signature: bytes) -> bool: ...


def signed_message(manifest_sha256: str) -> bytes:
    """The statement a manifest's signature covers."""
    return f"livefire manifest sha256:{manifest_sha256}".encode("ascii")


def fingerprint(public_key_der: bytes) -> str:
    return hashlib.sha256(public_key_der).hexdigest()


def der_from_pem(pem: str) -> bytes:
    """The DER SubjectPublicKeyInfo inside a PEM ``PUBLIC KEY`` block; ValueError when there is none."""
    found = _PEM.search(pem)
    if found is None:
        raise ValueError("not a PEM public key (-----BEGIN PUBLIC KEY-----)")
    try:
        return base64.b64decode("".join(found.group(1).split()), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"the PEM public key is not valid base64: {exc}") from None


def pem_from_der(der: bytes) -> str:
    body = base64.b64encode(der).decode("ascii")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


class KmsSigner:
    """Signs with an asymmetric KMS key (``kms:Sign``); its public key is read once (``kms:GetPublicKey``)."""

    def __init__(self, kms: Any, key_id: str) -> None:
        self._kms = kms
        self._key_id = key_id
        self._key: SigningKey | None = None

    @property
    def key(self) -> SigningKey:
        if self._key is None:
            response = self._kms.get_public_key(KeyId=self._key_id)
            self._key = SigningKey(key_id=self._key_id,
                                   public_key_sha256=fingerprint(bytes(response["PublicKey"])))
        return self._key

    def sign(self, message: bytes) -> bytes:
        response = self._kms.sign(KeyId=self._key_id, Message=message, MessageType="RAW",
                                  SigningAlgorithm=SIGNING_ALGORITHM)
        return bytes(response["Signature"])


def sign_manifest(signer: Signer, manifest_sha256: str) -> ManifestSignature:
    signature = signer.sign(signed_message(manifest_sha256))
    return ManifestSignature(key=signer.key, manifest_sha256=manifest_sha256,
                             signature=base64.b64encode(signature).decode("ascii"))


def signature_problems(raw: bytes | None, manifest_sha256: str, verifier: SignatureVerifier,
                       signing_key: Any) -> list[str]:
    """Why signature.json does not prove that the trusted key signed this manifest (empty: it does).

    ``signing_key`` is the manifest's own ``signing_key`` field: the key the manifest says will sign it.
    """
    if raw is None:
        return [f"{SIGNATURE_NAME}: missing (the manifest is not signed)"]
    try:
        doc = ManifestSignature.model_validate_json(raw)
    except ValidationError as exc:
        return [f"{SIGNATURE_NAME}: not a signature document ({exc.errors()[0]['msg']})"]
    problems = []
    if doc.manifest_sha256 != manifest_sha256:
        problems.append(f"{SIGNATURE_NAME}: signs manifest digest {doc.manifest_sha256}, not this manifest "
                        f"({manifest_sha256})")
    if doc.key.public_key_sha256 != verifier.fingerprint:
        problems.append(f"{SIGNATURE_NAME}: signed by key {doc.key.public_key_sha256}, not the trusted key "
                        f"{verifier.fingerprint}")
    elif not _valid(verifier, doc):
        problems.append(f"{SIGNATURE_NAME}: the signature does not verify with the trusted key {verifier.fingerprint}")
    named = signing_key.get("public_key_sha256") if isinstance(signing_key, dict) else None
    if named != doc.key.public_key_sha256:
        problems.append(f"manifest.json: names signing key {named}, but {SIGNATURE_NAME} is by "
                        f"{doc.key.public_key_sha256}")
    return problems


def _valid(verifier: SignatureVerifier, doc: ManifestSignature) -> bool:
    try:
        signature = base64.b64decode(doc.signature, validate=True)
    except binascii.Error:
        return False
    return verifier.verify(signed_message(doc.manifest_sha256), signature)
