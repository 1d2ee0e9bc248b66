"""The catalog's tables: where every face came from, and its template.

The catalog is the source of truth. The vector index is a derived copy of
``faces.embedding`` and can always be rebuilt from it (``facetrace reindex``).

* ``sources``   — a named collection an operator registered (with a legal basis).
* ``images``    — unique image *bytes* (by sha256), whatever the number of places they were seen.
* ``sightings`` — each place an image was seen: path or URL, the page it was on, when.
* ``faces``     — each face found in an image: box, landmarks, scores, model, template.
* ``face_crops`` — a small JPEG of each face for result cards (apart, so scans of ``faces`` stay lean).
* ``collection_jobs`` — every crawl, import and ingest: who started it, its state and its counts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    exists,
    false,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from facetrace.store.base import Base, BigId, utcnow


class Source(Base):
    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32), default="local")
    jurisdiction: Mapped[str | None] = mapped_column(String(2))
    legal_basis: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Set by a purge or an erasure by source: nothing more is collected from it.
    blocked_at: Mapped[datetime | None]
    blocked_reason: Mapped[str | None] = mapped_column(Text)
    #: Sightings older than this are deleted by ``facetrace retention run`` (None: kept until erased).
    retention_days: Mapped[int | None] = mapped_column(Integer)
    purpose: Mapped[str | None] = mapped_column(Text)
    # What a crawl may fetch (kinds "urls", "website", "sitemap"): where it starts, where it may go.
    seeds: Mapped[list[str]] = mapped_column(JSON, default=list)
    allowed: Mapped[list[str]] = mapped_column(JSON, default=list)  # HOST or HOST/PATH prefixes
    max_pages: Mapped[int | None] = mapped_column(Integer)
    max_depth: Mapped[int | None] = mapped_column(Integer)
    rate_per_s: Mapped[float | None] = mapped_column(Float)
    #: Registered (by an admin, audited) to reach loopback/private/link-local addresses: an intranet.
    allow_private_network: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | paused
    #: When the crawl now running (or last interrupted) began: what it did not see again is gone.
    crawl_started_at: Mapped[datetime | None]

    sightings: Mapped[list[Sighting]] = relationship(back_populates="source")


class Image(Base):
    __tablename__ = "images"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(16))
    face_count: Mapped[int] = mapped_column(Integer)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    #: 64-bit perceptual hash (16 hex digits): resized or re-encoded copies get nearly the same one.
    phash: Mapped[str | None] = mapped_column(String(16))
    #: The first stored image of which this one is a near-duplicate (None: it is the first). Not a
    #: foreign key: copies stay linked to each other after that first image is erased.
    near_duplicate_of: Mapped[int | None] = mapped_column(BigInteger, index=True)

    sightings: Mapped[list[Sighting]] = relationship(
        back_populates="image", cascade="all, delete-orphan", order_by="Sighting.id"
    )
    faces: Mapped[list[Face]] = relationship(back_populates="image", cascade="all, delete-orphan")


class Sighting(Base):
    __tablename__ = "sightings"
    __table_args__ = (UniqueConstraint("image_id", "source_id", "location", name="uq_sighting_place"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    location: Mapped[str] = mapped_column(Text)  # file path or image URL
    page_url: Mapped[str | None] = mapped_column(Text)
    page_title: Mapped[str | None] = mapped_column(Text)
    alt_text: Mapped[str | None] = mapped_column(Text)
    http_last_modified: Mapped[str | None] = mapped_column(String(64))  # as the server sent it
    http_etag: Mapped[str | None] = mapped_column(String(200))  # for conditional requests on recrawl
    #: Set when a complete recrawl of the source no longer found the image here.
    gone_at: Mapped[datetime | None]
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)

    image: Mapped[Image] = relationship(back_populates="sightings")
    source: Mapped[Source] = relationship(back_populates="sightings")


class FaceCrop(Base):
    """The picture of one face a result card shows (:mod:`facetrace.vision.thumbnail`); it goes
    with its face, in the same deletion."""

    __tablename__ = "face_crops"

    face_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("faces.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    jpeg: Mapped[bytes] = mapped_column(LargeBinary)


class Face(Base):
    __tablename__ = "faces"
    # Face ids are never reused (SQLite would otherwise recycle the highest id after a
    # deletion): audit records and index files name faces by id.
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012

    id: Mapped[int] = mapped_column(BigId, primary_key=True)  # also the id in the vector index
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    box_x: Mapped[float] = mapped_column(Float)
    box_y: Mapped[float] = mapped_column(Float)
    box_w: Mapped[float] = mapped_column(Float)
    box_h: Mapped[float] = mapped_column(Float)
    landmarks: Mapped[list[float]] = mapped_column(JSON)  # 10 floats: x, y of 5 points
    det_score: Mapped[float] = mapped_column(Float)
    quality: Mapped[float] = mapped_column(Float)
    model_id: Mapped[str] = mapped_column(String(100), index=True)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32, unit norm
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Whether a crop is kept (faces stored before 0012, or with ``face_crop_size`` 0, have none).
    has_crop: Mapped[bool] = column_property(exists().where(FaceCrop.face_id == id))

    image: Mapped[Image] = relationship(back_populates="faces")

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.box_x, self.box_y, self.box_w, self.box_h)

    @property
    def relative_centre(self) -> tuple[float, float]:
        """The box centre as a share of the image's width and height: the same in a resized copy."""
        return (
            (self.box_x + self.box_w / 2) / self.image.width,
            (self.box_y + self.box_h / 2) / self.image.height,
        )


class Calibration(Base):
    """Impostor score counts for one model, measured on a labelled set (``facetrace calibrate``)."""

    __tablename__ = "calibrations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    model_id: Mapped[str] = mapped_column(String(100), index=True)
    dataset: Mapped[str] = mapped_column(String(200))
    images: Mapped[int] = mapped_column(Integer)
    impostor_pairs: Mapped[int] = mapped_column(BigInteger)
    grid_start: Mapped[float] = mapped_column(Float)
    grid_step: Mapped[float] = mapped_column(Float)
    counts_at_least: Mapped[list[int]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CrawlItem(Base):
    """One URL of a crawl's frontier (see :mod:`facetrace.collect.frontier`)."""

    __tablename__ = "crawl_items"
    __table_args__ = (UniqueConstraint("source_id", "url", name="uq_crawl_item"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    depth: Mapped[int] = mapped_column(Integer)
    page_url: Mapped[str | None] = mapped_column(Text)  # set for an image
    page_title: Mapped[str | None] = mapped_column(Text)
    alt: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | fetched | done


class CollectionJob(Base):
    """A crawl, folder import or command-line ingest, from the moment it is asked for to its end.

    ``owner`` names the process that runs it (a random token, not a pid or host, which another
    machine could reuse); that process renews ``heartbeat_at`` while the job is queued or running,
    so whoever finds an old heartbeat knows the job died with its process (see
    :mod:`facetrace.governance.collection_jobs`). The source is kept by name: the history outlives it.
    """

    __tablename__ = "collection_jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # crawl | import | ingest
    source: Mapped[str] = mapped_column(String(200))
    folder: Mapped[str | None] = mapped_column(Text)  # what an import or ingest reads
    started_by: Mapped[str] = mapped_column(String(200))
    #: queued | running | done | failed | cancelled | interrupted
    state: Mapped[str] = mapped_column(String(16), index=True)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    owner: Mapped[str] = mapped_column(String(64))
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    #: The sequence number of the audit entry written when the job started running.
    started_entry: Mapped[int | None] = mapped_column(BigInteger)
