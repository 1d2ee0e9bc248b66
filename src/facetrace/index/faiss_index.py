"""Inner-product search with FAISS, persisted as one file per embedding model.

Two structures, both keyed by the catalog's face ids and both deleting physically
(``remove_ids`` drops the stored vector or code), which is what erasure requires:

* ``flat`` — ``IndexIDMap2(IndexFlatIP)``: exact, 512 B per 128-d face. The default.
* ``ivf-sq8`` — ``IndexIVFScalarQuantizer``: vectors as 8-bit codes in ``nlist`` lists
  around centroids trained on a sample of the gallery; a search scans the ``nprobe``
  lists nearest the probe. About 138 B per face and a few ms at 1M faces on 2 cores
  (``bench/index_choice.py``). Approximate, so the gallery re-ranks its candidates
  with the exact templates the catalog keeps (see :meth:`facetrace.gallery.Gallery.search`).
  FAISS HNSW is not offered: it cannot delete.

The file is rewritten atomically on :meth:`FaissIndex.save`; between saves the catalog
stays the source of truth (see :mod:`facetrace.gallery`).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import faiss
import numpy as np

from facetrace.atomic import atomic_path, atomic_write_text
from facetrace.errors import ModelMismatchError
from facetrace.index.base import checked_batch
from facetrace.index.kinds import IndexKind

#: One OpenMP thread. Facetrace searches one probe at a time and adds vectors as images arrive,
#: while worker processes take the cores; FAISS's default thread pool then only spins against
#: them. Measured on 2 cores: ingest of 600 dev photos 24 -> 54 images/s, and one flat search
#: at 100k 24 -> 2.5 ms (``bench/index_choice.py``).
faiss.omp_set_num_threads(1)
#: A batch this large is a rebuild, not an image's faces: it gets every core (see :func:`_all_cores`).
BULK = 10_000


@contextmanager
def _all_cores() -> Iterator[None]:
    """Training and bulk adds are one long job with nothing else running: use every core."""
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(1)


#: Training points per IVF list: FAISS's k-means wants at least 39; more gives steadier centroids.
TRAINING_POINTS_PER_LIST = 64


def nlist_for(count: int) -> int:
    """IVF lists for a gallery of ``count`` faces: about 4 sqrt(N), never fewer than 39 faces each."""
    return max(1, min(round(4 * math.sqrt(max(count, 1))), count // 39))


def index_file_for(directory: Path, model_id: str) -> Path:
    """One file per model, so vectors of two models can never meet in one index."""
    return directory / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', model_id)}.faiss"


class FaissIndex:
    """A FAISS inner-product index of unit vectors, keyed by face id (flat, or IVF-SQ8)."""

    def __init__(
        self,
        path: Path,
        model_id: str,
        dim: int,
        index: faiss.Index | None = None,
        saved_max_id: int | None = None,
        *,
        nprobe: int = 1,
    ) -> None:
        self.path = path
        self.model_id = model_id
        self.dim = dim
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.kind = IndexKind.IVF_SQ8 if isinstance(self._index, faiss.IndexIVF) else IndexKind.FLAT
        if isinstance(self._index, faiss.IndexIVF):
            self._index.nprobe = min(nprobe, self._index.nlist)
        #: The highest face id in the file when it was last saved (None: never saved, or empty).
        self.saved_max_id = saved_max_id
        #: The catalog's highest face id when this in-memory index was last checked against it.
        self.synced_max_id: int | None = None

    @property
    def meta_path(self) -> Path:
        return self.path.with_suffix(".json")

    @property
    def location(self) -> str:
        return str(self.path)

    @property
    def structure(self) -> faiss.Index:
        """The FAISS object itself, for benchmarks that compare Facetrace with bare FAISS."""
        return self._index

    @property
    def approximate(self) -> bool:
        """Whether a search may miss or misorder neighbours (the gallery then re-ranks exactly)."""
        return self.kind is not IndexKind.FLAT

    @property
    def needs_training(self) -> bool:
        return not self._index.is_trained

    @property
    def training_size(self) -> int:
        """How many sample vectors :meth:`train` wants (0 for a structure that learns nothing)."""
        if not isinstance(self._index, faiss.IndexIVF):
            return 0
        return self._index.nlist * TRAINING_POINTS_PER_LIST

    @classmethod
    def empty(
        cls, path: Path, model_id: str, dim: int, kind: IndexKind, *, count: int, nprobe: int
    ) -> FaissIndex:
        """A new, empty index of ``kind`` sized for about ``count`` faces (IVF: train it first)."""
        if kind is IndexKind.FLAT:
            return cls(path, model_id, dim)
        structure = faiss.index_factory(dim, f"IVF{nlist_for(count)},SQ8", faiss.METRIC_INNER_PRODUCT)
        return cls(path, model_id, dim, structure, nprobe=nprobe)

    def train(self, sample: np.ndarray) -> None:
        """Learn the IVF centroids and the quantiser's ranges from a sample of the gallery."""
        faiss.extract_index_ivf(self._index).cp.seed = 1234  # the same gallery, the same lists
        with _all_cores():
            self._index.train(np.ascontiguousarray(sample, dtype=np.float32).reshape(-1, self.dim))

    @classmethod
    def open(cls, directory: Path, model_id: str, dim: int, *, nprobe: int = 1) -> FaissIndex:
        """Load the model's index from ``directory``, or start an empty flat one; ``nprobe``:
        the lists an IVF index scans per search."""
        path = index_file_for(directory, model_id)
        if not path.exists():
            return cls(path, model_id, dim)
        index = faiss.read_index(str(path))
        meta_path = path.with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        if meta.get("model_id", model_id) != model_id or index.d != dim:
            raise ModelMismatchError(
                f"{path} holds {meta.get('model_id')} ({index.d}-d) vectors, not {model_id} ({dim}-d)"
            )
        # The meta file is written after the index file; if a crash fell between the two,
        # an unknown max id sends the gallery to a full consistency check.
        saved_max_id = meta.get("max_id") if meta.get("count") == index.ntotal else -1
        return cls(path, model_id, dim, index, saved_max_id, nprobe=nprobe)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray, model_id: str) -> None:
        ids, vectors = checked_batch(self, ids, vectors, model_id)
        if len(ids) >= BULK:
            with _all_cores():
                self._index.add_with_ids(vectors, ids)
        elif len(ids):
            self._index.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> int:
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        return int(self._index.remove_ids(ids)) if len(ids) else 0

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        k = min(k, len(self))
        if k == 0:
            empty = np.empty((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        scores, ids = self._index.search(queries, k)
        return scores, ids

    def ids(self) -> np.ndarray:
        if not isinstance(self._index, faiss.IndexIVF):
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)
        lists = self._index.invlists
        held = [
            faiss.rev_swig_ptr(lists.get_ids(number), size).copy()
            for number in range(self._index.nlist)
            if (size := lists.list_size(number))
        ]
        return np.concatenate(held).astype(np.int64) if held else np.empty(0, dtype=np.int64)

    def save(self) -> None:
        """Write the index file, then its meta file, each atomically."""
        with atomic_path(self.path) as temporary:
            faiss.write_index(self._index, str(temporary))
        ids = self.ids()
        self.saved_max_id = int(ids.max()) if len(ids) else None
        atomic_write_text(
            self.meta_path,
            json.dumps(
                {
                    "model_id": self.model_id,
                    "dim": self.dim,
                    "kind": self.kind,
                    "count": len(ids),
                    "max_id": self.saved_max_id,
                    "saved_at": datetime.now(UTC).isoformat(),
                },
                indent=2,
            ),
        )

    def size_on_disk(self) -> int:
        return sum(p.stat().st_size for p in (self.path, self.meta_path) if p.exists())
