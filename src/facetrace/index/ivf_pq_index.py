"""The compressed gallery index (``ivf-pq``): 4-bit PQ codes propose, 8-bit codes decide.

Why two stages: templates of different people are spread almost evenly over the sphere (the
covariance of the 2,190 dev templates has an effective dimension of 111 of 128, see
``bench/template_structure.py``), so the ten faces nearest a probe lie in many IVF lists and a
search must scan most of them. At 1M faces IVF with 8-bit codes found 0.80 of the exact top 10
scanning 13% of its lists in 3 ms, and 0.989 scanning half of them, in 11 ms. 4-bit PQ codes
in FAISS's fast-scan layout (32 B for 128-d) are scanned several times faster but rank too
coarsely on their own, so they only
propose :data:`REFINE_CANDIDATES` faces, which each face's 8-bit scalar codes (128 B) order
again. The gallery then re-ranks the best of those with the catalog's float32 templates.

Rows: each face added takes the next row of the 8-bit code store; the IVF lists hold row
numbers, and ``row_ids`` maps a row to its face id. Removing a face takes its codes out of its
IVF list, overwrites its 8-bit codes with zeros and marks its row empty (-1), so nothing of it
remains in memory or in the next file; empty rows are reclaimed by the next rebuild
(``facetrace reindex``).

Files: the index file (an ``.npz`` archive: ``row_ids``, the 8-bit quantiser's ranges, and the
names of the two files beside it), the IVF lists with their PQ codes (a FAISS file, about 40 B
per face) and the 8-bit codes, memory-mapped (:class:`~facetrace.index.code_store.CodeStore`).
FAISS writes and reads the lists file itself, so a save or an open never holds a second copy of
the lists in memory (at 100M faces the copy was 4.8 GB). Each save writes a new lists file and a
rebuild a new codes file, so a process still searching the old index keeps reading the old
ones; the archive is the commit point, and the files it does not name are deleted after it.
An archive written before the lists had a file of their own holds them as its ``coarse`` array.
"""

from __future__ import annotations

import math
import os
import re
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import faiss
import numpy as np

from facetrace.index.base import checked_batch
from facetrace.index.code_store import CodeStore, with_room
from facetrace.index.faiss_index import FaissIndex, all_cores, cores_for
from facetrace.index.kinds import IndexKind

#: Faces the PQ stage proposes per query for the 8-bit codes to order. At 1M faces, 300 kept
#: 0.97 of the exact top 10 and 1,000 kept 0.99, for about 1 ms more.
REFINE_CANDIDATES = 1000
#: Training points per IVF list: FAISS's k-means wants at least 39; more gives steadier centroids.
TRAINING_POINTS_PER_LIST = 64
#: The smallest sample the 4-bit PQ is trained on: 16 centroids per sub-space, 39 points each.
MIN_TRAINING = 16 * 39
#: One query's IVF lists are scanned in this many parts at once (see :meth:`IvfPqIndex._propose`).
PARTS = min(os.cpu_count() or 1, 8)
_SCANNERS = ThreadPoolExecutor(PARTS, thread_name_prefix="ivf-pq-scan") if PARTS > 1 else None
#: A removed face's row in ``row_ids``.
EMPTY = -1


def side_files(index_path: Path) -> list[Path]:
    """The code and lists files beside the index file ``index_path``: its own, and any left over."""
    ours = re.compile(rf"{re.escape(index_path.stem)}\.(codes|lists)-[0-9a-f]{{8}}")
    return [p for p in index_path.parent.glob(f"{index_path.stem}.*-*") if ours.fullmatch(p.name)]


def _side_file(index_path: Path, kind: str) -> Path:
    """A new file name beside ``index_path`` for its ``kind`` ("codes" or "lists")."""
    return index_path.with_name(f"{index_path.stem}.{kind}-{secrets.token_hex(4)}")


#: The most IVF lists an index has. Building assigns every face to its nearest list by comparing
#: it with every list's centroid, and nothing faster keeps the assignment right on these evenly
#: spread templates (``bench/coarse_assignment.py``: 20,000 lists take 1.4 hours of 2 cores for
#: 100M faces, and an HNSW graph over them is faster only when it misassigns a third of them).
MAX_LISTS = 8192


