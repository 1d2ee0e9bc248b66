"""The searchable gallery: the catalog (truth) and the vector index (a derived copy) kept in step.

Writers commit an image and its faces to the catalog first and add the vectors
to the index after; the index file is saved now and then. A crash between the
two therefore loses nothing: :meth:`Gallery.reconcile` runs whenever a gallery
is opened and adds what the index lacks and drops what the catalog no longer holds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock
from sqlalchemy.orm import Session, sessionmaker

from facetrace.catalog import repository
from facetrace.catalog.db import open_catalog
from facetrace.catalog.models import Face
from facetrace.config import Settings
from facetrace.index.faiss_index import FaissIndex, index_file_for


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    added: int
    removed: int
    checked_fully: bool


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: the face, its similarity to the probe and its provenance (via ``face``)."""

    rank: int
    score: float
    face: Face
    #: How many different people a gallery this size holds at this score or above, by the
    #: model's calibration (None: the model was never calibrated).
    expected_false_matches: float | None = None
    #: The same face in near-duplicates of this image (see :mod:`facetrace.near_duplicates`).
    copies: tuple[Hit, ...] = ()

    @property
    def face_ids(self) -> list[int]:
        """This face's id and its copies' ids: everything the result shows."""
        return [self.face.id, *(copy.face.id for copy in self.copies)]


class Gallery:
    """One embedding model's faces: catalog sessions plus the FAISS index."""

    def __init__(self, sessions: sessionmaker[Session], index: FaissIndex) -> None:
        self.sessions = sessions
        self.index = index

    @classmethod
    def open(
        cls, settings: Settings, model_id: str, dim: int, sessions: sessionmaker[Session] | None = None
    ) -> Gallery:
        """The model's gallery, reconciled; ``sessions``: a catalog connection the caller already has."""
        sessions = sessions or open_catalog(settings.catalog_url)
        gallery = cls(sessions, FaissIndex.open(settings.index_dir, model_id, dim))
        gallery.reconcile()
        return gallery

    @classmethod
    def for_search(
        cls, settings: Settings, model_id: str, dim: int, sessions: sessionmaker[Session]
    ) -> Gallery:
        """A gallery to search with: this process's copy of the index, read from disk again only
        when the file changed, and reconciled with the catalog like any other, so a face erased
        since is never returned. Callers searching from several threads serialise their calls."""
        gallery = cls(sessions, _SEARCH_INDEXES.get(settings.index_dir, model_id, dim))
        gallery.reconcile()
        return gallery

    @property
    def model_id(self) -> str:
        return self.index.model_id

    @staticmethod
    def write_lock(settings: Settings) -> FileLock:
        """Held by whoever changes the index file (ingest, reindex), so two writers never interleave."""
        settings.index_dir.mkdir(parents=True, exist_ok=True)
        return FileLock(str(Path(settings.index_dir) / ".write.lock"))

    def reconcile(self) -> ReconcileReport:
        """Make the index hold exactly the catalog's faces of this model.

        Face ids only grow and are never reused, so when the index holds as many
        vectors as the catalog and was saved at the catalog's highest id, the two
        hold the same set and the full comparison is skipped.
        """
        with self.sessions() as session:
            count, max_id = repository.face_count_and_max_id(session, self.model_id)
            if len(self.index) == count and max_id in (self.index.saved_max_id, self.index.synced_max_id):
                return ReconcileReport(0, 0, checked_fully=False)
            catalog_ids = repository.face_ids(session, self.model_id)
            index_ids = self.index.ids()
            missing = np.setdiff1d(catalog_ids, index_ids, assume_unique=True)
            extra = np.setdiff1d(index_ids, catalog_ids, assume_unique=True)
            removed = self.index.remove(extra)
            for ids, vectors in repository.iter_embeddings(session, self.model_id, missing.tolist()):
                self.index.add(ids, vectors, self.model_id)
        self.index.synced_max_id = max_id
        return ReconcileReport(added=len(missing), removed=removed, checked_fully=True)

    def add(self, faces: list[Face]) -> None:
        """Index faces already committed to the catalog (the index refuses another model's)."""
        for model_id in {f.model_id for f in faces}:
            same_model = [f for f in faces if f.model_id == model_id]
            self.index.add(
                np.array([f.id for f in same_model], dtype=np.int64),
                np.vstack([np.frombuffer(f.embedding, dtype=np.float32) for f in same_model]),
                model_id,
            )

    def rebuild(self) -> int:
        """Throw the index away and fill it again from the catalog; returns the number of vectors."""
        self.index.remove(self.index.ids())
        with self.sessions() as session:
            for ids, vectors in repository.iter_embeddings(session, self.model_id):
                self.index.add(ids, vectors, self.model_id)
        return len(self.index)

    def search(self, vector: np.ndarray, k: int) -> list[Hit]:
        """The ``k`` most similar faces with their provenance, best first."""
        scores, ids = self.index.search(vector.reshape(1, -1), k)
        with self.sessions() as session:
            faces = repository.faces_with_provenance(session, ids[0].tolist())
        # A face erased by another process after this index was loaded is simply absent.
        found = [(float(s), faces[int(i)]) for s, i in zip(scores[0], ids[0], strict=True) if int(i) in faces]
        return [Hit(rank, score, face) for rank, (score, face) in enumerate(found, start=1)]


class _IndexCache:
    """The indexes searches use in this process, keyed by file, with the file's state when read.

    A long-running server would otherwise read the whole index file for every search.
    """

    def __init__(self) -> None:
        self._entries: dict[Path, tuple[tuple[int, int] | None, FaissIndex]] = {}
        self._lock = threading.Lock()

    def get(self, directory: Path, model_id: str, dim: int) -> FaissIndex:
        path = index_file_for(directory, model_id)
        stat = path.stat() if path.exists() else None
        stamp = (stat.st_mtime_ns, stat.st_size) if stat else None
        with self._lock:
            cached = self._entries.get(path)
            if cached is None or cached[0] != stamp or stamp is None:
                cached = (stamp, FaissIndex.open(directory, model_id, dim))
                self._entries[path] = cached
            return cached[1]


_SEARCH_INDEXES = _IndexCache()
