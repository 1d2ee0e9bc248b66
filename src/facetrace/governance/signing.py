"""The audit log's signing key: Ed25519, its private part in a file outside the catalog.

Whoever can write the database can recompute a sha256 chain; they cannot sign without this
file. The key id is the sha256 of the raw public key, so a public key can be named and checked
without trusting whoever wrote the name down. Each kind of signed message starts with its own
label, so a signature made for one purpose never passes for another.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from facetrace.core.errors import AuditWriteError, FacetraceError

ENTRY = b"facetrace-audit-entry/1\n"
ROTATION = b"facetrace-audit-rotation/1\n"
ANCHOR = b"facetrace-audit-anchor/1\n"

_PEM_PUBLIC = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)


def raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public: Ed25519PublicKey) -> str:
    """The key's fingerprint: sha256 of the raw 32-byte public key, hex."""
    return hashlib.sha256(raw_public(public)).hexdigest()


def public_to_text(public: Ed25519PublicKey) -> str:
    """Base64 of the raw public key, as the catalog, entries and exports carry it."""
    return base64.b64encode(raw_public(public)).decode()


def public_from_text(text: str) -> Ed25519PublicKey | None:
    """The key a base64 text holds, or None if it holds none."""
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except ValueError:
        return None


def public_to_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def read_public_keys(data: bytes) -> list[Ed25519PublicKey]:
    """Every Ed25519 public key in a PEM file (one or several ``PUBLIC KEY`` blocks)."""
    keys = []
    for block in _PEM_PUBLIC.findall(data):
        public = serialization.load_pem_public_key(block)
        if not isinstance(public, Ed25519PublicKey):
            raise FacetraceError("a public key in the file is not an Ed25519 key")
        keys.append(public)
    if not keys:
        raise FacetraceError("no PEM public key ('-----BEGIN PUBLIC KEY-----') found in the file")
    return keys


def verify(public: Ed25519PublicKey, signature: str, message: bytes) -> bool:
    try:
        public.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class SigningKey:
    """A private key and what is derived from it."""

    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private.sign(message)).decode()

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def read(cls, path: Path) -> SigningKey:
        """Read a key file: PEM (PKCS#8, unencrypted) or the raw 32-byte seed."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise AuditWriteError(f"cannot read the audit signing key {path}: {exc.strerror}") from exc
        if len(data) == 32:
            return cls(Ed25519PrivateKey.from_private_bytes(data))
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise AuditWriteError(
                f"{path} is not an Ed25519 private key (PEM or 32 raw bytes): {exc}"
            ) from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise AuditWriteError(f"{path} holds a private key, but not an Ed25519 one")
        return cls(private)

    def write(self, path: Path) -> None:
        """Write the key as PEM over ``path`` (a new file renamed over it: a crash leaves one whole key)."""
        temporary = self._write_beside(path)
        temporary.replace(path)

    def _write_beside(self, path: Path) -> Path:
        """A new file beside ``path`` holding the key, readable by its owner only, in a folder only
        its owner may enter."""
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.unlink(missing_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        pem = self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
            file.flush()
            os.fsync(file.fileno())
        return temporary


def load_or_create(path: Path) -> tuple[SigningKey, bool]:
    """The key in ``path``, created (0600, folder 0700) when there is none; and whether it was created."""
    if path.exists():
        return SigningKey.read(path), False
    key = SigningKey.generate()
    temporary = key._write_beside(path)
    try:
        # A hard link appears whole or not at all, and never over another process's key.
        os.link(temporary, path)
    except FileExistsError:
        return SigningKey.read(path), False
    finally:
        temporary.unlink(missing_ok=True)
    return key, True
