"""Vector indexes: the :class:`VectorIndex` interface and its FAISS implementation."""

from facetrace.index.base import VectorIndex
from facetrace.index.faiss_index import FaissIndex

__all__ = ["FaissIndex", "VectorIndex"]
