"""Catalog reads and writes, in portable SQL (SQLite and PostgreSQL alike)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Row, Select, exists, func, or_, select, true, update
from sqlalchemy.orm import Session, selectinload

from facetrace.core.errors import FacetraceError
from facetrace.store.base import utcnow
from facetrace.store.catalog_models import Face, FaceCrop, Image, Sighting, Source
from facetrace.vision.analyzer import ImageAnalysis


@dataclass(frozen=True, slots=True)
class Place:
    """Where an image was seen: a file path or image URL, and the page it was on."""

    location: str
    page_url: str | None = None
    page_title: str | None = None
    alt_text: str | None = None
    http_last_modified: str | None = None
    http_etag: str | None = None


def get_or_create_source(
    session: Session,
    name: str,
    *,
    jurisdiction: str | None = None,
    legal_basis: str | None = None,
    retention_days: int | None = None,
    kind: str = "local",
) -> Source:
    """The source called ``name``; created on first use, and never silently redefined."""
    source = session.scalar(select(Source).where(Source.name == name))
    if source is None:
        source = Source(
            name=name,
            kind=kind,
            jurisdiction=jurisdiction,
            legal_basis=legal_basis,
            retention_days=retention_days,
        )
        session.add(source)
        session.flush()
        return source
    if source.status == "paused":
        raise FacetraceError(f"source {name!r} is paused; resume it with 'facetrace source resume {name}'")
    if source.blocked_at is not None:
        raise FacetraceError(
            f"source {name!r} is blocked since {source.blocked_at:%Y-%m-%d}: {source.blocked_reason}; "
            "nothing more is collected from it"
        )
    for field, given in (
        ("jurisdiction", jurisdiction),
        ("legal_basis", legal_basis),
        ("retention_days", retention_days),
    ):
        stored = getattr(source, field)
        if given is not None and stored is not None and given != stored:
            raise FacetraceError(
                f"source {name!r} is registered with {field} {stored!r}, not {given!r}; "
                "use another source name for a different collection"
            )
        if given is not None and stored is None:
            setattr(source, field, given)
    return source


def images_seen_at(urls: Sequence[str]) -> Select[int]:
    """Ids of the images seen at any of ``urls``, as the image's own location or the page it was on."""
    return select(Sighting.image_id).where(or_(Sighting.location.in_(urls), Sighting.page_url.in_(urls)))


def image_by_sha256(session: Session, sha256: str) -> Image | None:
    return session.scalar(select(Image).where(Image.sha256 == sha256))


def record_sighting(session: Session, image: Image, source: Source, place: Place, now: datetime) -> bool:
    """Note that ``image`` was seen at ``place``; returns True for a new place, False for a revisit.

    A place shows one image at a time: another image the source had at the same location
    (the file or URL now holds different bytes) is marked gone from it.
    """
    session.execute(
        update(Sighting)
        .where(
            Sighting.source_id == source.id,
            Sighting.location == place.location,
            Sighting.image_id != image.id,
            Sighting.gone_at.is_(None),
        )
        .values(gone_at=now)
    )
    sighting = session.scalar(
        select(Sighting).where(
            Sighting.image_id == image.id,
            Sighting.source_id == source.id,
            Sighting.location == place.location,
        )
    )
    image.last_seen = now
    if sighting is not None:
        mark_seen(sighting, now)
        for name in ("page_url", "page_title", "alt_text", "http_last_modified", "http_etag"):
            setattr(sighting, name, getattr(place, name) or getattr(sighting, name))
        return False
    session.add(
        Sighting(
            image_id=image.id,
            source_id=source.id,
            location=place.location,
            page_url=place.page_url,
            page_title=place.page_title,
            alt_text=place.alt_text,
            http_last_modified=place.http_last_modified,
            http_etag=place.http_etag,
            first_seen=now,
            last_seen=now,
        )
    )
    return True


def mark_seen(sighting: Sighting, now: datetime) -> None:
    """The image is still where this sighting says: it is not gone, and was last seen ``now``."""
    sighting.last_seen = sighting.image.last_seen = now
    sighting.gone_at = None


