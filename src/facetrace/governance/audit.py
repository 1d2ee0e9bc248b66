"""The audit log: append-only, hash-chained, signed, verifiable inside the database and outside it.

Each entry's hash is ``sha256(prev_hash + canonical JSON of the entry)``, where the
canonical JSON holds every field (the sequence number included) with sorted keys and
no spaces. Editing a row changes its hash; deleting, inserting or reordering rows
breaks a link or the run of sequence numbers; cutting off the tail leaves the log
ending before the head row says it does.

A chain alone only stops those who cannot recompute it, and anyone who can write the
database can. So each entry is also signed (Ed25519, over its sequence number and hash)
with a key kept outside the catalog (:mod:`facetrace.governance.audit_keys`): a forged,
edited or re-chained entry carries no valid signature of a trusted key. Cutting off the
tail and rewinding the head leaves a shorter log that is sound in itself; an *anchor* (a
signed head kept elsewhere) shows it: the log must still hold the anchored entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from facetrace.core.errors import AuditWriteError, FacetraceError
from facetrace.governance import signing
from facetrace.governance.audit_format import (
    FIELDS,
    GENESIS,
    ROTATE_ACTION,
    anchor_message,
    entry_hash,
    entry_message,
    timestamp,
)
from facetrace.governance.audit_trust import SignatureCheck
from facetrace.store.base import utcnow
from facetrace.store.governance_models import AuditEntry, AuditHead, AuditKey

__all__ = ["FIELDS", "GENESIS", "entry_hash"]

#: Where a catalog session finds the key that signs what it appends (see audit_keys.attach).
SIGNER = "facetrace.audit_signer"
#: The signers this process has loaded, by catalog URL: for sessions of another factory opened on
#: a catalog whose key is already loaded (one process, one key per catalog).
_SIGNERS: dict[str, Signer] = {}


class Signer(Protocol):
    def key_for(self, key_id: str | None) -> signing.SigningKey:
        """The signing key the head names (reloading the key file if it was rotated meanwhile)."""
        ...


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: the user's name, roles and unit as the audit log records them."""

    user_id: int
    name: str
    roles: frozenset[str]
    unit: str | None
    bootstrap: bool = False


@dataclass(slots=True)
class Record:
    """What an action puts in the log, besides who did it and when."""

    action: str
    outcome: str = "done"
    case_ref: str | None = None
    offence: str | None = None
    purpose: str | None = None
    authorisation_ref: str | None = None
    probe_sha256: str | None = None
    result_count: int | None = None
    result_face_ids: list[int] | None = None
    details: dict[str, Any] | None = field(default=None)


def entry_dict(entry: AuditEntry) -> dict[str, Any]:
    """The entry as plain JSON values, in the form that is hashed and exported."""
    values = {name: getattr(entry, name) for name in FIELDS}
    values["at"] = timestamp(entry.at)
    return values


def register_signer(url: str, signer: Signer) -> None:
    _SIGNERS[url] = signer


def signer_of(session: Session) -> Signer:
    """The signer of the session's factory, else the one loaded for its catalog in this process."""
    signer: Signer | None = session.info.get(SIGNER)
    if signer is None:
        bind = session.get_bind()
        engine = bind if isinstance(bind, Engine) else bind.engine
        signer = _SIGNERS.get(engine.url.render_as_string(hide_password=False))
    if signer is None:
        raise AuditWriteError("no audit signing key is loaded for this catalog: nothing was recorded")
    return signer


def lock_head(session: Session, *, advance: bool = False) -> AuditHead:
    """The head row, locked for the rest of the caller's transaction; ``advance``: with its sequence
    number moved on to the entry about to be appended.

    The row is updated before it is read: that takes the write lock (SQLite) or the row lock
    (PostgreSQL) at once, so whoever appends, seals or rotates queues up behind the others.
    """
    session.execute(
        update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + (1 if advance else 0))
    )
    head = session.get(AuditHead, 1, populate_existing=True)
    if head is None:
        raise AuditWriteError("the audit log has no head row: the database was not created by Facetrace")
    return head


def append(session: Session, actor: Actor, record: Record) -> AuditEntry:
    """Add an entry at the end of the chain, in the caller's transaction.

    The head row is updated before it is read: that takes the write lock (SQLite) or
    the row lock (PostgreSQL) at once, so concurrent appenders queue up and each
    links to the entry before it.
    """
    signer = signer_of(session)
    head = lock_head(session, advance=True)
    key = signer.key_for(head.key_id)
    entry = AuditEntry(
        id=head.seq,
        # Microseconds, UTC: exactly what every database stores and gives back.
        at=utcnow(),
        user_name=actor.name,
        roles=",".join(sorted(actor.roles)),
        unit=actor.unit,
        bootstrap=actor.bootstrap,
        **asdict(record),
        prev_hash=head.hash,
        hash="",
    )
    entry.hash = entry_hash(entry_dict(entry))
    entry.key_id, entry.signature = key.key_id, key.sign(entry_message(entry.id, entry.hash))
    head.hash = entry.hash
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True, slots=True)
class ChainReport:
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    first_broken: int | None = None  # sequence number (or position) of the first bad entry
    problem: str | None = None
    signed: int = 0  # entries whose signature was checked
    trusted_keys: tuple[str, ...] = ()  # the key ids the signatures were checked against
    anchor_seq: int | None = None  # the anchored entry the log was found to still hold
    note: str | None = None  # what the result does not prove


