"""Which FAISS structure an index file holds, and which one a new index gets.

The one module that knows every structure: :mod:`~facetrace.index.ivf_pq_index` builds on
:mod:`~facetrace.index.faiss_index`, so the choice between them sits above both.
"""

from __future__ import annotations

import json
from pathlib import Path

import faiss

from facetrace.core.errors import ModelMismatchError
from facetrace.index.faiss_index import ARCHIVE_MAGIC, FaissIndex, FlatIndex, index_file_for
from facetrace.index.ivf_pq_index import IvfPqIndex
from facetrace.index.kinds import IndexKind


def empty_faiss_index(
    path: Path, model_id: str, dim: int, kind: IndexKind, *, count: int, scan_share: float
) -> FaissIndex:
    """A new, empty index of ``kind`` sized for about ``count`` faces (compressed: train it first)."""
    if kind is IndexKind.FLAT:
        return FlatIndex(path, model_id, dim)
    return IvfPqIndex.empty(path, model_id, dim, count=count, scan_share=scan_share)


def open_faiss_index(directory: Path, model_id: str, dim: int, *, scan_share: float = 1.0) -> FaissIndex:
    """Load the model's index from ``directory``, or start an empty flat one; ``scan_share``:
    the share of its IVF lists a compressed index scans per search."""
    path = index_file_for(directory, model_id)
    if not path.exists():
        return FlatIndex(path, model_id, dim)
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    with path.open("rb") as file:
        compressed = file.read(len(ARCHIVE_MAGIC)) == ARCHIVE_MAGIC
    index: FaissIndex
    if compressed:
        index = IvfPqIndex.read(path, model_id, scan_share=scan_share)
    else:
        stored = faiss.read_index(str(path))
        if not isinstance(stored, faiss.IndexIDMap2):
            raise ValueError(f"{path} is not a flat index of face ids but a {type(stored).__name__}")
        index = FlatIndex(path, model_id, dim, stored)
    if meta.get("model_id", model_id) != model_id or index.dim != dim:
        raise ModelMismatchError(
            f"{path} holds {meta.get('model_id')} ({index.dim}-d) vectors, not {model_id} ({dim}-d)"
        )
    # The meta file is written after the index file; if a crash fell between the two,
    # an unknown max id sends the gallery to a full consistency check.
    index.saved_max_id = meta.get("max_id") if meta.get("count") == len(index) else -1
    return index
