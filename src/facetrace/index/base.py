"""The interface every vector store behind Facetrace keeps."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class VectorIndex(Protocol):
    """Face templates of one model, keyed by catalog face id; inner product = cosine similarity.

    ``add`` refuses vectors of another model (:class:`~facetrace.errors.ModelMismatchError`);
    ``remove`` deletes for real, so a removed face can never be returned again.
    """

    model_id: str
    dim: int
    kind: str
    #: Whether a search may miss or misorder neighbours (the gallery then re-ranks exactly).
    approximate: bool
    #: The highest id held when last saved (None: never saved or empty; -1: check fully).
    saved_max_id: int | None
    #: The catalog's highest face id when this index was last checked against it.
    synced_max_id: int | None

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
