"""The gallery's upkeep and figures: what it holds, rebuilding its index, its metrics; each audited."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from facetrace.catalog.repository import SourceStats
from facetrace.gallery.gallery import Gallery
from facetrace.gallery.stats import gallery_stats
from facetrace.governance.audit import Record
from facetrace.governance.roles import Action
from facetrace.governance.services.base import ServiceBase
from facetrace.index.kinds import IndexKind


@dataclass(frozen=True, slots=True)
class IndexFigures:
    """One vector index: a FAISS file (from its meta file) or a Milvus collection."""

    file: str
    model: str | None
    kind: str | None
    vectors: int | None
    bytes: int | None  # a Milvus server does not say
    saved_at: str | None


@dataclass(frozen=True, slots=True)
class GalleryStats:
    """What the gallery holds. The fields' order is the order ``facetrace stats --json`` prints."""

    data_dir: str
    catalog: str  # its address, without a password
    catalog_bytes: int | None  # a SQLite catalog's files; None for a server's
    sources: list[SourceStats]
    images: int
    sightings: int
    faces: int
    faces_per_model: dict[str, int]
    indexes: list[IndexFigures]

    @classmethod
    def of(cls, stats: dict[str, Any]) -> GalleryStats:
        """From :func:`gallery_stats`'s document."""
        return cls(
            data_dir=stats["data_dir"],
            catalog=stats["catalog"],
            catalog_bytes=stats["catalog_bytes"],
            sources=[SourceStats(**source) for source in stats["sources"]],
            images=stats["images"],
            sightings=stats["sightings"],
            faces=stats["faces"],
            faces_per_model=stats["faces_per_model"],
            indexes=[IndexFigures(**index) for index in stats["indexes"]],
        )

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Reindexed:
    location: str
    kind: str
    faces: int
    model_id: str
    seconds: float
    bytes_on_disk: int


class GalleryService(ServiceBase):
    """``gov.gallery``: statistics, rebuilding the index, reading the metrics."""

    def stats(self) -> GalleryStats:
        """Sources, images, sightings and faces, the index files and their size (any staff role)."""
        with self.action(Action.VIEW_STATS) as details:
            stats = GalleryStats.of(gallery_stats(self.settings))
            details.update(faces=stats.faces, images=stats.images)
        return stats

    def reindex(self, kind: IndexKind | None = None) -> Reindexed:
        """Rebuild the vector index from the catalog (admin); searches use the old index until the
        new one is written."""
        from facetrace.vision.factory import build_embedder  # loads a model: only when it runs

        with self.action(Action.MANAGE_SOURCES, command="reindex") as details:
            embedder = build_embedder(self.settings)
            with Gallery.write_lock(self.settings):
                gallery = Gallery.open(self.settings, embedder.model_id, embedder.dim, self.sessions)
                started = time.perf_counter()
                count = gallery.rebuild(kind)
                gallery.index.save()
            details.update(faces=count, kind=gallery.index.kind)
        return Reindexed(
            location=gallery.index.location,
            kind=gallery.index.kind,
            faces=count,
            model_id=embedder.model_id,
            seconds=time.perf_counter() - started,
            bytes_on_disk=gallery.index.size_on_disk(),
        )

    def read_metrics(self) -> None:
        """Refuse (and record) a user who may not read the server's metrics; record the read."""
        self.allow(Action.READ_METRICS)
        self.record(Record(action=Action.READ_METRICS.value))
