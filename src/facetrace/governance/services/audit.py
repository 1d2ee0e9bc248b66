"""The audit log: verify it, read and export entries, publish its keys, anchor its head, rotate its key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field

from facetrace.governance import audit, audit_keys, reports, signing
from facetrace.governance.audit import ChainReport, Record
from facetrace.governance.roles import Action
from facetrace.governance.services.base import ServiceBase


class SigningKey(BaseModel):
    """The public half of the key the deployment signs with now."""

    model_config = ConfigDict(frozen=True)

    key_id: str = Field(description="sha256 of the raw public key, hex.")
    public_key: str = Field(description="The raw Ed25519 public key, base64.")
    pem: str = Field(description="The same key as PEM, for 'facetrace audit verify --public-key'.")


class PublicKey(BaseModel):
    """A key the log lists, with the entries it signed."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    public_key: str = Field(description="The raw Ed25519 public key, base64.")
    created_at: str
    first_seq: int | None = Field(description="The first entry it signs.")
    last_seq: int | None = Field(description="The rotation entry it signed last (none: it signs now).")


class PublicKeys(BaseModel):
    """What to publish so that anyone can check the log without a secret."""

    model_config = ConfigDict(frozen=True)

    format: str
    signing_key: SigningKey = Field(description="The key the server signs with now, from its key file.")
    keys: list[PublicKey]


class Head(BaseModel):
    model_config = ConfigDict(frozen=True)

    seq: int
    hash: str


class AuditExport(BaseModel):
    """A range of the log that an outside body can check on its own ('facetrace audit verify --export')."""

    model_config = ConfigDict(frozen=True)

    format: str
    exported_at: str
    first: int
    last: int | None
    unit: str | None = Field(description="Only this unit's entries (a supervisor's export).")
    prev_hash: str = Field(description="The hash of the entry before the range: the link into it.")
    head: Head = Field(description="The newest entry of the whole log: keep its hash.")
    keys: list[PublicKey] = Field(description="Every public key the log lists (trust the published one).")
    rotations: list[dict[str, Any]] = Field(
        description="The key rotation entries, which link each key to the next (signed by both)."
    )
    # Entries pass through untouched: every field is hashed, so the export must be byte-faithful.
    entries: list[dict[str, Any]]

    def document(self) -> dict[str, Any]:
        """As it is written to a file and checked by ``audit.check_export`` (the same keys, in order)."""
        return self.model_dump()


class Anchor(BaseModel):
    """A signed head of the log: keep it elsewhere; 'facetrace audit verify --anchor FILE' later
    shows whether the log still holds that entry unchanged."""

    model_config = ConfigDict(frozen=True)

    format: str
    seq: int
    hash: str
    at: str
    key_id: str
    public_key: str
    signature: str


@dataclass(frozen=True, slots=True)
class KeyRotated:
    seq: int  # the rotation entry's
    old_key_id: str
    new_key_id: str


class AuditService(ServiceBase):
    """``gov.audit``: the log, as auditors and supervisors read it."""

    def verify(
        self, public_keys: list[Ed25519PublicKey] | None = None, anchor: dict[str, Any] | None = None
    ) -> ChainReport:
        """Check the whole chain and its signatures (any reader may: it reveals no entry, only whether
        it holds). ``public_keys``: trust these instead of the key file's; ``anchor``: a signed head
        kept elsewhere, which the log must still hold."""
        self.allow(Action.READ_AUDIT)
        with self.sessions() as session:
            report = audit.verify(session, public_keys, anchor)
        self.record(
            Record(
                action="audit.verify",
                details={
                    "ok": report.ok,
                    "entries": report.entries,
                    "first_broken": report.first_broken,
                    "trusted_keys": list(report.trusted_keys),
                    "anchor_seq": anchor["seq"] if anchor else None,
                },
            )
        )
        return report

    def entries(
        self,
        *,
        user: str | None = None,
        action: str | None = None,
        case_ref: str | None = None,
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        """Entries of the log, newest first, by user, action (or its prefix: ``search``, ``rights.``)
        and case; a supervisor reads their unit's. The query itself is recorded."""
        unit = self._reader_unit(Action.READ_AUDIT)
        filters = {"user": user, "action": action, "case_ref": case_ref, "unit": unit}
        with self.sessions() as session:
            entries = reports.recent(
                session, prefix=action, user=user, unit=unit, case_ref=case_ref, limit=limit
            )
        self.record(Record(action="audit.query", result_count=len(entries), details=filters))
        return entries

    def export(self, first: int = 1, last: int | None = None) -> AuditExport:
        unit = self._reader_unit(Action.READ_AUDIT)
        with self.sessions() as session:
            document = audit.export(session, first, last, unit=unit)
        self.record(
            Record(
                action="audit.export",
                details={
                    "first": first,
                    "last": document["last"],
                    "unit": unit,
                    "entries": len(document["entries"]),
                    "head": document["head"],
                },
            )
        )
        return AuditExport(**document)

    def public_keys(self) -> PublicKeys:
        """The key this deployment signs with now (taken from its key file, so it is the one to
        trust) and every key the catalog lists, with the entries each signed."""
        self.allow(Action.READ_AUDIT)
        current = audit_keys.signer_of(self.sessions).key_for(None)
        with self.sessions() as session:
            keys = audit.public_keys(session)
        self.record(Record(action="audit.public_key", details={"key_id": current.key_id}))
        return PublicKeys(
            format="facetrace-audit-keys/1",
            signing_key=SigningKey(
                key_id=current.key_id,
                public_key=signing.public_to_text(current.public),
                pem=signing.public_to_pem(current.public),
            ),
            keys=[PublicKey(**key) for key in keys],
        )

    def anchor(self) -> Anchor:
        """The head of the log, signed: to be kept elsewhere and given to ``verify`` later, which
        then finds out if entries up to it were cut off or rewritten. Recorded after it is taken."""
        self.allow(Action.READ_AUDIT)
        with self.sessions() as session:
            anchor = Anchor(**audit.make_anchor(session))
        self.record(Record(action="audit.anchor", details={"seq": anchor.seq, "hash": anchor.hash}))
        return anchor

    def rotate_key(self) -> KeyRotated:
        """Replace the signing key. The old private key is destroyed; its public key stays listed
        and the rotation entry (signed by the old key, countersigned by the new) links the two, so
        whoever trusts either key can check the entries of both."""
        self.allow(Action.CONFIGURE)
        signer = audit_keys.signer_of(self.sessions)
        try:
            with self.sessions.begin() as session:
                entry = audit_keys.rotate(session, signer, self.actor)
                details = dict(entry.details or {})
        except BaseException:
            audit_keys.staged_path(signer.path).unlink(missing_ok=True)
            raise
        audit_keys.install(signer, details["new_key_id"])
        return KeyRotated(seq=entry.id, old_key_id=details["old_key_id"], new_key_id=details["new_key_id"])
