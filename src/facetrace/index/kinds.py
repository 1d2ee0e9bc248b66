"""The structures a FAISS gallery index can take (see :mod:`facetrace.index.faiss_index`)."""

from __future__ import annotations

from enum import StrEnum


class IndexKind(StrEnum):
    FLAT = "flat"  # exact
    IVF_PQ = "ivf-pq"  # compressed: IVF lists of 4-bit PQ codes, refined by 8-bit codes, re-ranked exactly


def kind_for(faces: int, compress_at: int) -> IndexKind:
    """The structure a gallery of ``faces`` gets: compressed from ``compress_at`` faces (0: never)."""
    return IndexKind.IVF_PQ if 0 < compress_at <= faces else IndexKind.FLAT
