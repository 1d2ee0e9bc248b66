"""The searchable gallery: the catalog (truth) and the vector index (a derived copy) kept in step.

Writers commit an image and its faces to the catalog first and add the vectors
to the index after; the index file is saved now and then. A crash between the
two therefore loses nothing: :meth:`Gallery.reconcile` runs whenever a gallery
is opened and adds what the index lacks and drops what the catalog no longer holds.

The index starts exact (flat). :meth:`Gallery.rebuild` builds it again from the catalog
in another structure (``facetrace reindex --kind``), and :meth:`Gallery.compress_if_large`
switches to the compressed one once the gallery reaches ``FACETRACE_INDEX_COMPRESS_AT``
faces. A rebuild writes a new file in place of the old one at the end, so searches keep
using the old index until then.

A writer takes :meth:`Gallery.write_lock` only to change the gallery, one batch at a time
(:meth:`Gallery.writing`), never while it waits on the network or on analysis: an erasure waits
for one batch's commit, not for a crawl. Each time a writer takes the lock it first brings the
index it holds in memory up to date with what others did meanwhile, so that saving it never
writes back a vector another process erased, nor an index structure a reindex replaced.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock
from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session, sessionmaker

from facetrace.catalog import repository
from facetrace.catalog.scope import EVERYWHERE, SearchScope
from facetrace.core.config import Settings
from facetrace.core.errors import FacetraceError
from facetrace.index.base import VectorIndex
from facetrace.index.faiss_files import empty_faiss_index, open_faiss_index
from facetrace.index.faiss_index import FaissIndex
from facetrace.index.kinds import IndexKind, kind_for
from facetrace.index.rerank import CANDIDATES, best_by_exact_score
from facetrace.index.stores import index_for_search, open_index
from facetrace.store.base import utcnow
from facetrace.store.catalog_models import Face
from facetrace.store.engine import open_catalog

#: The most candidates a search asks the index for when faces it may not show crowd the top.
MOST_CANDIDATES = 10_000


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
    #: The same face in near-duplicates of this image (see :mod:`facetrace.gallery.near_duplicates`).
    copies: tuple[Hit, ...] = ()

    @property
    def face_ids(self) -> list[int]:
        """This face's id and its copies' ids: everything the result shows."""
        return [self.face.id, *(copy.face.id for copy in self.copies)]


class Gallery:
    """One embedding model's faces: catalog sessions plus the vector index (FAISS or Milvus)."""

    def __init__(self, sessions: sessionmaker[Session], index: VectorIndex, scan_share: float = 1.0) -> None:
        self.sessions = sessions
        self.index = index
        self.scan_share = scan_share  # for a compressed index this gallery builds
        #: The index file as this object last read or wrote it (see :meth:`writing`).
        self._file_seen = self._file_state()
        #: The highest face id added since the write lock was last taken (see :meth:`writing`).
        self._added_max_id: int | None = None

    @classmethod
    def open(
        cls, settings: Settings, model_id: str, dim: int, sessions: sessionmaker[Session] | None = None
    ) -> Gallery:
        """The model's gallery, reconciled; ``sessions``: a catalog connection the caller already has."""
        sessions = sessions or open_catalog(settings.catalog_url)
        gallery = cls(sessions, open_index(settings, model_id, dim), settings.index_scan_share)
        gallery.reconcile()
        return gallery

    @classmethod
    def for_search(
        cls, settings: Settings, model_id: str, dim: int, sessions: sessionmaker[Session]
    ) -> Gallery:
        """A gallery to search with: this process's copy of the index, read from disk again only
        when the file changed, and reconciled with the catalog like any other, so a face erased
        since is never returned. Any number of threads may search at once: the copy they share is
        replaced by a reconciled one, never changed under them (see :func:`index_for_search`)."""
        index = index_for_search(
            settings,
            model_id,
            dim,
            in_step=lambda index: cls(sessions, index).in_step(),
            catch_up=lambda index: cls(sessions, index).reconcile(),
        )
        return cls(sessions, index, settings.index_scan_share)

    @property
    def model_id(self) -> str:
        return self.index.model_id

    @staticmethod
    def write_lock(settings: Settings) -> FileLock:
        """Held by whoever changes the gallery (ingest, erasure, reindex), so two writers never
        interleave; for one batch at a time (:meth:`writing`), never across network waits."""
        settings.index_dir.mkdir(parents=True, exist_ok=True)
        return FileLock(str(Path(settings.index_dir) / ".write.lock"))

    @contextmanager
    def writing(self, lock: FileLock) -> Iterator[Gallery]:
        """Hold ``lock`` (:meth:`write_lock`) for one batch of changes, made inside the block:
        faces committed to the catalog and then :meth:`add`-ed, a :meth:`save`.

        Another writer may have changed the gallery since this object last held the lock (an
        erasure removed faces and rewrote the file, a reindex replaced it, another ingest
        added faces), so the index is first read again if its file changed, then reconciled
        with the catalog. Face ids only grow and the lock keeps other writers out, so once the
        faces committed inside the block are added, the index holds exactly the catalog's faces
        again, and the next reconcile is the cheap one."""
        with lock:
            if isinstance(self.index, FaissIndex) and self._file_state() != self._file_seen:
                self.index = open_faiss_index(
                    self.index.path.parent, self.model_id, self.index.dim, scan_share=self.scan_share
                )
                self._file_seen = self._file_state()
            self.reconcile()
            self._added_max_id = None
            yield self
            if self._added_max_id is not None:
                self.index.synced_max_id = self._added_max_id

    def save(self) -> None:
        """Write the index (inside :meth:`writing`, so never over another writer's changes)."""
        self.index.save()
        self._file_seen = self._file_state()

    def _file_state(self) -> tuple[int, int, int] | None:
        """Which index file is on disk now (None: none yet, or a Milvus collection, which every
        process shares live rather than reading it from a file)."""
        if not isinstance(self.index, FaissIndex) or not self.index.path.exists():
            return None
        stat = self.index.path.stat()
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def reconcile(self) -> ReconcileReport:
        """Make the index hold exactly the catalog's faces of this model.

        Face ids only grow and are never reused, so when the index holds as many
        vectors as the catalog and was saved at the catalog's highest id, the two
        hold the same set and the full comparison is skipped.
        """
        with self.sessions() as session:
            count, max_id = repository.face_count_and_max_id(session, self.model_id)
            if self._holds(count, max_id):
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

    def in_step(self) -> bool:
        """Whether the index holds exactly the catalog's faces, by :meth:`reconcile`'s cheap check
        (False may only mean that the full comparison is needed); changes nothing."""
        with self.sessions() as session:
            return self._holds(*repository.face_count_and_max_id(session, self.model_id))

    def _holds(self, count: int, max_id: int | None) -> bool:
        return len(self.index) == count and max_id in (self.index.saved_max_id, self.index.synced_max_id)

    def add(self, faces: list[Face]) -> None:
        """Index faces already committed to the catalog (the index refuses another model's)."""
        for model_id in {f.model_id for f in faces}:
            same_model = [f for f in faces if f.model_id == model_id]
            self.index.add(
                np.array([f.id for f in same_model], dtype=np.int64),
                np.vstack([np.frombuffer(f.embedding, dtype=np.float32) for f in same_model]),
                model_id,
            )
        if faces:
            self._added_max_id = max(self._added_max_id or 0, *(f.id for f in faces))

    def rebuild(self, kind: IndexKind | None = None) -> int:
        """Build the index again from the catalog, as ``kind`` (default: its present structure);
        a compressed index is trained on a sample of the gallery first. Returns the number of vectors.

        The new index replaces the old one in this object only; :meth:`FaissIndex.save` then puts
        its file in place of the old one in one step. A Milvus collection is emptied and filled
        again; it keeps the index type it was created with."""
        old = self.index
        if not isinstance(old, FaissIndex):
            if kind is not None:
                raise FacetraceError(
                    "--kind is for FAISS indexes: a Milvus collection keeps the index type it was "
                    "created with (FACETRACE_MILVUS_INDEX_TYPE)"
                )
            old.remove(old.ids())
            with self.sessions() as session:
                for ids, vectors in repository.iter_embeddings(session, self.model_id):
                    old.add(ids, vectors, self.model_id)
            return len(old)
        with self.sessions() as session:
            count, _ = repository.face_count_and_max_id(session, self.model_id)
            if count == 0 and (kind or old.kind) is not IndexKind.FLAT:
                raise FacetraceError(
                    f"the {self.model_id} gallery is empty: there is nothing to train {kind or old.kind} on"
                )
            index = empty_faiss_index(
                old.path, old.model_id, old.dim, kind or old.kind, count=count, scan_share=self.scan_share
            )
            if index.needs_training:
                index.train(repository.sample_embeddings(session, self.model_id, index.training_size))
            for ids, vectors in repository.iter_embeddings(session, self.model_id):
                index.add(ids, vectors, self.model_id)
        self.index = index
        return len(index)

    def compress_if_large(self, threshold: int) -> bool:
        """Rebuild an exact index as IVF-PQ once it holds ``threshold`` faces (0: never)."""
        if self.index.kind != IndexKind.FLAT or kind_for(len(self.index), threshold) == IndexKind.FLAT:
            return False
        self.rebuild(IndexKind.IVF_PQ)
        return True

    def search(self, vector: np.ndarray, k: int, scope: SearchScope = EVERYWHERE) -> list[Hit]:
        """The ``k`` most similar faces a search may show, with their provenance, best first.

        An approximate index proposes candidates (its compressed codes blur close scores) and
        the catalog's float32 templates decide their order and their scores. Faces with nothing
        left to show (every sighting past retention, of a blocked source or outside ``scope``:
        see :func:`repository.shown_sightings`) are passed over; when that leaves fewer than
        ``k``, the index is asked for more candidates, up to :data:`MOST_CANDIDATES`. A scope
        so narrow that even those hold fewer than ``k`` of its faces is searched exactly instead,
        face by face of its sources (:meth:`_ranked_within`).
        """
        query = vector.reshape(1, -1).astype(np.float32)
        asked = max(k, CANDIDATES) if self.index.approximate else k
        with self.sessions() as session:
            in_scope = scope.source_ids(session) if scope.narrowed else None
            if in_scope == []:
                return []
            shown = repository.shown_sightings(session, utcnow(), in_scope)
            while True:
                scores, ids = self.index.search(query, asked)
                ranked = [(i, s) for i, s in zip(ids[0].tolist(), scores[0].tolist(), strict=True) if i >= 0]
                if self.index.approximate:
                    ranked = self._exact_scores(session, [face_id for face_id, _ in ranked], query[0])
                top = self._visible(session, ranked, k, shown)
                if len(top) == k or len(ranked) < asked:
                    break
                if asked >= MOST_CANDIDATES:
                    if in_scope is not None:
                        top = self._visible(
                            session, self._ranked_within(session, in_scope, query[0]), k, shown
                        )
                    break
                asked = min(4 * asked, MOST_CANDIDATES)
            # Only the faces shown are loaded with their provenance, and with the sightings shown.
            faces = repository.faces_with_provenance(session, [face_id for face_id, _ in top], shown)
        found = [(score, faces[i]) for i, score in top if i in faces and faces[i].image.sightings]
        return [Hit(rank, score, face) for rank, (score, face) in enumerate(found, start=1)]

    @staticmethod
    def _visible(
        session: Session, ranked: list[tuple[int, float]], k: int, shown: ColumnElement[bool]
    ) -> list[tuple[int, float]]:
        """The first ``k`` of ``ranked`` with a sighting matching ``shown`` (checked by id). A face
        erased by another process after this index was loaded is absent."""
        visible = repository.faces_shown(session, [face_id for face_id, _ in ranked], shown)
        return [(face_id, score) for face_id, score in ranked if face_id in visible][:k]

    def _ranked_within(
        self, session: Session, source_ids: list[int], query: np.ndarray
    ) -> list[tuple[int, float]]:
        """Exact search over the faces these sources have seen: a pre-filter, for a scope that
        holds so few faces that the index's nearest candidates miss them. Its cost grows with the
        faces in scope, which are few exactly when this runs."""
        in_scope = repository.faces_seen_in(session, self.model_id, source_ids)
        return self._exact_scores(session, in_scope, query, limit=MOST_CANDIDATES)

    def _exact_scores(
        self, session: Session, ids: list[int], query: np.ndarray, limit: int | None = None
    ) -> list[tuple[int, float]]:
        """``ids`` ordered by their similarity to ``query`` by the catalog's templates, best first
        (the best ``limit`` of them); read chunk by chunk, so memory stays bounded."""
        best: list[tuple[int, float]] = []
        for chunk_ids, vectors in repository.iter_embeddings(session, self.model_id, ids):
            best += best_by_exact_score(chunk_ids, vectors, query, limit or len(chunk_ids))
            best = sorted(best, key=lambda pair: -pair[1])[:limit]
        return best
