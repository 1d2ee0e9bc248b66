"""Erasure and purges: what goes (a dry run), then deleting it for real, with a certificate.

What a scope selects:
* face ids — those faces (the image record stays: other people may be in it);
* image or page URLs / paths — every image seen there, whole (all its faces and sightings),
  and its near-duplicates (resized or re-encoded copies of the photo seen elsewhere);
* sources, or every source of a jurisdiction — their sightings; an image is deleted whole
  when no other source has seen it. The sources are then blocked: ingest refuses them,
  and after a jurisdiction purge it refuses any new source of that jurisdiction too.

Deleting is physical: catalog rows (with each face's crop) go in one transaction (SQLite overwrites freed
content, ``secure_delete``, and its write-ahead log is truncated afterwards), and
every index file that held a deleted vector is rewritten without it. The certificate
records what, when and who, with counts and digests of the deleted ids, never the
data itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from facetrace import near_duplicates
from facetrace.atomic import atomic_write_text
from facetrace.catalog import repository
from facetrace.catalog.models import Face, FaceCrop, Image, Sighting, Source, utcnow
from facetrace.config import Settings
from facetrace.errors import FacetraceError
from facetrace.gallery import Gallery
from facetrace.governance import audit
from facetrace.governance.audit import Actor, Record
from facetrace.governance.models import DoNotCollect


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


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    ordered = sorted(ids)
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


def _sources(session: Session, scope: ErasureScope) -> list[Source]:
    conditions = [Source.name.in_(scope.sources)] if scope.sources else []
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


def _digest(values: list[Any]) -> str:
    return hashlib.sha256(json.dumps(values, separators=(",", ":")).encode()).hexdigest()


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
    """Delete what ``erasure`` lists, rewrite the indexes, and return the deletion certificate."""
    executed_at = utcnow()
    reference = f"ERASURE-{executed_at:%Y%m%d-%H%M%S-%f}"
    with Gallery.write_lock(settings):
        with sessions.begin() as session:
            image_sha256 = sorted(
                session.scalars(select(Image.sha256).where(Image.id.in_(erasure.image_ids)))
            )
            models = _model_dims(session, erasure.face_ids) if erasure.face_ids else {}
            session.execute(delete(Sighting).where(Sighting.id.in_(erasure.sighting_ids)))
            session.execute(delete(FaceCrop).where(FaceCrop.face_id.in_(erasure.face_ids)))
            session.execute(delete(Face).where(Face.id.in_(erasure.face_ids)))
            session.execute(delete(Image).where(Image.id.in_(erasure.image_ids)))
            if erasure.scope.jurisdiction:  # no new source of that country either
                session.add(DoNotCollect(kind="jurisdiction", value=erasure.scope.jurisdiction.upper()))
            session.execute(
                update(Source)
                .where(Source.name.in_(erasure.blocked_sources))
                .values(blocked_at=executed_at, blocked_reason=f"{reason} ({reference})")
            )
            certificate = {
                "certificate": reference,
                "executed_at": executed_at.isoformat(),
                "executed_and_approved_by": {
                    "user": actor.name,
                    "roles": sorted(actor.roles),
                    "unit": actor.unit,
                },
                "reason": reason,
                "scope": asdict(erasure.scope),
                "counts": erasure.counts(),
                "blocked_sources": erasure.blocked_sources,
                "sha256_of_deleted_face_ids": _digest(erasure.face_ids),
                "sha256_of_deleted_image_sha256s": _digest(image_sha256),
                "index_files_rewritten": sorted(models),
            }
            entry = audit.append(
                session,
                actor,
                Record(
                    action="data.erase",
                    purpose=reason,
                    result_count=len(erasure.face_ids),
                    details={k: v for k, v in certificate.items() if k != "executed_and_approved_by"},
                ),
            )
            certificate["audit_entry"] = {"seq": entry.id, "hash": entry.hash}
        for model_id, dim in models.items():
            gallery = Gallery.open(settings, model_id, dim, sessions)  # reconciling drops the deleted vectors
            gallery.index.save()
        _scrub_sqlite(sessions)
    path = certificate_path(settings, reference)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(certificate, indent=2))
    certificate["file"] = str(path)
    return certificate


def _scrub_sqlite(sessions: sessionmaker[Session]) -> None:
    """Empty SQLite's write-ahead log, which still holds copies of the pages before the deletion."""
    with sessions() as session:
        if session.bind is not None and session.bind.dialect.name == "sqlite":
            session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
