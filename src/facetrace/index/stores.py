"""Which vector store holds a gallery: FAISS files (one machine) or Milvus (past one machine).

The gallery asks here for its index and never names a backend itself. FAISS indexes are
files, read again for searches only when the file or the catalog changed, and shared by
concurrent searches as copies that are replaced, never changed (:class:`_FaissFiles`); a Milvus
collection is shared by every process that opens it, so each process keeps one connection
per collection and closes it at exit.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
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


def index_for_search(
    settings: Settings,
    model_id: str,
    dim: int,
    in_step: Callable[[VectorIndex], bool],
    catch_up: Callable[[VectorIndex], object],
) -> VectorIndex:
    """This process's copy of the model's index for searches, in step with the catalog: ``in_step``
    tells (cheaply, changing nothing) whether an index holds the catalog's faces, ``catch_up``
    adds and removes vectors until it does.

    A FAISS copy handed out here is never changed afterwards, so any number of searches read it at
    once (concurrent FAISS searches of one index are safe; an add or a remove during one is not).
    When the copy lags (the file changed, or the catalog did since), a new one is read from the
    file, caught up, and then put in the old one's place in one step: a search holds the old copy
    or the new one, never one half changed. A Milvus collection is shared live and caught up in place.
    """
    if settings.vector_store == "milvus":
        collection = _MILVUS.get(settings, model_id, dim)
        if not in_step(collection):
            with _MILVUS.catching_up:
                if not in_step(collection):
                    catch_up(collection)
        return collection
    return _FAISS_FILES.get(settings.index_dir, model_id, dim, settings.index_scan_share, in_step, catch_up)


#: Which index file is on disk (inode, mtime, size): a new stamp means another writer saved it.
Stamp = tuple[int, int, int] | None


class _FaissFiles:
    """The FAISS indexes searches use in this process, keyed by file: the copy in use, and the
    file's stamp when it was read.

    A long-running server would otherwise read the whole index file for every search. Copies are
    replaced, never changed (see :func:`index_for_search`); one thread per file makes the next one
    while the others wait for it, so no two read the same file at once.
    """

    def __init__(self) -> None:
        self._copies: dict[Path, tuple[Stamp, FaissIndex]] = {}
        self._making: dict[Path, threading.Lock] = {}
        self._lock = threading.Lock()  # guards the two dicts, held for a lookup or an assignment

    def get(
        self,
        directory: Path,
        model_id: str,
        dim: int,
        scan_share: float,
        in_step: Callable[[FaissIndex], bool],
        catch_up: Callable[[FaissIndex], object],
    ) -> FaissIndex:
        path = index_file_for(directory, model_id)
        current = self._current(path)
        if current is not None and in_step(current):
            return current
        with self._lock:
            making = self._making.setdefault(path, threading.Lock())
        with making:
            current = self._current(path)  # another thread may have made it meanwhile
            if current is not None and in_step(current):
                return current
            stamp = _stamp(path)
            fresh = open_faiss_index(directory, model_id, dim, scan_share=scan_share)
            catch_up(fresh)
            with self._lock:
                self._copies[path] = (stamp, fresh)
            return fresh

    def _current(self, path: Path) -> FaissIndex | None:
        """The copy in use, unless the file changed since it was read (or there is no file yet: a
        gallery never saved is read from the catalog each time)."""
        stamp = _stamp(path)
        with self._lock:
            cached = self._copies.get(path)
        if cached is None or stamp is None or cached[0] != stamp:
            return None
        return cached[1]


def _stamp(path: Path) -> Stamp:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


class _MilvusCollections:
    """One open connection per Milvus collection in this process, closed when the process ends."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], MilvusIndex] = {}
        self._lock = threading.Lock()
        #: Held while a collection is caught up with the catalog, so two searches never both add its faces.
        self.catching_up = threading.Lock()
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
