"""Which keys to trust, and whether each entry is signed by one of them at the right time.

Trust never comes from the catalog: whoever can write it can add a key row of their own. It
starts from keys given from outside (the key file the server holds, or ``--public-key``) and
spreads only along rotation entries, each signed by the old key and countersigned by the new
one: a chain of keys linked that way is one signer. The rotations also give each key its
range: a key signs from the entry after the rotation that introduced it up to the rotation
that retired it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from facetrace.governance import signing
from facetrace.governance.audit_format import (
    SEAL_ACTION,
    anchor_message,
    entry_hash,
    entry_message,
    rotation_message,
)


def short(key_id: str) -> str:
    return key_id[:16]


class SignatureCheck:
    """Checks entries one by one (in order), then says which keys it trusted."""

    def __init__(
        self,
        material: dict[str, str],
        roots: Iterable[Ed25519PublicKey],
        rotations: Iterable[dict[str, Any]],
    ) -> None:
        """``material``: key id → base64 public key, from the catalog or an export (not trusted);
        ``roots``: the keys trusted from outside; ``rotations``: every rotation entry of the log."""
        self.keys: dict[str, Ed25519PublicKey] = {}
        for kid, text in material.items():
            public = signing.public_from_text(text)
            if public is not None and signing.key_id(public) == kid:  # a row naming another key is ignored
                self.keys[kid] = public
        self.roots = {signing.key_id(public): public for public in roots}
        self.keys.update(self.roots)
        #: Per key: the first and last sequence numbers it may sign (None: open-ended).
        self.ranges: dict[str, list[int | None]] = {}
        links: list[tuple[str, str]] = []
        for values in sorted(rotations, key=lambda v: v["id"]):
            link = self._rotation(values)
            if link is None:
                continue
            old, new = link
            self.ranges.setdefault(old, [None, None])
            if self.ranges[old][1] is None:
                self.ranges[old][1] = values["id"]
            self.ranges.setdefault(new, [None, None])[0] = values["id"] + 1
            links.append(link)
        self.trusted = self._closure(set(self.roots), links)
        self.signed = 0
        self.unsigned = 0

    def _rotation(self, values: dict[str, Any]) -> tuple[str, str] | None:
        """The (old, new) link a rotation entry proves, or None if it proves nothing."""
        details = values.get("details") or {}
        old, new = values.get("key_id"), details.get("new_key_id")
        public = signing.public_from_text(details.get("new_public_key") or "")
        if not old or old not in self.keys or public is None or signing.key_id(public) != new:
            return None
        if entry_hash(values) != values["hash"]:
            return None
        if not signing.verify(
            self.keys[old], values.get("signature") or "", entry_message(values["id"], values["hash"])
        ):
            return None
        if not signing.verify(public, details.get("new_key_signature") or "", rotation_message(old, new)):
            return None
        self.keys[new] = public
        return old, new

    @staticmethod
    def _closure(trusted: set[str], links: list[tuple[str, str]]) -> set[str]:
        grown = True
        while grown:
            grown = False
            for old, new in links:
                if (old in trusted) != (new in trusted):
                    trusted |= {old, new}
                    grown = True
        return trusted

    def check(self, values: dict[str, Any], *, consecutive: bool = True) -> str | None:
        """The problem with this entry's signature, or None. ``consecutive``: the entries come
        one after another from the start of the log or of a range (not a unit's extract)."""
        signature, kid, seq = values.get("signature"), values.get("key_id"), values["id"]
        if signature is None:
            if consecutive and self.signed:
                return "it is not signed, though entries before it are"
            self.unsigned += 1
            return None
        if consecutive and self.unsigned and not self.signed and values["action"] != SEAL_ACTION:
            return (
                "it is the first signed entry after unsigned ones, but it is not the entry that sealed them"
            )
        self.signed += 1
        public = self.keys.get(kid or "")
        if public is None:
            return f"it is signed by an unknown key {short(kid or '')}"
        if not signing.verify(public, signature, entry_message(seq, values["hash"])):
            return "its signature does not match its content"
        if kid not in self.trusted:
            return f"it is signed by key {short(kid or '')}, which is not trusted ({self.trust_note()})"
        first, last = self.ranges.get(kid, [None, None])
        if (first is not None and seq < first) or (last is not None and seq > last):
            span = f"{first or 1}–{last if last is not None else '…'}"
            return f"it is signed by key {short(kid)} outside the entries that key signs ({span})"
        return None

    def check_anchor(self, anchor: dict[str, Any]) -> str | None:
        """The problem with an anchor's own signature, or None."""
        public = self.keys.get(anchor.get("key_id") or "")
        if public is None or anchor["key_id"] not in self.trusted:
            return f"the anchor is signed by key {short(anchor.get('key_id') or '')}, which is not trusted"
        if not signing.verify(public, anchor.get("signature") or "", anchor_message(anchor)):
            return "the anchor's signature does not match its content"
        return None

    def trust_note(self) -> str:
        if not self.roots:
            return "no trusted key was given"
        return "trusted: " + ", ".join(sorted(short(k) for k in self.trusted))
