"""The structures a FAISS gallery index can take (see :mod:`facetrace.index.faiss_index`)."""

from __future__ import annotations

from enum import StrEnum


class IndexKind(StrEnum):
    FLAT = "flat"  # exact
    IVF_SQ8 = "ivf-sq8"  # compressed: inverted lists of 8-bit codes, re-ranked exactly


def kind_for(faces: int, compress_at: int) -> IndexKind:
    """The structure a gallery of ``faces`` gets: compressed from ``compress_at`` faces (0: never)."""
    return IndexKind.IVF_SQ8 if 0 < compress_at <= faces else IndexKind.FLAT
