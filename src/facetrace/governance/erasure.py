"""Erasure and purges: what goes (a dry run), then deleting it for real, with a certificate.

What a scope selects:
* face ids — those faces (the image record stays: other people may be in it); an image left with
  no face loses its sightings too (where it was, its page title and alt text), keeping only the
  record of its bytes, so that the same file is not analysed again;
* image or page URLs / paths — every image seen there, whole (all its faces and sightings),
  and its near-duplicates (resized or re-encoded copies of the photo seen elsewhere);
* sources, or every source of a jurisdiction — their sightings; an image is deleted whole
  when no other source has seen it. The sources are then blocked: ingest refuses them,
  and after a jurisdiction purge it refuses any new source of that jurisdiction too.

Deleting is physical: catalog rows (with each face's crop) go in one transaction (SQLite overwrites freed
content, ``secure_delete``, and its write-ahead log is truncated afterwards), and
every index file that held a deleted vector is rewritten without it. The certificate
records what, when and who, with counts, and names what was erased by keyed hash only
(:mod:`facetrace.governance.keyed_hashes`): each URL or path, image sha256 and face id, so
that the DPO can tell whether a given URL was erased (``facetrace erasure check``) while the
certificate and its audit entry hold nothing that identifies the person.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from facetrace.catalog import repository
from facetrace.core.atomic import atomic_write_text
from facetrace.core.config import Settings
from facetrace.core.errors import FacetraceError
from facetrace.gallery import near_duplicates
from facetrace.gallery.gallery import Gallery
from facetrace.governance import audit
from facetrace.governance.audit import Actor, Record
from facetrace.governance.keyed_hashes import ALGORITHM, ErasureKey
from facetrace.store.base import utcnow
from facetrace.store.catalog_models import CrawlItem, Face, FaceCrop, Image, Sighting, Source
from facetrace.store.governance_models import AuditEntry, DoNotCollect


@dataclass(frozen=True, slots=True)
class ErasureScope:
    face_ids: tuple[int, ...] = ()
    locations: tuple[str, ...] = ()  # image path/URL, or the URL of a page images were on
    sources: tuple[str, ...] = ()
    jurisdiction: str | None = None
    expired: bool = False  # sightings past their source's retention period
    gone_from: str | None = None  # a source's sightings that a recrawl found gone

    def is_empty(self) -> bool:
        return not (
            self.face_ids
            or self.locations
            or self.sources
            or self.jurisdiction
            or self.expired
            or self.gone_from
        )


@dataclass(slots=True)
class ErasurePlan:
    """What executing the scope deletes (and, for sources, blocks)."""

    scope: ErasureScope
    face_ids: list[int] = field(default_factory=list)
    image_ids: list[int] = field(default_factory=list)
    sighting_ids: list[int] = field(default_factory=list)
    blocked_sources: list[str] = field(default_factory=list)
    #: For review: where the deleted images were seen, and where the images of deleted faces were.
    locations: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "faces": len(self.face_ids),
            "images": len(self.image_ids),
            "sightings": len(self.sighting_ids),
            "sources_blocked": len(self.blocked_sources),
        }


#: Ids per ``IN (...)`` list: SQLite allows at most 32,766 bound parameters per statement.
CHUNK = 10_000


def _chunks(values: Iterable[Any]) -> Iterator[list[Any]]:
    ordered = sorted(values)
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


def _ids_where_in(session: Session, column: Any, key: Any, values: Iterable[int]) -> set[int]:
    """``SELECT column WHERE key IN values``, for any number of values."""
    return {
        int(i) for chunk in _chunks(values) for i in session.scalars(select(column).where(key.in_(chunk)))
    }


def _expired_sightings(session: Session, now: datetime) -> set[int]:
    """Sightings older than their source's retention period (date arithmetic in Python: portable SQL)."""
    expired: set[int] = set()
    for source in session.scalars(select(Source).where(Source.retention_days.is_not(None))):
        cutoff = repository.retention_cutoff(source, now)
        query = select(Sighting.id).where(Sighting.source_id == source.id, Sighting.first_seen < cutoff)
        expired |= {int(i) for i in session.scalars(query)}
    return expired