def add_analyzed_image(
    session: Session,
    *,
    sha256: str,
    size_bytes: int,
    analysis: ImageAnalysis,
    model_id: str,
    source: Source,
    place: Place,
) -> list[Face]:
    """Store a newly analysed image, where it was seen, and its faces; returns the faces (with ids)."""
    now = utcnow()
    image = Image(
        sha256=sha256,
        size_bytes=size_bytes,
        width=analysis.width,
        height=analysis.height,
        format=analysis.format,
        face_count=len(analysis.faces),
        first_seen=now,
        last_seen=now,
        phash=analysis.phash,
    )
    session.add(image)
    session.flush()
    record_sighting(session, image, source, place, now)
    faces = [
        Face(
            image_id=image.id,
            box_x=face.detection.box[0],
            box_y=face.detection.box[1],
            box_w=face.detection.box[2],
            box_h=face.detection.box[3],
            landmarks=[round(float(v), 2) for v in face.detection.landmarks.reshape(-1)],
            det_score=face.detection.score,
            quality=face.quality,
            model_id=model_id,
            embedding=np.asarray(face.embedding, dtype=np.float32).tobytes(),
            created_at=now,
        )
        for face in analysis.faces
    ]
    session.add_all(faces)
    session.flush()
    session.add_all(
        FaceCrop(face_id=stored.id, jpeg=face.thumbnail)
        for stored, face in zip(faces, analysis.faces, strict=True)
        if face.thumbnail
    )
    return faces


def face_count_and_max_id(session: Session, model_id: str) -> tuple[int, int | None]:
    count, max_id = session.execute(
        select(func.count(Face.id), func.max(Face.id)).where(Face.model_id == model_id)
    ).one()
    return int(count), max_id


def embedding_dim(session: Session, model_id: str) -> int:
    """The length of the model's templates, read off one of them (float32: 4 bytes per value)."""
    embedding = session.scalars(select(Face.embedding).where(Face.model_id == model_id).limit(1)).one()
    return len(embedding) // 4


def face_ids(session: Session, model_id: str) -> np.ndarray:
    rows = session.scalars(select(Face.id).where(Face.model_id == model_id).order_by(Face.id))
    return np.fromiter(rows, dtype=np.int64)