def check_chain(
    entries: Iterable[dict[str, Any]],
    *,
    start_prev: str = GENESIS,
    start_seq: int = 1,
    signatures: SignatureCheck | None = None,
    anchor: dict[str, Any] | None = None,
) -> ChainReport:
    """Walk entries in order; report the first that does not follow from the one before, whose
    signature fails (``signatures``), or that differs from the entry ``anchor`` pins."""
    prev, expected_seq, count = start_prev, start_seq, 0
    for values in entries:
        count += 1
        seq = values["id"]
        if seq != expected_seq:
            kind = "missing" if seq > expected_seq else "out of order or inserted"
            return ChainReport(False, count, seq, prev, expected_seq, f"entry {expected_seq} {kind}")
        if values["prev_hash"] != prev:
            return ChainReport(False, count, seq, prev, seq, "does not link to the entry before it")
        if entry_hash(values) != values["hash"]:
            return ChainReport(False, count, seq, prev, seq, "its content was changed")
        if anchor is not None and seq == anchor["seq"] and values["hash"] != anchor["hash"]:
            problem = f"it is not the entry the anchor of {anchor['at']} pins (another hash)"
            return ChainReport(False, count, seq, prev, seq, problem)
        bad_signature = signatures.check(values) if signatures is not None else None
        if bad_signature is not None:
            return ChainReport(False, count, seq, prev, seq, bad_signature)
        prev, expected_seq = values["hash"], seq + 1
    return ChainReport(True, count, expected_seq - 1, prev)


def _entries(session: Session, first: int = 1, last: int | None = None) -> Iterator[dict[str, Any]]:
    query = select(AuditEntry).where(AuditEntry.id >= first).order_by(AuditEntry.id)
    if last is not None:
        query = query.where(AuditEntry.id <= last)
    for entry in session.scalars(query.execution_options(yield_per=1000)):
        yield entry_dict(entry)


def _rotations(session: Session) -> list[dict[str, Any]]:
    query = select(AuditEntry).where(AuditEntry.action == ROTATE_ACTION).order_by(AuditEntry.id)
    return [entry_dict(entry) for entry in session.scalars(query)]


def _keys(session: Session) -> list[AuditKey]:
    return list(session.scalars(select(AuditKey).order_by(AuditKey.created_at, AuditKey.key_id)))


def _conclude(
    report: ChainReport, checker: SignatureCheck, anchor: dict[str, Any] | None, note: str | None = None
) -> ChainReport:
    """Add what the signatures and the anchor say to a report whose chain holds so far."""
    if report.ok and anchor is not None and report.head_seq < anchor["seq"]:
        report = replace(
            report,
            ok=False,
            first_broken=report.head_seq + 1,
            problem=f"the log ends at entry {report.head_seq}, but the anchor of {anchor['at']} "
            f"pins entry {anchor['seq']}: entries were cut off",
        )
    if report.ok and report.entries and not checker.signed:
        report = replace(report, ok=False, first_broken=1, problem="no entry is signed")
    return replace(
        report,
        signed=checker.signed,
        trusted_keys=tuple(sorted(checker.trusted)),
        anchor_seq=anchor["seq"] if anchor is not None and report.ok else None,
        note=note,
    )


def verify(
    session: Session,
    public_keys: list[Ed25519PublicKey] | None = None,
    anchor: dict[str, Any] | None = None,
) -> ChainReport:
    """Check the whole chain in the database, every signature, and that it ends where the head
    row says (and no earlier than ``anchor``).

    ``public_keys``: the keys to trust; by default the key of the key file this process signs
    with (never a key the catalog lists: whoever writes the database could have put it there).
    """
    if public_keys is None:
        public_keys = [signer_of(session).key_for(None).public]
    keys = {row.key_id: row.public_key for row in _keys(session)}
    checker = SignatureCheck(keys, public_keys, _rotations(session))
    head = session.get(AuditHead, 1)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    if anchor is not None and (problem := checker.check_anchor(anchor)) is not None:
        return _conclude(ChainReport(False, 0, head_seq, head_hash, None, problem), checker, None)
    report = check_chain(_entries(session), signatures=checker, anchor=anchor)
    if report.ok and (report.head_seq, report.head_hash) != (head_seq, head_hash):
        report = ChainReport(
            False,
            report.entries,
            report.head_seq,
            report.head_hash,
            min(report.head_seq, head_seq) + 1,
            f"the log ends at entry {report.head_seq} but the head records entry {head_seq}",
        )
    return _conclude(report, checker, anchor)


