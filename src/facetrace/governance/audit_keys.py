"""The audit log's keys over time: loaded at start, sealing what came before, rotated on request.

At start (:func:`attach`) the key file is read, or created when the log has never been
signed, and the catalog sessions get a signer. A log that already holds unsigned entries
(written before entries were signed: a migration holds no key and cannot sign them) gets one
signed ``audit.sealed`` entry whose link covers their head; from then on editing any of them
breaks that signed link. Only a start that creates the key file seals: a log whose signatures
and head key vanished while its key file stayed was stripped to look unsigned, and is not
sealed. A rotation writes the new key beside the old file, appends an entry signed by the old
key that names the new one and carries the new key's countersignature, and only after that
entry is committed puts the new key in place of the old, which is destroyed.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from facetrace.core.config import Settings
from facetrace.core.errors import AuditWriteError
from facetrace.governance import audit, signing
from facetrace.governance.audit import SIGNER, Actor, Record
from facetrace.governance.audit_format import ROTATE_ACTION, SEAL_ACTION, rotation_message
from facetrace.governance.audit_trust import short
from facetrace.store.governance_models import AuditEntry, AuditHead, AuditKey

log = logging.getLogger(__name__)

#: Who seals a log kept before signing: Facetrace itself, at the first start that has a key.
STARTUP = Actor(user_id=0, name="facetrace", roles=frozenset(), unit=None)


def staged_path(path: Path) -> Path:
    """Where a rotation leaves the new key until its entry is committed."""
    return path.with_name(path.name + ".next")


class KeyFileSigner:
    """Signs with the key in the key file; follows a rotation made by another process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key, self.created = signing.load_or_create(path)
        self._lock = threading.Lock()

    def key_for(self, key_id: str | None) -> signing.SigningKey:
        """The key that signs now: the one the head names (``None``: the key file's)."""
        key = self._key
        if key_id is None or key.key_id == key_id:
            return key
        with self._lock:
            # A rotation committed and has not moved its key in yet (or stopped before it could);
            # another process may be doing it at this very moment.
            with contextlib.suppress(AuditWriteError, FileNotFoundError):
                staged = staged_path(self.path)
                if signing.SigningKey.read(staged).key_id == key_id:
                    staged.replace(self.path)
            self._key = signing.SigningKey.read(self.path)
        if self._key.key_id != key_id:
            raise AuditWriteError(
                f"the audit log is signed with key {short(key_id)}, but {self.path} holds key "
                f"{short(self._key.key_id)}: restore the log's key file; nothing was recorded"
            )
        return self._key


def signer_of(sessions: sessionmaker[Session]) -> KeyFileSigner:
    signer: KeyFileSigner | None = sessions.kw.get("info", {}).get(SIGNER)
    if signer is None:
        raise AuditWriteError("no audit signing key is loaded for this catalog")
    return signer


def attach(sessions: sessionmaker[Session], settings: Settings) -> KeyFileSigner:
    """Give the catalog's sessions the signing key (once per session factory); register the key
    and seal unsigned entries the first time."""
    signer: KeyFileSigner | None = sessions.kw.get("info", {}).get(SIGNER)
    if signer is not None:
        return signer
    path = settings.audit_key_path
    with sessions() as session:
        signed_with = session.scalar(select(AuditHead.key_id).where(AuditHead.id == 1))
    if signed_with is not None and not path.exists():
        raise AuditWriteError(
            f"the audit log is signed with key {short(signed_with)}, but its key file {path} is "
            "missing: restore it (FACETRACE_AUDIT_KEY_FILE); a new key would not be trusted"
        )
    signer = KeyFileSigner(path)
    sessions.configure(info={**sessions.kw.get("info", {}), SIGNER: signer})
    audit.register_signer(sessions.kw["bind"].url.render_as_string(hide_password=False), signer)
    with sessions.begin() as session:
        head = audit.lock_head(session)
        if head.key_id is not None:
            signer.key_for(head.key_id)  # the key file must hold the key the log is signed with
            return signer
        key = signer.key_for(None)
        if session.get(AuditKey, key.key_id) is None:
            session.add(
                AuditKey(
                    key_id=key.key_id, public_key=signing.public_to_text(key.public), first_seq=head.seq + 1
                )
            )
        if head.seq > 0 and not signer.created:
            # The key file was there before: a log it signed does not lose its signatures and its head's
            # key by itself. Whoever stripped them must not get their rewrite sealed with the genuine
            # key; the next signed entry, not being a seal, shows the break to every verification.
            log.warning(
                "the audit log's head names no key though the key file %s already existed: not sealing "
                "its %d unsigned entries (were they rewritten?); 'facetrace audit verify' will report it",
                path,
                head.seq,
            )
        elif head.seq > 0:
            audit.append(
                session,
                STARTUP,
                Record(
                    action=SEAL_ACTION,
                    details={
                        "unsigned_entries": head.seq,
                        "their_head_hash": head.hash,
                        "key_id": key.key_id,
                        "public_key": signing.public_to_text(key.public),
                    },
                ),
            )
        head.key_id = key.key_id
    return signer


def rotate(session: Session, signer: KeyFileSigner, actor: Actor) -> AuditEntry:
    """Stage a new key and append the rotation entry, in the caller's transaction.

    The new key waits beside the key file; the caller commits, then calls :func:`install`: the
    new key only replaces the old once the entry that introduces it is in the log.
    """
    head = audit.lock_head(session)
    old = signer.key_for(head.key_id)
    new = signing.SigningKey.generate()
    staged = staged_path(signer.path)
    new.write(staged)
    entry = audit.append(
        session,
        actor,
        Record(
            action=ROTATE_ACTION,
            details={
                "old_key_id": old.key_id,
                "new_key_id": new.key_id,
                "new_public_key": signing.public_to_text(new.public),
                "new_key_signature": new.sign(rotation_message(old.key_id, new.key_id)),
            },
        ),
    )
    retired = session.get(AuditKey, old.key_id)
    if retired is not None:
        retired.last_seq = entry.id
    session.add(
        AuditKey(key_id=new.key_id, public_key=signing.public_to_text(new.public), first_seq=entry.id + 1)
    )
    head.key_id = new.key_id
    return entry


def install(signer: KeyFileSigner, new_key_id: str) -> None:
    """Put the committed rotation's key in place of the old one (which is gone for good)."""
    signer.key_for(new_key_id)
