"""Exact re-ranking of an approximate index's candidates.

A compressed index stores 4- and 8-bit codes: good enough to find the right neighbourhood,
too coarse to order close scores. Its candidates are scored again with the float32 templates
(kept by the catalog) and only then cut to the k asked for.
"""

from __future__ import annotations

import numpy as np

#: An approximate index is asked for at least this many candidates per search.
CANDIDATES = 100


def best_by_exact_score(
    ids: np.ndarray, vectors: np.ndarray, query: np.ndarray, k: int
) -> list[tuple[int, float]]:
    """The ``k`` of ``ids`` (with their float32 ``vectors``, one row each) most similar to ``query``,
    as ``(id, score)``, best first."""
    scores = vectors @ query.astype(np.float32)
    order = np.argsort(-scores, kind="stable")[:k]
    return [(int(ids[i]), float(scores[i])) for i in order]
