"""The audit log: append-only, hash-chained, verifiable inside the database and outside it.

Each entry's hash is ``sha256(prev_hash + canonical JSON of the entry)``, where the
canonical JSON holds every field (the sequence number included) with sorted keys and
no spaces. Editing a row changes its hash; deleting, inserting or reordering rows
breaks a link or the run of sequence numbers; cutting off the tail leaves the log
ending before the head row says it does. An export carries the head hash, so an
outside body that kept it can later check that nothing before it was rewritten.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from facetrace.catalog.models import utcnow
from facetrace.errors import AuditWriteError
from facetrace.governance.models import AuditEntry, AuditHead

GENESIS = "0" * 64
#: The fields of an entry, in the order exports list them; all of them are hashed except ``hash``.
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
)


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


def _timestamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_dict(entry: AuditEntry) -> dict[str, Any]:
    """The entry as plain JSON values, in the form that is hashed and exported."""
    values = {name: getattr(entry, name) for name in FIELDS}
    values["at"] = _timestamp(entry.at)
    return values


def entry_hash(values: dict[str, Any]) -> str:
    """sha256 over the previous hash and the canonical JSON of every field but ``hash``."""
    body = {name: values[name] for name in FIELDS if name != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((values["prev_hash"] + canonical).encode()).hexdigest()


def append(session: Session, actor: Actor, record: Record) -> AuditEntry:
    """Add an entry at the end of the chain, in the caller's transaction.

    The head row is updated before it is read: that takes the write lock (SQLite) or
    the row lock (PostgreSQL) at once, so concurrent appenders queue up and each
    links to the entry before it.
    """
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1))
    head = session.get(AuditHead, 1, populate_existing=True)
    if head is None:
        raise AuditWriteError("the audit log has no head row: the database was not created by Facetrace")
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


def check_chain(
    entries: Iterable[dict[str, Any]], *, start_prev: str = GENESIS, start_seq: int = 1
) -> ChainReport:
    """Walk entries in order; report the first that does not follow from the one before."""
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
        prev, expected_seq = values["hash"], seq + 1
    return ChainReport(True, count, expected_seq - 1, prev)


def _entries(session: Session, first: int = 1, last: int | None = None) -> Iterator[dict[str, Any]]:
    query = select(AuditEntry).where(AuditEntry.id >= first).order_by(AuditEntry.id)
    if last is not None:
        query = query.where(AuditEntry.id <= last)
    for entry in session.scalars(query.execution_options(yield_per=1000)):
        yield entry_dict(entry)


def verify(session: Session) -> ChainReport:
    """Check the whole chain in the database, and that it ends where the head row says."""
    report = check_chain(_entries(session))
    if not report.ok:
        return report
    head = session.get(AuditHead, 1)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    if (report.head_seq, report.head_hash) != (head_seq, head_hash):
        return ChainReport(
            False,
            report.entries,
            report.head_seq,
            report.head_hash,
            min(report.head_seq, head_seq) + 1,
            f"the log ends at entry {report.head_seq} but the head records entry {head_seq}",
        )
    return report


def export(session: Session, first: int = 1, last: int | None = None, unit: str | None = None) -> dict:
    """A range of entries (``unit``: only that unit's) with the link into it and the head hash."""
    before = session.get(AuditEntry, first - 1) if first > 1 else None
    head = session.get(AuditHead, 1)
    entries = [e for e in _entries(session, first, last) if unit is None or e["unit"] == unit]
    return {
        "format": "facetrace-audit-export/1",
        "exported_at": _timestamp(utcnow()),
        "first": first,
        "last": entries[-1]["id"] if entries else None,
        "unit": unit,
        "prev_hash": before.hash if before else GENESIS,
        "head": {"seq": head.seq if head else 0, "hash": head.hash if head else GENESIS},
        "entries": entries,
    }


def check_export(document: dict) -> ChainReport:
    """Verify an exported range on its own: hashes and links (links only where rows are consecutive)."""
    entries = document["entries"]
    if document.get("unit") is None:
        return check_chain(entries, start_prev=document["prev_hash"], start_seq=document["first"])
    # A unit's extract has gaps: each entry's own hash still proves its content.
    for position, values in enumerate(entries, start=1):
        if entry_hash(values) != values["hash"]:
            return ChainReport(False, position, values["id"], "", values["id"], "its content was changed")
    last = entries[-1] if entries else None
    return ChainReport(True, len(entries), last["id"] if last else 0, last["hash"] if last else GENESIS)
