"""The interface every vector store behind Facetrace keeps."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from facetrace.core.errors import ModelMismatchError


class VectorIndex(Protocol):
    """Face templates of one model, keyed by catalog face id; inner product = cosine similarity.

    ``add`` refuses vectors of another model (:class:`~facetrace.core.errors.ModelMismatchError`);
    ``remove`` deletes for real, so a removed face can never be returned again.
    """

    model_id: str
    dim: int
    #: The highest id held when last saved (None: never saved or empty; -1: check fully).
    saved_max_id: int | None
    #: The catalog's highest face id when this index was last checked against it.
    synced_max_id: int | None

    @property
    def kind(self) -> str:
        """The structure or backend (a class attribute of each: read-only here)."""
        ...

    @property
    def approximate(self) -> bool:
        """Whether a search may miss or misorder neighbours (the gallery then re-ranks exactly)."""
        ...

    @property
    def location(self) -> str:
        """Where the vectors are, for messages."""
        ...

    def __len__(self) -> int: ...

    def add(self, ids: np.ndarray, vectors: np.ndarray, model_id: str) -> None: ...

    def remove(self, ids: np.ndarray) -> int: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` per query as ``(scores, ids)``, each shaped (n_queries, ≤k), best first."""
        ...

    def ids(self) -> np.ndarray: ...

    def save(self) -> None: ...

    def size_on_disk(self) -> int: ...


def checked_batch(
    index: VectorIndex, ids: np.ndarray, vectors: np.ndarray, model_id: str
) -> tuple[np.ndarray, np.ndarray]:
    """``ids`` and ``vectors`` as the arrays every backend stores (int64, float32 rows of the
    index's dimension), after refusing another model's vectors and ids that do not pair up."""
    if model_id != index.model_id:
        raise ModelMismatchError(
            f"refusing to add {model_id} vectors to the {index.model_id} index at {index.location}: "
            "templates of different models are not comparable"
        )
    vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, index.dim)
    ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
    if len(ids) != len(vectors):
        raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
    return ids, vectors
