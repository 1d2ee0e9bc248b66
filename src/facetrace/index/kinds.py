"""The structures a FAISS gallery index can take (see :mod:`facetrace.index.faiss_index`)."""

from __future__ import annotations

from enum import StrEnum


class IndexKind(StrEnum):
    FLAT = "flat"  # exact
    IVF_SQ8 = "ivf-sq8"  # compressed: inverted lists of 8-bit codes, re-ranked exactly
