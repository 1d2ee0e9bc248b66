"""Keyed hashes: how erasure records name what it deleted without keeping anything that identifies it.

A plain SHA-256 of a URL, a file path, an image's sha256 or a face id can be reversed by trying
candidates (face ids are small numbers; URLs can be guessed). An HMAC-SHA256 with a secret of the
deployment cannot: only whoever holds the key can say whether a given URL is among those erased.
The key lives outside the catalog (``FACETRACE_ERASURE_HMAC_KEY_FILE``, default
``<data_dir>/erasure.key``, created 0600 at first use); a certificate names the key it was made
with by an id derived from it, never the key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from facetrace.core.config import Settings
from facetrace.core.errors import FacetraceError
from facetrace.core.private_files import secret

KEY_FILE = "erasure.key"
ALGORITHM = "HMAC-SHA256"
#: Fewer bytes than this is no secret (the generated key has 64 hex digits).
MIN_KEY_BYTES = 16


class ErasureKey:
    """The deployment's erasure key, and the keyed hashes it makes."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise FacetraceError(f"the erasure key must hold at least {MIN_KEY_BYTES} bytes")
        self._key = key

    @classmethod
    def of(cls, settings: Settings) -> ErasureKey:
        return cls(secret(settings.erasure_hmac_key_file or settings.data_dir / KEY_FILE))

    @property
    def id(self) -> str:
        """Names the key in a certificate, so that a check with another key says so."""
        return self.hash("facetrace erasure key id")[:16]

    def hash(self, value: str | int) -> str:
        return hmac.new(self._key, str(value).encode(), hashlib.sha256).hexdigest()

    def hashes(self, values: Iterable[str | int]) -> list[str]:
        """The keyed hash of each value, sorted (their order says nothing about the values)."""
        return sorted({self.hash(v) for v in values})