def nlist_for(count: int) -> int:
    """IVF lists for a gallery of ``count`` faces: about 2 sqrt(N), never fewer than 39 faces each
    and never more than :data:`MAX_LISTS` (from about 17M faces on).

    Fast-scan codes are read 32 at a time, so long lists scan faster per code: at 1M faces
    1,000 to 4,000 lists were tried and 2,000 gave the best recall for the time."""
    return max(1, min(round(2 * math.sqrt(max(count, 1))), count // 39, MAX_LISTS))


class IvfPqIndex(FaissIndex):
    """IVF lists of 4-bit PQ codes (FAISS fast scan) over 8-bit scalar codes, keyed by face id."""

    kind = IndexKind.IVF_PQ
    approximate = True

    def __init__(
        self,
        path: Path,
        model_id: str,
        coarse: faiss.IndexIVF,
        quantizer: faiss.ScalarQuantizer,
        codes: CodeStore,
        row_ids: np.ndarray,
        *,
        scan_share: float,
    ) -> None:
        super().__init__(path, model_id, int(coarse.d))
        self._coarse = coarse
        self._quantizer = quantizer
        self._codes = codes
        self._row_ids = np.array(row_ids, dtype=np.int64)  # may be longer than the rows in use
        self._faiss_refine: faiss.IndexScalarQuantizer | None = None
        self._warming: threading.Thread | None = None
        #: The lists file the index was last read from or saved to (None: never saved).
        self._lists: Path | None = None
        self.scan(scan_share)

    def scan(self, share: float) -> None:
        """Scan ``share`` of the IVF lists per search (at least one)."""
        self._coarse.nprobe = max(1, min(self._coarse.nlist, round(share * self._coarse.nlist)))

    @classmethod
    def empty(cls, path: Path, model_id: str, dim: int, *, count: int, scan_share: float) -> IvfPqIndex:
        """An untrained index sized for about ``count`` faces."""
        subquantizers = dim // 2 if dim % 2 == 0 else dim  # two dimensions per 4-bit code
        coarse = _ivf(
            faiss.index_factory(
                dim, f"IVF{nlist_for(count)},PQ{subquantizers}x4fs", faiss.METRIC_INNER_PRODUCT
            )
        )
        quantizer = faiss.ScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit)
        codes = CodeStore(_side_file(path, "codes"), dim, owned=True)
        return cls(
            path, model_id, coarse, quantizer, codes, np.empty(0, dtype=np.int64), scan_share=scan_share
        )

    @classmethod
    def read(cls, path: Path, model_id: str, *, scan_share: float) -> IvfPqIndex:
        coarse, lists, ranges, row_ids, codes_file = _stored_parts(path)
        codes = CodeStore(path.with_name(codes_file), int(coarse.d), len(row_ids))
        quantizer = faiss.ScalarQuantizer(int(coarse.d), faiss.ScalarQuantizer.QT_8bit)
        faiss.copy_array_to_vector(ranges, quantizer.trained)
        index = cls(path, model_id, coarse, quantizer, codes, row_ids, scan_share=scan_share)
        index._lists = lists
        # Every search reads rows of the codes file; bring it into the page cache meanwhile.
        index._warming = threading.Thread(target=codes.warm, name="ivf-pq-warm", daemon=True)
        index._warming.start()
        return index

    def wait_until_warm(self) -> None:
        """Return once the codes file of an index just read is in the page cache (as far as
        :meth:`CodeStore.warm` reads it)."""
        if self._warming is not None:
            self._warming.join()

    def _write(self, path: Path) -> None:
        # The codes and the lists first, each durable: the archive commits them.
        self._codes.commit()
        lists = _side_file(self.path, "lists")
        faiss.write_index(self._coarse, str(lists))
        with lists.open("rb") as file:
            os.fsync(file.fileno())
        self._lists = lists
        with path.open("wb") as file:
            np.savez(
                file,
                lists_file=np.array(lists.name),
                quantizer=faiss.vector_to_array(self._quantizer.trained),
                row_ids=self.row_ids,
                codes_file=np.array(self._codes.path.name),
            )

    def save(self) -> None:
        super().save()
        for stale in side_files(self.path):  # an older index's, or a save's that never finished
            if stale not in (self._codes.path, self._lists):
                stale.unlink(missing_ok=True)

    def size_on_disk(self) -> int:
        lists = self._lists.stat().st_size if self._lists is not None else 0
        return super().size_on_disk() + self._codes.path.stat().st_size + lists

    @property
    def row_ids(self) -> np.ndarray:
        """Face id per row of the 8-bit code store (:data:`EMPTY` for a removed face); a view."""
        return self._row_ids[: len(self._codes)]

    @property
    def parameters(self) -> dict[str, int]:
        return {
            "nlist": int(self._coarse.nlist),
            "nprobe": int(self._coarse.nprobe),
            "refine_candidates": REFINE_CANDIDATES,
        }

    @property
    def needs_training(self) -> bool:
        return not self._coarse.is_trained

    @property
    def training_size(self) -> int:
        return int(self._coarse.nlist) * TRAINING_POINTS_PER_LIST

    def train(self, sample: np.ndarray) -> None:
        """Learn the IVF centroids, the PQ codebooks and the 8-bit codes' ranges from a sample."""
        sample = np.ascontiguousarray(sample, dtype=np.float32).reshape(-1, self.dim)
        if not len(sample):
            raise ValueError("a compressed index is trained on the gallery's faces, and it has none")
        if len(sample) < MIN_TRAINING:
            sample = _jittered_to(sample, MIN_TRAINING)
        faiss.extract_index_ivf(self._coarse).cp.seed = 1234  # the same gallery, the same lists
        with all_cores():
            self._coarse.train(sample)
        self._quantizer.train(sample)

    def __len__(self) -> int:
        return int(self._coarse.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray, model_id: str) -> None:
        ids, vectors = checked_batch(self, ids, vectors, model_id)
        if not len(ids):
            return
        start = len(self._codes)
        end = start + len(ids)
        self._row_ids = with_room(self._row_ids, start, end, fill=EMPTY)
        self._codes.append(self._quantizer.compute_codes(vectors))
        with cores_for(len(ids)):
            self._coarse.add_with_ids(vectors, np.arange(start, end, dtype=np.int64))
        self._row_ids[start:end] = ids

    def remove(self, ids: np.ndarray) -> int:
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        rows = np.flatnonzero(np.isin(self.row_ids, ids)) if len(ids) else np.empty(0, dtype=np.int64)
        if not len(rows):
            return 0
        # faiss's stubs name only an IDSelector; its wrapper takes an id array and builds one.
        self._coarse.remove_ids(rows)  # type: ignore[arg-type]
        self._codes.zero(rows)
        self._row_ids[rows] = EMPTY
        return len(rows)

    def ids(self) -> np.ndarray:
        rows = self.row_ids
        held: np.ndarray = rows[rows != EMPTY].copy()
        return held

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The best ``k`` per query by the 8-bit codes among the PQ stage's candidates; rows are
        padded with id -1 (score -inf) when fewer faces were found."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        k = min(k, len(self))
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        found = np.full((len(queries), k), -1, dtype=np.int64)
        if k == 0:
            return scores, found
        candidates = self._propose(queries, max(k, REFINE_CANDIDATES))
        low, span = self._ranges()
        for number, (query, rows) in enumerate(zip(queries, candidates, strict=True)):
            rows = np.sort(rows[rows >= 0])  # sorted: the mapped file is read in order
            codes = self._codes.rows(rows)
            # The 8-bit codes' inner product without decoding: x = low + (code + 0.5) / 255 * span.
            estimates = codes.astype(np.float32) @ (query * span / 255) + (low + span / 510) @ query
            best = np.argsort(-estimates, kind="stable")[:k]
            scores[number, : len(best)] = estimates[best]
            found[number, : len(best)] = self._row_ids[rows[best]]
        return scores, found

    def _propose(self, queries: np.ndarray, wanted: int) -> np.ndarray:
        """Rows of the ``wanted`` best faces per query by their PQ codes, the query's lists
        scanned in :data:`PARTS` parts at once.

        FAISS scans the lists of a single query on one thread whatever its thread count (tried
        with every fast-scan implementation: no gain); the parts run in Python threads, each a
        FAISS call that releases the GIL, and their best are merged. Measured on 2 cores at 1M
        faces (``facetrace bench search``): 5.11 -> 3.08 ms for the 1,300 lists scanned by default."""
        nprobe = int(self._coarse.nprobe)
        parts = min(PARTS, nprobe)
        if parts < 2 or _SCANNERS is None:
            proposed: np.ndarray = self._coarse.search(queries, wanted)[1]
            return proposed
        centroid_scores, lists = self._coarse.quantizer.search(queries, nprobe)
        count = len(queries)

        def scan(part: int) -> tuple[np.ndarray, np.ndarray]:
            mine = np.ascontiguousarray(lists[:, part::parts])
            mine_scores = np.ascontiguousarray(centroid_scores[:, part::parts])
            params = faiss.SearchParametersIVF()
            params.nprobe = mine.shape[1]
            scores = np.empty((count, wanted), dtype=np.float32)
            rows = np.empty((count, wanted), dtype=np.int64)
            # The raw SWIG call (absent from faiss's stubs): the wrapper has no parameters argument.
            self._coarse.search_preassigned_c(  # type: ignore[attr-defined]
                count,
                faiss.swig_ptr(queries),
                wanted,
                faiss.swig_ptr(mine),
                faiss.swig_ptr(mine_scores),
                faiss.swig_ptr(scores),
                faiss.swig_ptr(rows),
                False,
                params,
            )
            return scores, rows

        found = list(_SCANNERS.map(scan, range(parts)))
        scores = np.hstack([part_scores for part_scores, _ in found])
        rows = np.hstack([part_rows for _, part_rows in found])
        best = np.argsort(-scores, axis=1, kind="stable")[:, :wanted]  # a part short of faces pads with -inf
        return np.take_along_axis(rows, best, axis=1)

    def search_by_faiss_alone(self, queries: np.ndarray, k: int) -> np.ndarray:
        """FAISS's ``IndexRefine`` over the same PQ lists and a copy of the 8-bit codes in FAISS's
        own index (valid while no face was removed: it needs as many 8-bit rows as PQ codes)."""
        if self._faiss_refine is None or self._faiss_refine.ntotal != len(self._codes):
            self._faiss_refine = faiss.IndexScalarQuantizer(
                self.dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )
            faiss.copy_array_to_vector(
                faiss.vector_to_array(self._quantizer.trained), self._faiss_refine.sq.trained
            )
            self._faiss_refine.is_trained = True
            self._faiss_refine.add_sa_codes(self._codes.all())
        refine = faiss.IndexRefine(self._coarse, self._faiss_refine)
        refine.k_factor = max(k, REFINE_CANDIDATES) / k
        rows = refine.search(queries, k)[1]
        return np.where(rows >= 0, self._row_ids[rows], -1)

    def _ranges(self) -> tuple[np.ndarray, np.ndarray]:
        """Each dimension's lowest value and span, as the 8-bit quantiser learnt them."""
        trained = faiss.vector_to_array(self._quantizer.trained)
        return trained[: self.dim], trained[self.dim :]


def _stored_parts(path: Path) -> tuple[faiss.IndexIVF, Path | None, np.ndarray, np.ndarray, str]:
    """The IVF lists of the index whose archive is at ``path``, the file they came from (None in
    an archive that holds them), the 8-bit quantiser's ranges, the row ids and the codes file's name.

    Another process's save may replace the archive, and delete the lists file it named, between
    reading the one and the other: the archive is then read again."""
    attempts = 3
    while True:
        attempts -= 1
        with np.load(path) as stored:
            ranges, row_ids, codes_file = stored["quantizer"], stored["row_ids"], str(stored["codes_file"])
            if "lists_file" not in stored:  # written before the lists had a file of their own
                return _ivf(faiss.deserialize_index(stored["coarse"])), None, ranges, row_ids, codes_file
            lists = path.with_name(str(stored["lists_file"]))
        try:
            return _ivf(faiss.read_index(str(lists))), lists, ranges, row_ids, codes_file
        except RuntimeError:
            if lists.exists() or not attempts:
                raise


def _ivf(index: faiss.Index) -> faiss.IndexIVF:
    """``index`` as the IVF index it must be (FAISS hands an index back as its own class)."""
    if not isinstance(index, faiss.IndexIVF):
        raise TypeError(f"expected IVF lists, found a {type(index).__name__}")
    return index


def _jittered_to(sample: np.ndarray, size: int) -> np.ndarray:
    """``sample`` and copies of its vectors moved slightly at random, ``size`` rows in all.

    A gallery of a handful of faces (an explicit ``reindex --kind ivf-pq``, or a test) cannot
    train 16 PQ centroids per sub-space; this lets it, and at that size every list is scanned
    and the catalog's templates give the final order anyway."""
    rng = np.random.default_rng(0)
    copies = sample[rng.integers(0, len(sample), size - len(sample))]
    copies = copies + rng.normal(scale=0.02, size=copies.shape).astype(np.float32)
    copies /= np.linalg.norm(copies, axis=1, keepdims=True)
    return np.vstack([sample, copies])
