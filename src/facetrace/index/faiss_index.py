"""Inner-product search with FAISS, persisted as one file per embedding model.

Two structures, both keyed by the catalog's face ids and both deleting physically, which is
what erasure requires:

* ``flat`` — :class:`FlatIndex`, ``IndexIDMap2(IndexFlatIP)``: exact, 512 B per 128-d face.
  The default, and a plain FAISS file.
* ``ivf-pq`` — :class:`~facetrace.index.ivf_pq_index.IvfPqIndex`: IVF lists of 4-bit PQ codes
  propose candidates that 8-bit codes of each face order again; about 180 B per face, for
  galleries of millions. Its file is a NumPy ``.npz`` archive of its parts (told apart from a
  FAISS file by the archive's first bytes). FAISS HNSW is not offered: it cannot delete.

A file is read by :func:`~facetrace.index.faiss_files.open_faiss_index` and rewritten atomically
on :meth:`FaissIndex.save`; between saves the catalog stays the source of truth (see
:mod:`facetrace.gallery.gallery`).
"""

from __future__ import annotations

import json
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path

import faiss
import numpy as np

from facetrace.core.atomic import atomic_path, atomic_write_text
from facetrace.index.base import checked_batch
from facetrace.index.kinds import IndexKind

#: One OpenMP thread. Facetrace searches one probe at a time and adds vectors as images arrive,
#: while worker processes take the cores; FAISS's default thread pool then only spins against
#: them. Measured on 2 cores: ingest of 600 dev photos 24 -> 54 images/s, and one flat search
#: at 100k 24 -> 2.5 ms (``bench/index_choice.py``).
faiss.omp_set_num_threads(1)
#: A batch this large is a rebuild, not an image's faces: it gets every core (see :func:`all_cores`).
BULK = 10_000
#: The first bytes of a ZIP archive, which is what ``numpy.savez`` writes.
ARCHIVE_MAGIC = b"PK\x03\x04"


@contextmanager
def all_cores() -> Iterator[None]:
    """Training and bulk adds are one long job with nothing else running: use every core."""
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(1)


def cores_for(batch: int) -> AbstractContextManager[None]:
    """Every core for a bulk add of ``batch`` vectors, the one thread otherwise."""
    return all_cores() if batch >= BULK else nullcontext()


def index_file_for(directory: Path, model_id: str) -> Path:
    """One file per model, so vectors of two models can never meet in one index."""
    return directory / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', model_id)}.faiss"


class FaissIndex(ABC):
    """One model's FAISS index and its file: what every structure shares (saving, ids).

    :func:`~facetrace.index.faiss_files.open_faiss_index` and
    :func:`~facetrace.index.faiss_files.empty_faiss_index` give the structure's own class.
    """

    kind: IndexKind
    #: Whether a search may miss or misorder neighbours (the gallery then re-ranks exactly).
    approximate: bool

    def __init__(self, path: Path, model_id: str, dim: int, saved_max_id: int | None = None) -> None:
        self.path = path
        self.model_id = model_id
        self.dim = dim
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
    def needs_training(self) -> bool:
        return False

    @property
    def training_size(self) -> int:
        """How many sample vectors :meth:`train` wants (0 for a structure that learns nothing)."""
        return 0

    def train(self, sample: np.ndarray) -> None:
        raise TypeError(f"a {self.kind} index learns nothing from a sample")

    @property
    def parameters(self) -> dict[str, int]:
        """The structure's search parameters, for reports (none for an exact index)."""
        return {}

    @abstractmethod
    def wait_until_warm(self) -> None:
        """Return once what searches read from disk is in memory."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def add(self, ids: np.ndarray, vectors: np.ndarray, model_id: str) -> None: ...

    @abstractmethod
    def remove(self, ids: np.ndarray) -> int: ...

    @abstractmethod
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    @abstractmethod
    def ids(self) -> np.ndarray: ...

    @abstractmethod
    def search_by_faiss_alone(self, queries: np.ndarray, k: int) -> np.ndarray:
        """Face ids of the top ``k`` per query from FAISS's own call for this structure, with no
        Facetrace code around it: the bare-FAISS peer of the scale benchmark."""

    @abstractmethod
    def _write(self, path: Path) -> None:
        """Write the structure to ``path`` (a temporary file :meth:`save` moves into place)."""

    def save(self) -> None:
        """Write the index file, then its meta file, each atomically."""
        with atomic_path(self.path) as temporary:
            self._write(temporary)
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


class FlatIndex(FaissIndex):
    """Exact search: every vector as float32, keyed by face id."""

    kind = IndexKind.FLAT
    approximate = False

    def __init__(self, path: Path, model_id: str, dim: int, index: faiss.IndexIDMap2 | None = None) -> None:
        super().__init__(path, model_id, dim)
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.dim = int(self._index.d)

    def wait_until_warm(self) -> None:
        """Nothing to wait for: a flat index is read into memory whole."""

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray, model_id: str) -> None:
        ids, vectors = checked_batch(self, ids, vectors, model_id)
        if len(ids):
            with cores_for(len(ids)):
                self._index.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> int:
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        # faiss's stubs name only an IDSelector; its wrapper takes an id array and builds one.
        return int(self._index.remove_ids(ids)) if len(ids) else 0  # type: ignore[arg-type]

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        k = min(k, len(self))
        if k == 0:
            empty = np.empty((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        scores, ids = self._index.search(queries, k)
        return scores, ids

    def search_by_faiss_alone(self, queries: np.ndarray, k: int) -> np.ndarray:
        found: np.ndarray = self._index.search(queries, k)[1]
        return found

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def _write(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))