def iter_embeddings(
    session: Session, model_id: str, ids: Sequence[int] | None = None, batch: int = 10_000
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(ids, vectors)`` chunks of the model's faces (all of them, or just ``ids``)."""
    if ids is None:
        query = select(Face.id, Face.embedding).where(Face.model_id == model_id).order_by(Face.id)
        chunks: Iterator[Sequence[Row[int, bytes]]] = session.execute(
            query.execution_options(yield_per=batch)
        ).partitions()
    else:
        chunks = (
            session.execute(
                select(Face.id, Face.embedding)
                .where(Face.model_id == model_id, Face.id.in_([int(i) for i in ids[start : start + batch]]))
                .order_by(Face.id)
            ).all()
            for start in range(0, len(ids), batch)
        )
    for rows in chunks:
        if rows:
            yield (
                np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
                np.vstack([np.frombuffer(r[1], dtype=np.float32) for r in rows]),
            )


def sample_embeddings(session: Session, model_id: str, size: int, seed: int = 1234) -> np.ndarray:
    """Up to ``size`` of the model's templates, drawn at random (the same draw for the same gallery).

    Ids are drawn from 1 to the highest id and those the model holds are kept, round after round:
    the draw costs memory for the sample, not for every id of a gallery of 100M faces."""
    count, max_id = face_count_and_max_id(session, model_id)
    if count <= size:
        chunks = [vectors for _ids, vectors in iter_embeddings(session, model_id)]
        return np.vstack(chunks) if chunks else np.empty((0, 0), dtype=np.float32)
    assert max_id is not None  # the model has more faces than the sample, so it has a highest id
    rng = np.random.default_rng(seed)
    taken: list[np.ndarray] = []
    chunks = []
    while (wanted := size - sum(len(ids) for ids in taken)) > 0:
        draws = rng.integers(1, int(max_id) + 1, size=math.ceil(1.2 * wanted * max_id / count) + 16)
        draws = np.setdiff1d(np.unique(draws), np.concatenate(taken) if taken else [])
        found = list(iter_embeddings(session, model_id, draws.tolist()))
        if not found:
            continue
        ids = np.concatenate([ids for ids, _ in found])
        vectors = np.vstack([vectors for _, vectors in found])
        keep = np.sort(rng.permutation(len(ids))[:wanted])  # found comes sorted by id: pick at random
        taken.append(ids[keep])
        chunks.append(vectors[keep])
    return np.vstack(chunks)


def faces_with_provenance(
    session: Session, ids: Sequence[int], shown: ColumnElement[bool] | None = None
) -> dict[int, Face]:
    """Faces by id, each with its image, the image's sightings (those matching ``shown``, if
    given) and their sources loaded. The image is read by a query of its own, so a face whose image
    an erasure deleted in between (committed after the faces were read) is left out, as erased."""
    sightings = Image.sightings if shown is None else Image.sightings.and_(shown)
    faces = session.scalars(
        select(Face)
        .where(Face.id.in_([int(i) for i in ids]))
        .options(selectinload(Face.image).selectinload(sightings).selectinload(Sighting.source))
    )
    return {face.id: face for face in faces if face.image is not None}


def shown_sightings(
    session: Session, now: datetime, source_ids: Sequence[int] | None = None
) -> ColumnElement[bool]:
    """The condition on a sighting that a search may show it.

    A sighting past its source's retention period stays in the catalog until the next
    ``facetrace retention run`` deletes it, and one of a blocked source until its purge
    finishes; neither is shown meanwhile. ``source_ids``: a narrowed search shows only
    sightings of these sources. Built from the sources table (a handful of rows), to be
    applied to the candidates' sightings only."""
    # "+ 0": a condition no index can serve, so that the candidates' images (a few) select the
    # sightings to read, never the index on their source. SQLite chose that index with a plain
    # IN: a search narrowed to 97,000 of the benchmark's 100,000 faces took 27.6 ms, not 10.0.
    hidden: list[ColumnElement[bool]] = (
        [] if source_ids is None else [(Sighting.source_id + 0).not_in([int(i) for i in source_ids])]
    )
    for source in session.scalars(
        select(Source).where(or_(Source.blocked_at.is_not(None), Source.retention_days > 0))
    ):
        if source.blocked_at is not None:
            hidden.append(Sighting.source_id == source.id)
        else:
            hidden.append(
                (Sighting.source_id == source.id) & (Sighting.first_seen < retention_cutoff(source, now))
            )
    return ~or_(*hidden) if hidden else true()


def faces_shown(session: Session, ids: Sequence[int], shown: ColumnElement[bool]) -> set[int]:
    """Which of the faces ``ids`` have a sighting matching ``shown`` (ids only: cheap for the
    thousands of candidates a narrowed search may weigh).

    Written as ``EXISTS`` so that the candidates drive the query: as a join, SQLite chose to read
    every sighting of the scope's sources through their index instead (28 s against 11 ms for
    2,000 candidates in a 100,000-face gallery narrowed to 97,000 of them)."""
    has_shown_sighting = exists().where(Sighting.image_id == Face.image_id, shown)
    return set(session.scalars(select(Face.id).where(Face.id.in_([int(i) for i in ids]), has_shown_sighting)))


def faces_seen_in(session: Session, model_id: str, source_ids: Sequence[int]) -> list[int]:
    """The model's faces in images that one of these sources has seen (through the sightings'
    index on their source: the work grows with what the sources hold, not with the gallery)."""
    seen = select(Sighting.image_id).where(Sighting.source_id.in_([int(i) for i in source_ids]))
    query = select(Face.id).where(Face.model_id == model_id, Face.image_id.in_(seen)).order_by(Face.id)
    return list(session.scalars(query))


def retention_cutoff(source: Source, now: datetime) -> datetime:
    """Sightings of ``source`` first seen before this are past its retention period."""
    return now - timedelta(days=source.retention_days or 0)


def _faces_with_sightings(session: Session, ids: Sequence[int], sightings: Any) -> dict[int, Face]:
    faces = session.scalars(
        select(Face)
        .where(Face.id.in_([int(i) for i in ids]))
        .options(selectinload(Face.image).selectinload(sightings).selectinload(Sighting.source))
    )
    return {face.id: face for face in faces}


@dataclass(frozen=True, slots=True)
class SourceStats:
    name: str
    kind: str
    jurisdiction: str | None
    legal_basis: str | None
    images: int
    faces: int


def source_stats(session: Session) -> list[SourceStats]:
    images_per_source = (
        select(Sighting.source_id, func.count(func.distinct(Sighting.image_id)).label("images"))
        .group_by(Sighting.source_id)
        .subquery()
    )
    faces_per_source = (
        select(Sighting.source_id, func.count(func.distinct(Face.id)).label("faces"))
        .join(Face, Face.image_id == Sighting.image_id)
        .group_by(Sighting.source_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Source,
            func.coalesce(images_per_source.c.images, 0),
            func.coalesce(faces_per_source.c.faces, 0),
        )
        .outerjoin(images_per_source, images_per_source.c.source_id == Source.id)
        .outerjoin(faces_per_source, faces_per_source.c.source_id == Source.id)
        .order_by(Source.name)
    ).all()
    return [
        SourceStats(s.name, s.kind, s.jurisdiction, s.legal_basis, int(images), int(faces))
        for s, images, faces in rows
    ]


def totals(session: Session) -> dict[str, int]:
    return {
        "sources": int(session.scalar(select(func.count(Source.id))) or 0),
        "images": int(session.scalar(select(func.count(Image.id))) or 0),
        "sightings": int(session.scalar(select(func.count(Sighting.id))) or 0),
        "faces": int(session.scalar(select(func.count(Face.id))) or 0),
    }


def faces_per_model(session: Session) -> dict[str, int]:
    rows = session.execute(select(Face.model_id, func.count(Face.id)).group_by(Face.model_id)).all()
    return {model: int(count) for model, count in rows}
