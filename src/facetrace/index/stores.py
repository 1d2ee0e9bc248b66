"""Which vector store holds a gallery: FAISS files (one machine) or Milvus (past one machine).

The gallery asks here for its index and never names a backend itself. FAISS indexes are
files, read again for searches only when the file changed (:class:`_FaissFiles`); a Milvus
collection is shared by every process that opens it, so each process keeps one connection
per collection and closes it at exit.
"""

from __future__ import annotations

import atexit
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from facetrace.core.config import Settings
from facetrace.index.base import VectorIndex
from facetrace.index.faiss_files import open_faiss_index
from facetrace.index.faiss_index import FaissIndex, index_file_for

if TYPE_CHECKING:
    from facetrace.index.milvus_index import MilvusIndex


def open_index(settings: Settings, model_id: str, dim: int) -> VectorIndex:
    """The model's index as stored now (an ingest or an erasure works on this one)."""
    if settings.vector_store == "milvus":
        return _MILVUS.get(settings, model_id, dim)
    return open_faiss_index(settings.index_dir, model_id, dim, scan_share=settings.index_scan_share)


def index_for_search(settings: Settings, model_id: str, dim: int) -> VectorIndex:
    """This process's copy of the model's index, for searches (read again only when it changed)."""
    if settings.vector_store == "milvus":
        return _MILVUS.get(settings, model_id, dim)
    return _FAISS_FILES.get(settings.index_dir, model_id, dim, settings.index_scan_share)


class _FaissFiles:
    """The FAISS indexes searches use in this process, keyed by file, with the file's state when read.

    A long-running server would otherwise read the whole index file for every search.
    """

    def __init__(self) -> None:
        self._entries: dict[Path, tuple[tuple[int, int] | None, FaissIndex]] = {}
        self._lock = threading.Lock()

    def get(self, directory: Path, model_id: str, dim: int, scan_share: float) -> FaissIndex:
        path = index_file_for(directory, model_id)
        stat = path.stat() if path.exists() else None
        stamp = (stat.st_mtime_ns, stat.st_size) if stat else None
        with self._lock:
            cached = self._entries.get(path)
            if cached is None or cached[0] != stamp or stamp is None:
                cached = (stamp, open_faiss_index(directory, model_id, dim, scan_share=scan_share))
                self._entries[path] = cached
            return cached[1]


class _MilvusCollections:
    """One open connection per Milvus collection in this process, closed when the process ends."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], MilvusIndex] = {}
        self._lock = threading.Lock()
        atexit.register(self.close_all)

    def get(self, settings: Settings, model_id: str, dim: int) -> MilvusIndex:
        from facetrace.index.milvus_index import MilvusIndex  # pymilvus only where Milvus is used

        uri = settings.milvus_uri or str(settings.data_dir / "milvus.db")
        with self._lock:
            if (uri, model_id) not in self._open:
                if not settings.milvus_uri:
                    settings.data_dir.mkdir(parents=True, exist_ok=True)
                token = settings.milvus_token.get_secret_value() if settings.milvus_token else None
                self._open[(uri, model_id)] = MilvusIndex.open(
                    uri, model_id, dim, token=token, index_type=settings.milvus_index_type
                )
            return self._open[(uri, model_id)]

    def close_all(self) -> None:
        with self._lock:
            for index in self._open.values():
                index.close()
            self._open.clear()


_FAISS_FILES = _FaissFiles()
_MILVUS = _MilvusCollections()