def _images_only_seen_in(session: Session, sightings: set[int]) -> set[int]:
    """Images all of whose sightings are among ``sightings``: deleting those leaves them unseen."""
    touched = _ids_where_in(session, Sighting.image_id, Sighting.id, sightings)
    seen_at = _ids_where_in(session, Sighting.id, Sighting.image_id, touched)
    still_seen = _ids_where_in(session, Sighting.image_id, Sighting.id, seen_at - sightings)
    return touched - still_seen


def _images_left_without_faces(session: Session, faces: set[int]) -> set[int]:
    """Images all of whose faces are among ``faces``: deleting those leaves them with none."""
    touched = _ids_where_in(session, Face.image_id, Face.id, faces)
    their_faces = _ids_where_in(session, Face.id, Face.image_id, touched)
    keeping_one = _ids_where_in(session, Face.image_id, Face.id, their_faces - faces)
    return touched - keeping_one


def _sources(session: Session, scope: ErasureScope) -> list[Source]:
    conditions: list[ColumnElement[bool]] = [Source.name.in_(scope.sources)] if scope.sources else []
    if scope.jurisdiction:
        conditions.append(Source.jurisdiction == scope.jurisdiction.upper())
    sources = list(session.scalars(select(Source).where(or_(*conditions)))) if conditions else []
    unknown = set(scope.sources) - {s.name for s in sources}
    if unknown:
        raise FacetraceError(f"no source named {', '.join(sorted(unknown))}")
    return sources


def plan(session: Session, scope: ErasureScope) -> ErasurePlan:
    """The dry run: resolve ``scope`` to the rows it would delete."""
    if scope.is_empty():
        raise FacetraceError("say what to erase: face ids, image/page URLs, sources or a jurisdiction")
    images: set[int] = set()
    if scope.locations:
        seen_there = {int(i) for i in session.scalars(repository.images_seen_at(scope.locations))}
        images |= near_duplicates.copies_of(session, seen_there)
    sources = _sources(session, scope)
    sightings = {
        int(i)
        for i in session.scalars(select(Sighting.id).where(Sighting.source_id.in_([s.id for s in sources])))
    }
    if scope.expired:
        sightings |= _expired_sightings(session, utcnow())
    if scope.gone_from:
        gone = (
            select(Sighting.id)
            .join(Source)
            .where(Source.name == scope.gone_from, Sighting.gone_at.is_not(None))
        )
        sightings |= {int(i) for i in session.scalars(gone)}
    images |= _images_only_seen_in(session, sightings)
    sightings |= _ids_where_in(session, Sighting.id, Sighting.image_id, images)
    faces = set(scope.face_ids)
    found = _ids_where_in(session, Face.id, Face.id, faces)
    if found != faces:
        raise FacetraceError(f"no face with id {', '.join(map(str, sorted(faces - found)))}")
    faces |= _ids_where_in(session, Face.id, Face.image_id, images)
    # Where an image left with no face was seen, its page title and alt text speak of the person.
    sightings |= _ids_where_in(
        session, Sighting.id, Sighting.image_id, _images_left_without_faces(session, faces) - images
    )
    # For review: where the deleted images were seen, and the images the deleted faces are in.
    reviewed = sightings | _ids_where_in(
        session, Sighting.id, Sighting.image_id, _ids_where_in(session, Face.image_id, Face.id, faces)
    )
    locations = {
        location
        for chunk in _chunks(reviewed)
        for location in session.scalars(select(Sighting.location).where(Sighting.id.in_(chunk)))
    }
    return ErasurePlan(
        scope=scope,
        face_ids=sorted(faces),
        image_ids=sorted(images),
        sighting_ids=sorted(sightings),
        blocked_sources=sorted(s.name for s in sources),
        locations=sorted(locations),
    )


def certificate_path(settings: Settings, reference: str) -> Path:
    """Where the deletion certificate ``reference`` is written."""
    return settings.data_dir / "certificates" / f"{reference}.json"


#: The audit action of an erasure.
ERASE = "data.erase"

#: The keyed hashes an audit entry lists in full; past this (a jurisdiction's purge) it holds their
#: digest, and the certificate the hashes themselves.
AUDIT_LISTED_HASHES = 10_000

HOW_TO_CHECK = (
    "Each entry of 'erased' is the {algorithm} of a value, keyed with this deployment's erasure key "
    "(key id {key_id}): 'locations' are the image URLs or file paths and the page URLs where the "
    "deleted images were seen; 'face_removed_at' are those where an image kept by the gallery (other "
    "faces in it) was seen, from which a face was deleted; 'image_sha256' the SHA-256 (hex) of the "
    "deleted images' bytes; 'face_ids' the deleted face ids (decimal). To check a URL, compute its "
    "{algorithm} (UTF-8, exactly as collected) with the key and look for it, or ask the data-protection "
    "officer to run 'facetrace erasure check {reference} URL'."
)


