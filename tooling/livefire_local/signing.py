"""Keys for signed evidence on this machine: the local signing key, and the public keys `livefire verify` trusts.

Locally a key kept outside the evidence folder plays the KMS key's part: an ECDSA P-256 key in the user's
config directory (``$XDG_CONFIG_HOME/livefire/signing-key.pem``, else ``~/.config/livefire/``), created on
first use with mode 0600. The local stack puts it behind moto's KMS key (``install_in_moto``), so the Evidence
step signs through the same KMS API as in AWS, and drills of many runs are signed by one key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from livefire.evidence.signature import SigningKey, der_from_pem, fingerprint

KEY_FILE = "signing-key.pem"
CONFIG_DIR_ENV = "XDG_CONFIG_HOME"


def config_dir() -> Path:
    base = os.environ.get(CONFIG_DIR_ENV) or str(Path.home() / ".config")
    return Path(base) / "livefire"


def local_key_path() -> Path:
    return config_dir() / KEY_FILE


@dataclass(frozen=True)
class LocalSigningKey:
    """The local signing key: signs like KMS (ECDSA_SHA_256 over the raw message)."""

    path: Path
    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def load_or_create(cls, path: Path | None = None) -> LocalSigningKey:
        path = path or local_key_path()
        if path.is_file():
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey) or loaded.curve.name != "secp256r1":
                raise ValueError(f"{path} is not an ECDSA P-256 private key")
            return cls(path, loaded)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(pem)
        return cls(path, key)

    @property
    def public_der(self) -> bytes:
        return self.private_key.public_key().public_bytes(serialization.Encoding.DER,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo)

    @property
    def public_pem(self) -> str:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")

    @property
    def key(self) -> SigningKey:
        return SigningKey(key_id=f"local:{self.path}", public_key_sha256=fingerprint(self.public_der))

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message, ec.ECDSA(hashes.SHA256()))


class PublicKeyVerifier:
    """A trusted ECDSA P-256 public key (PEM): what `livefire verify` checks signatures with."""

    def __init__(self, pem: str) -> None:
        der = der_from_pem(pem)
        key = serialization.load_der_public_key(der)
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            raise ValueError("the public key is not an ECDSA P-256 key (KMS key spec ECC_NIST_P256)")
        self._key = key
        self.fingerprint = fingerprint(der)

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self._key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


def install_in_moto(key_id: str, signing_key: LocalSigningKey, account: str, region: str) -> None:
    """Back moto's KMS key ``key_id`` with the local signing key, so what it signs verifies across runs.

    moto keeps a KMS key's private key in ``Key.private_key.private_key`` (moto 5.2, pinned in constraints.txt);
    a KMS key cannot import asymmetric key material through the API moto implements.
    """
    from moto.kms.models import kms_backends

    key = kms_backends[account][region].keys[key_id]
    key.private_key.private_key = signing_key.private_key  # type: ignore[attr-defined]  # moto's ECDSAPrivateKey
