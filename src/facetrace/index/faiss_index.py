"""Exact inner-product search with FAISS, persisted as one file per embedding model.

``IndexIDMap2(IndexFlatIP)`` keeps the catalog's face ids, answers exactly and
removes vectors physically (``remove_ids`` compacts the stored matrix), which is
what erasure requires. The file is rewritten atomically on :meth:`FaissIndex.save`;
between saves the catalog stays the source of truth (see :mod:`facetrace.gallery`).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import faiss
import numpy as np

from facetrace.atomic import atomic_path, atomic_write_text
from facetrace.errors import ModelMismatchError

#: One OpenMP thread. Facetrace searches one probe at a time and adds vectors as images arrive,
#: while worker processes take the cores; FAISS's default thread pool then only spins against
#: them. Measured on 2 cores: ingest of 600 dev photos 24 -> 54 images/s, and one flat search
#: at 100k 24 -> 2.5 ms (``bench/index_choice.py``).
faiss.omp_set_num_threads(1)


def index_file_for(directory: Path, model_id: str) -> Path:
    """One file per model, so vectors of two models can never meet in one index."""
    return directory / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', model_id)}.faiss"


class FaissIndex:
    """A FAISS flat inner-product index of unit vectors, keyed by face id."""

    kind = "faiss-flat-ip"

    def __init__(
        self,
        path: Path,
        model_id: str,
        dim: int,
        index: faiss.IndexIDMap2 | None = None,
        saved_max_id: int | None = None,
    ) -> None:
        self.path = path
        self.model_id = model_id
        self.dim = dim
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        #: The highest face id in the file when it was last saved (None: never saved, or empty).
        self.saved_max_id = saved_max_id
        #: The catalog's highest face id when this in-memory index was last checked against it.
        self.synced_max_id: int | None = None

    @property
    def meta_path(self) -> Path:
        return self.path.with_suffix(".json")

    @classmethod
    def open(cls, directory: Path, model_id: str, dim: int) -> FaissIndex:
        """Load the model's index from ``directory``, or start an empty one."""
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
        return cls(path, model_id, dim, index, saved_max_id)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray, model_id: str) -> None:
        if model_id != self.model_id:
            raise ModelMismatchError(
                f"refusing to add {model_id} vectors to the {self.model_id} index: "
                "templates of different models are not comparable"
            )
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if len(ids):
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
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

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