def _digest(values: Any) -> str:
    return hashlib.sha256(json.dumps(values, separators=(",", ":"), sort_keys=True).encode()).hexdigest()


def _places(session: Session, image_ids: Iterable[int], deleted: set[int]) -> tuple[set[str], set[str]]:
    """The locations and page URLs where the images ``image_ids`` were seen: those of the ``deleted``
    sightings, and those of the others."""
    gone: set[str] = set()
    kept: set[str] = set()
    for chunk in _chunks(image_ids):
        rows = session.execute(
            select(Sighting.id, Sighting.location, Sighting.page_url).where(Sighting.image_id.in_(chunk))
        )
        for sighting_id, location, page_url in rows:
            (gone if sighting_id in deleted else kept).update(p for p in (location, page_url) if p)
    return gone, kept


def _erased(session: Session, erasure: ErasurePlan, key: ErasureKey) -> tuple[dict[str, Any], set[str]]:
    """What ``erasure`` deletes, each value by its keyed hash (read before the deletion), and the
    places (in clear, not to be kept) where the deleted images were seen."""
    deleted = set(erasure.sighting_ids)
    touched = _ids_where_in(session, Sighting.image_id, Sighting.id, deleted)
    locations = _places(session, touched, deleted)[0] | set(erasure.scope.locations)
    face_images = _ids_where_in(session, Face.image_id, Face.id, erasure.face_ids) - set(erasure.image_ids)
    face_removed_at = _places(session, face_images, deleted)[1]
    image_sha256 = [
        sha
        for chunk in _chunks(erasure.image_ids)
        for sha in session.scalars(select(Image.sha256).where(Image.id.in_(chunk)))
    ]
    record = {
        "keyed_hash": ALGORITHM,
        "key_id": key.id,
        "locations": key.hashes(locations),
        "face_removed_at": key.hashes(face_removed_at - locations),
        "image_sha256": key.hashes(image_sha256),
        "face_ids": key.hashes(erasure.face_ids),
    }
    return record, locations


def audited_hashes(erased: dict[str, Any]) -> dict[str, Any]:
    """The erased hashes as the audit entry keeps them: in full, or (a very large erasure) their digest."""
    listed = sum(len(v) for v in erased.values() if isinstance(v, list))
    if listed <= AUDIT_LISTED_HASHES:
        return erased
    return {k: v for k, v in erased.items() if not isinstance(v, list)} | {"hashes": listed}


def _scope_record(scope: ErasureScope) -> dict[str, Any]:
    """The scope as records keep it: how many faces and places were named, never which."""
    return asdict(scope) | {"face_ids": len(scope.face_ids), "locations": len(scope.locations)}


