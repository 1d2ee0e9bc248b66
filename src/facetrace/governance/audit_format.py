"""What an audit entry is on the wire: its fields, its canonical JSON, its hash and what is signed."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from facetrace.core.errors import AuditWriteError
from facetrace.governance import signing

GENESIS = "0" * 64
#: The fields of an entry, in the order exports list them. All of them are hashed except ``hash``
#: and the signature's two fields (the signature is made over the hash).
FIELDS = (
    "id",
    "at",
    "user_name",
    "roles",
    "unit",
    "bootstrap",
    "action",
    "outcome",
    "case_ref",
    "offence",
    "purpose",
    "authorisation_ref",
    "probe_sha256",
    "result_count",
    "result_face_ids",
    "details",
    "prev_hash",
    "hash",
    "key_id",
    "signature",
)
UNHASHED = frozenset({"hash", "key_id", "signature"})

#: The entry a key rotation writes: signed by the old key, naming the new one, which signs it too.
ROTATE_ACTION = "audit.rotate_key"
#: The first signed entry of a log that was kept before entries were signed: it signs their head.
SEAL_ACTION = "audit.sealed"


def timestamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, finite numbers only: the same text on every machine, for ever.

    NaN and infinities are refused: JSON has no such numbers, and a value that one parser reads
    back differently from another would make an entry unverifiable.
    """
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError as exc:
        raise AuditWriteError(
            "an audit entry may not hold a number that is not finite (NaN or infinity); nothing was recorded"
        ) from exc


def entry_hash(values: dict[str, Any]) -> str:
    """sha256 over the previous hash and the canonical JSON of every hashed field."""
    body = {name: values[name] for name in FIELDS if name not in UNHASHED}
    return hashlib.sha256((values["prev_hash"] + canonical_json(body)).encode()).hexdigest()


def entry_message(seq: int, entry_hash: str) -> bytes:
    """What an entry's signature signs: its sequence number and its hash (which covers all the rest)."""
    return signing.ENTRY + f"{seq}:{entry_hash}".encode()


def rotation_message(old_key_id: str, new_key_id: str) -> bytes:
    """What the new key signs in a rotation entry: that it follows the old one."""
    return signing.ROTATION + f"{old_key_id}>{new_key_id}".encode()


def anchor_message(anchor: dict[str, Any]) -> bytes:
    """What an anchor's signature signs: the entry it pins, when, and by which key."""
    pinned = {name: anchor[name] for name in ("seq", "hash", "at", "key_id")}
    return signing.ANCHOR + canonical_json(pinned).encode()