def make_anchor(session: Session) -> dict[str, Any]:
    """The head of the log, signed: a small file to keep elsewhere and give to ``verify`` later."""
    head = session.get(AuditHead, 1)
    key = signer_of(session).key_for(head.key_id if head else None)
    anchor: dict[str, Any] = {
        "format": "facetrace-audit-anchor/1",
        "seq": head.seq if head else 0,
        "hash": head.hash if head else GENESIS,
        "at": timestamp(utcnow()),
        "key_id": key.key_id,
        "public_key": signing.public_to_text(key.public),
    }
    anchor["signature"] = key.sign(anchor_message(anchor))
    return anchor


def public_keys(session: Session) -> list[dict[str, Any]]:
    """Every public key the catalog lists, with the entries each signed (a list to publish, not
    to trust: verification trusts only keys given from outside and those linked to them)."""
    return [
        {
            "key_id": row.key_id,
            "public_key": row.public_key,
            "created_at": timestamp(row.created_at),
            "first_seq": row.first_seq,
            "last_seq": row.last_seq,
        }
        for row in _keys(session)
    ]


def export(
    session: Session, first: int = 1, last: int | None = None, unit: str | None = None
) -> dict[str, Any]:
    """A range of entries (``unit``: only that unit's) with the link into it, the head hash, the
    public keys and the rotation entries that link them, so it can be checked with no secret."""
    before = session.get(AuditEntry, first - 1) if first > 1 else None
    head = session.get(AuditHead, 1)
    entries = [e for e in _entries(session, first, last) if unit is None or e["unit"] == unit]
    return {
        "format": "facetrace-audit-export/2",
        "exported_at": timestamp(utcnow()),
        "first": first,
        "last": entries[-1]["id"] if entries else None,
        "unit": unit,
        "prev_hash": before.hash if before else GENESIS,
        "head": {"seq": head.seq if head else 0, "hash": head.hash if head else GENESIS},
        "keys": public_keys(session),
        "rotations": _rotations(session),
        "entries": entries,
    }


UNTRUSTED_KEYS_NOTE = (
    "no public key was given: the export's own keys were used, which shows it is whole and "
    "consistent but not who signed it; check it with the published public key"
)


def check_export(
    document: dict[str, Any],
    public_keys: list[Ed25519PublicKey] | None = None,
    anchor: dict[str, Any] | None = None,
) -> ChainReport:
    """Verify an exported range on its own: hashes, links (where rows are consecutive), signatures
    against ``public_keys`` (the published key; the export's own keys if none are given, with a
    note saying what that does not prove) and, given ``anchor``, that the range reaches it."""
    note = None
    material = {key["key_id"]: key["public_key"] for key in document.get("keys", [])}
    if public_keys is None:
        public_keys = [p for p in map(signing.public_from_text, material.values()) if p is not None]
        note = UNTRUSTED_KEYS_NOTE
    checker = SignatureCheck(material, public_keys, document.get("rotations", []))
    entries = document["entries"]
    if anchor is not None and (problem := checker.check_anchor(anchor)) is not None:
        return _conclude(ChainReport(False, 0, 0, GENESIS, None, problem), checker, None, note)
    if document.get("unit") is None:
        report = check_chain(
            entries,
            start_prev=document["prev_hash"],
            start_seq=document["first"],
            signatures=checker,
            anchor=anchor,
        )
        return _conclude(report, checker, anchor, note)
    # A unit's extract has gaps: each entry's own hash and signature still prove its content.
    for position, values in enumerate(entries, start=1):
        problem = "its content was changed" if entry_hash(values) != values["hash"] else None
        problem = problem or checker.check(values, consecutive=False)
        if problem is not None:
            return _conclude(
                ChainReport(False, position, values["id"], "", values["id"], problem), checker, None, note
            )
    last = entries[-1] if entries else None
    report = ChainReport(True, len(entries), last["id"] if last else 0, last["hash"] if last else GENESIS)
    return _conclude(report, checker, anchor, note)


def read_anchor(document: dict[str, Any]) -> dict[str, Any]:
    """An anchor file's content, checked for shape (its signature is checked by ``verify``)."""
    if document.get("format") != "facetrace-audit-anchor/1" or not all(
        isinstance(document.get(name), kind)
        for name, kind in (("seq", int), ("hash", str), ("at", str), ("key_id", str), ("signature", str))
    ):
        raise FacetraceError("not a Facetrace audit anchor (facetrace-audit-anchor/1)")
    return document