def _model_dims(session: Session, face_ids: list[int]) -> dict[str, int]:
    """The models (and their dimensions) whose vectors the deletion touches."""
    dims: dict[str, int] = {}
    for chunk in _chunks(face_ids):
        rows = session.execute(
            select(Face.model_id, func.max(func.length(Face.embedding)))
            .where(Face.id.in_(chunk))
            .group_by(Face.model_id)
        )
        dims.update({model_id: int(length) // 4 for model_id, length in rows})
    return dims


def execute(
    settings: Settings,
    sessions: sessionmaker[Session],
    actor: Actor,
    erasure: ErasurePlan,
    *,
    reason: str,
) -> dict[str, Any]:
    """Delete what ``erasure``'s scope selects, rewrite the indexes, and return the certificate.

    Ingests keep storing while an erasure is asked for, so ``erasure`` (the dry run) is made
    again from its scope once the write lock is held: what was stored since is deleted too, and
    an ingest's images read before the deletion and stored after it are dropped by that ingest
    (:class:`ErasureWatch`). The certificate's time is that of the deletion, in its transaction."""
    key = ErasureKey.of(settings)
    with Gallery.write_lock(settings):
        with sessions.begin() as session:
            erasure = plan(session, erasure.scope)
            erased, places = _erased(session, erasure, key)
            models = _model_dims(session, erasure.face_ids) if erasure.face_ids else {}
            session.execute(delete(Sighting).where(Sighting.id.in_(erasure.sighting_ids)))
            session.execute(delete(FaceCrop).where(FaceCrop.face_id.in_(erasure.face_ids)))
            session.execute(delete(Face).where(Face.id.in_(erasure.face_ids)))
            session.execute(delete(Image).where(Image.id.in_(erasure.image_ids)))
            for chunk in _chunks(places):  # an interrupted crawl's frontier names them too
                session.execute(delete(CrawlItem).where(CrawlItem.url.in_(chunk)))
            if erasure.scope.jurisdiction:  # no new source of that country either
                session.add(DoNotCollect(kind="jurisdiction", value=erasure.scope.jurisdiction.upper()))
            executed_at = utcnow()  # the deletion's time: it commits with this transaction
            reference = f"ERASURE-{executed_at:%Y%m%d-%H%M%S-%f}"
            session.execute(
                update(Source)
                .where(Source.name.in_(erasure.blocked_sources))
                .values(blocked_at=executed_at, blocked_reason=f"{reason} ({reference})")
            )
            certificate: dict[str, Any] = {
                "certificate": reference,
                "executed_at": executed_at.isoformat(),
                "executed_and_approved_by": {
                    "user": actor.name,
                    "roles": sorted(actor.roles),
                    "unit": actor.unit,
                },
                "reason": reason,
                "scope": _scope_record(erasure.scope),
                "counts": erasure.counts(),
                "blocked_sources": erasure.blocked_sources,
                "erased": erased,
                "sha256_of_erased": _digest(erased),
                "how_to_check": HOW_TO_CHECK.format(algorithm=ALGORITHM, key_id=key.id, reference=reference),
                "index_files_rewritten": sorted(models),
            }
            entry = audit.append(
                session,
                actor,
                Record(
                    action=ERASE,
                    purpose=reason,
                    result_count=len(erasure.face_ids),
                    details={
                        k: audited_hashes(v) if k == "erased" else v
                        for k, v in certificate.items()
                        if k not in ("executed_and_approved_by", "how_to_check")
                    },
                ),
            )
            certificate["audit_entry"] = {"seq": entry.id, "hash": entry.hash}
        for model_id, dim in models.items():
            gallery = Gallery.open(settings, model_id, dim, sessions)  # reconciling drops the deleted vectors
            gallery.index.save()
        scrub_sqlite(sessions)
    path = certificate_path(settings, reference)
    atomic_write_text(path, json.dumps(certificate, indent=2))
    certificate["file"] = str(path)
    return certificate


def scrub_sqlite(sessions: sessionmaker[Session]) -> None:
    """Empty SQLite's write-ahead log, which still holds copies of the pages before the deletion."""
    with sessions() as session:
        if session.bind is not None and session.bind.dialect.name == "sqlite":
            session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))


class ErasureWatch:
    """The erasures committed since an ingest began, for the images it read before them and
    stores after them: an image seen at an erased place (its URL or page), or whose bytes an
    erasure deleted, is dropped. Checked under the write lock, which erasures commit under."""

    def __init__(self, settings: Settings, session: Session) -> None:
        self._settings = settings
        self._seen = session.scalar(select(func.max(AuditEntry.id)).where(AuditEntry.action == ERASE)) or 0
        self._key: ErasureKey | None = None
        self._erased: set[str] = set()

    def catch_up(self, session: Session) -> None:
        """Take in the erasures committed since the last call."""
        entries = session.execute(
            select(AuditEntry.id, AuditEntry.details)
            .where(AuditEntry.action == ERASE, AuditEntry.id > self._seen)
            .order_by(AuditEntry.id)
        ).all()
        for seq, details in entries:
            erased = (details or {}).get("erased") or {}
            if "hashes" in erased:  # too many for the audit entry: the certificate lists them
                certificate = certificate_path(self._settings, details["certificate"]).read_text()
                erased = json.loads(certificate)["erased"]
            self._erased.update(*(erased.get(kind, ()) for kind in ("locations", "image_sha256")))
            self._seen = seq
        if self._erased and self._key is None:
            self._key = ErasureKey.of(self._settings)

    def covers(self, sha256: str, *places: str | None) -> bool:
        """Whether an erasure since the ingest began deleted these bytes or what was seen there."""
        if self._key is None:
            return False
        return any(v is not None and self._key.hash(v) in self._erased for v in (sha256, *places))
