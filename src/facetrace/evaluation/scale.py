"""``facetrace bench search``: the gallery index at sizes far beyond the photos at hand, and its peers.

The gallery holds real templates of a labelled folder (the first half of each identity's
photos, and the distractors) padded to N with synthetic templates drawn to match the real
ones' statistics (:mod:`facetrace.evaluation.synthetic`; uniform random vectors would make
every approximate index look broken). The rest of each identity's photos are mated probes.
Templates, galleries and built indexes are cached under ``<data_dir>/bench``.

Measured on the same vectors, one query at a time:

* **facetrace** — the index the product holds at N (flat below ``FACETRACE_INDEX_COMPRESS_AT``,
  else IVF-PQ scanning ``FACETRACE_INDEX_SCAN_SHARE`` of its lists) searched through
  ``FaissIndex`` and re-ranked exactly like the gallery does. The float32 templates come from a
  memory-mapped file here, from the catalog in the product (its query is not part of this figure).
* **raw FAISS** — the same FAISS structures searched by FAISS alone for k (for IVF-PQ, FAISS's
  ``IndexRefine`` over the same PQ lists and 8-bit codes): Facetrace's overhead.
* **numpy exact** — brute force over all N: the bound, and the truth for recall. A gallery too
  large for memory is read from its file for each query, so that is timed on one query.
* **Python list** — a loop over one array per face, the way deepface's ``find()`` and
  face_recognition's ``compare_faces`` search; timed on at most 1M faces and scaled linearly.

Recall@10 is against exact search over real probes and fresh synthetic queries; mated rank-1
(the probe's own identity first) is given as a share of what exact search achieves. A compressed
index is also measured scanning each of :data:`SCAN_SHARES` of its lists.
"""

from __future__ import annotations

import json
import math
import re
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from facetrace.core.config import Settings
from facetrace.core.errors import FacetraceError
from facetrace.evaluation.dataset import scan_labelled_folder
from facetrace.evaluation.runner import embed_images
from facetrace.evaluation.synthetic import TemplateModel
from facetrace.index.code_store import map_without_read_ahead
from facetrace.index.faiss_files import empty_faiss_index, open_faiss_index
from facetrace.index.faiss_index import FaissIndex, index_file_for
from facetrace.index.ivf_pq_index import IvfPqIndex
from facetrace.index.kinds import IndexKind, kind_for
from facetrace.index.rerank import CANDIDATES, best_by_exact_score

K = 10
SEED = 20240601
SYNTHETIC_QUERIES = 150
LATENCY_QUERIES = 200
EXACT_LATENCY_QUERIES = 10
#: The shares of its lists a compressed index is also measured scanning (``FACETRACE_INDEX_SCAN_SHARE``).
SCAN_SHARES = (0.25, 0.35, 0.5, 0.65, 0.8)
LIST_SCAN_MAX = 1_000_000
CHUNK = 200_000
#: Galleries up to this size are searched by numpy from memory (10M x 128 float32 is 5 GB), and
#: kept as float32 on disk; larger ones are kept as float16 (100M x 128: 25.6 GB, not 51 GB).
IN_MEMORY_MAX_BYTES = 8 * 2**30
#: Raw FAISS's ``IndexRefine`` holds a copy of all the 8-bit codes in memory; beyond this it is
#: not measured (at 100M the copy would be 12.8 GB beside the index and the page cache).
RAW_FAISS_MAX_CODE_BYTES = 4 * 2**30

#: One query (1, dim) -> gallery row numbers of its top K, best first.
Searcher = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class RealTemplates:
    gallery: np.ndarray  # (n, dim) float32
    gallery_labels: np.ndarray
    probes: np.ndarray
    probe_labels: np.ndarray
    model_id: str


@dataclass(frozen=True)
class Measured:
    name: str
    p50_ms: float
    p95_ms: float
    recall_at_10: float
    mated_rank1_share: float


class StoredTemplates:
    """A cached gallery file read as float32 rows, whether it is stored as float32 or float16.

    Everything measured (the index, exact search, the re-rank) sees the same stored values, so
    a float16 gallery is one whose templates were rounded to float16: recall stays exact.

    Runs of rows (a slice) are read through a map the kernel reads ahead in; rows picked here
    and there (the re-rank's hundred) through one that reads only the pages asked for: at 100M
    faces the kernel's 8 MB read-ahead made those hundred rows take hundreds of milliseconds
    instead of about 7 (``bench/mapped_reads.py``)."""

    def __init__(self, stored: np.ndarray) -> None:
        self.stored = stored
        self._picked = stored
        if isinstance(stored, np.memmap) and stored.filename:  # the same file, mapped for scattered rows
            self._picked = map_without_read_ahead(
                Path(stored.filename), stored.shape, stored.dtype, offset=stored.offset
            )

    def __len__(self) -> int:
        return len(self.stored)

    def __getitem__(self, rows: slice | np.ndarray) -> np.ndarray:
        source = self.stored if isinstance(rows, slice) else self._picked
        return np.asarray(source[rows], dtype=np.float32)

    @property
    def dim(self) -> int:
        return int(self.stored.shape[1])

    @property
    def float32_bytes(self) -> int:
        return len(self.stored) * self.dim * 4


def real_templates(settings: Settings, folder: Path, cache: Path) -> RealTemplates:
    """One template per photo of ``folder`` (cached), split into gallery and mated probes."""
    images = scan_labelled_folder(folder)
    by_identity: dict[str | None, list[Path]] = {}
    for image in images:
        by_identity.setdefault(image.identity, []).append(image.path)
    gallery, probes = [], []
    for identity, paths in by_identity.items():
        half = len(paths) if identity is None or len(paths) < 2 else math.ceil(len(paths) / 2)
        gallery += [(p, identity or p.stem) for p in paths[:half]]
        probes += [(p, identity) for p in paths[half:]]
    names = [str(p.relative_to(folder)) for p, _ in gallery + probes]
    path = cache / "real_templates.npz"
    stored = np.load(path) if path.exists() else None
    if stored is not None and list(stored["names"]) == names:
        vectors, found, model_id = stored["vectors"], stored["found"], str(stored["model_id"])
    else:
        embedded = embed_images(settings, [p for p, _ in gallery + probes])
        vectors, found, model_id = embedded.embeddings, embedded.has_face, embedded.model_id
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(path, names=np.array(names), vectors=vectors, found=found, model_id=model_id)
    labels = np.array([label for _, label in gallery + probes])
    in_gallery = np.arange(len(names)) < len(gallery)
    return RealTemplates(
        gallery=np.ascontiguousarray(vectors[in_gallery & found]),
        gallery_labels=labels[in_gallery & found],
        probes=np.ascontiguousarray(vectors[~in_gallery & found]),
        probe_labels=labels[~in_gallery & found],
        model_id=model_id,
    )


def gallery_vectors(real: RealTemplates, size: int, cache: Path) -> StoredTemplates:
    """The real gallery templates, then synthetic ones up to ``size`` rows (a cached memory map,
    float16 when float32 would exceed :data:`IN_MEMORY_MAX_BYTES`)."""
    if size < len(real.gallery):
        raise ValueError(f"--size must be at least the {len(real.gallery)} real gallery templates")
    needed = 2 * real.gallery.shape[1]  # to estimate a covariance matrix of this dimension
    if len(real.gallery) < needed:
        raise ValueError(
            f"{len(real.gallery)} real templates cannot model the synthetic ones: at least {needed} "
            "are needed (use a larger labelled folder)"
        )
    path = cache / f"gallery-{size}.npy"
    if not path.exists():
        partial = path.with_suffix(".partial.npy")
        dtype = np.float32 if size * real.gallery.shape[1] * 4 <= IN_MEMORY_MAX_BYTES else np.float16
        rows = np.lib.format.open_memmap(partial, "w+", dtype, (size, real.gallery.shape[1]))
        rows[: len(real.gallery)] = real.gallery
        model = TemplateModel.fit(real.gallery)
        for number, start in enumerate(range(len(real.gallery), size, CHUNK)):
            count = min(CHUNK, size - start)
            rows[start : start + count] = model.sample(count, seed=SEED + number)
        rows.flush()
        del rows
        partial.rename(path)
    return StoredTemplates(np.load(path, mmap_mode="r"))


def build_index(
    settings: Settings, vectors: StoredTemplates, model_id: str, cache: Path
) -> tuple[FaissIndex, float, float]:
    """The index the product would hold for this gallery (face id = row + 1), opened from its
    files as a server opens it, with its build seconds and the seconds it took to open (its codes
    read into the page cache included)."""
    kind = kind_for(len(vectors), settings.index_compress_at)
    folder = cache / f"index-{len(vectors)}-{kind}"
    built = folder / "build.json"
    if not built.exists():
        build_s = _build(settings, vectors, model_id, folder, kind)
        built.write_text(json.dumps({"build_s": round(build_s, 1)}))
    started = time.perf_counter()
    index = open_faiss_index(folder, model_id, vectors.dim, scan_share=settings.index_scan_share)
    index.wait_until_warm()
    open_s = time.perf_counter() - started
    return index, json.loads(built.read_text())["build_s"], open_s


def _build(
    settings: Settings, vectors: StoredTemplates, model_id: str, folder: Path, kind: IndexKind
) -> float:
    """Build and save the index of ``kind`` over ``vectors`` in ``folder``; its build seconds.

    The index built is not the one measured: FAISS's IVF lists keep up to twice the room their
    codes take while they grow (at 100M, about 10 GiB against the 4.8 GB saved), room that would
    push the codes file out of the page cache."""
    started = time.perf_counter()
    index = empty_faiss_index(
        index_file_for(folder, model_id),
        model_id,
        vectors.dim,
        kind,
        count=len(vectors),
        scan_share=settings.index_scan_share,
    )
    if index.needs_training:
        rows = np.random.default_rng(SEED).choice(
            len(vectors), min(len(vectors), index.training_size), replace=False
        )
        index.train(vectors[np.sort(rows)])
    for start in range(0, len(vectors), CHUNK):
        chunk = vectors[start : start + CHUNK]
        index.add(np.arange(start + 1, start + 1 + len(chunk)), chunk, model_id)
    build_s = time.perf_counter() - started
    folder.mkdir(parents=True, exist_ok=True)
    index.save()
    return build_s


def exact_top(vectors: StoredTemplates, queries: np.ndarray, k: int = K) -> np.ndarray:
    """Exact top-``k`` row numbers per query, by blocks of gallery rows (memory stays bounded)."""
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(vectors), CHUNK):
        scores = queries @ vectors[start : start + CHUNK].T
        top = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        merged_scores = np.hstack([best_scores, np.take_along_axis(scores, top, axis=1)])
        merged_rows = np.hstack([best_rows, top + start])
        keep = np.argsort(-merged_scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(merged_scores, keep, axis=1)
        best_rows = np.take_along_axis(merged_rows, keep, axis=1)
    return best_rows


def facetrace_searcher(index: FaissIndex, vectors: StoredTemplates) -> Searcher:
    """The product's path: the index, then (when approximate) the exact re-rank of its candidates."""

    def search(query: np.ndarray) -> np.ndarray:
        if not index.approximate:
            rows_found: np.ndarray = index.search(query, K)[1][0] - 1
            return rows_found
        _, ids = index.search(query, max(K, CANDIDATES))
        rows = np.sort(ids[0][ids[0] > 0] - 1)  # sorted: sequential reads of the memory map
        ranked = best_by_exact_score(rows, vectors[rows], query[0], K)
        return np.array([row for row, _ in ranked], dtype=np.int64)

    return search


def raw_faiss_searcher(index: FaissIndex) -> Searcher:
    return lambda query: index.search_by_faiss_alone(query, K)[0] - 1


def numpy_searcher(vectors: StoredTemplates) -> Searcher:
    """Brute force with the whole gallery in memory: one matrix-vector product, then the top K.
    A gallery larger than :data:`IN_MEMORY_MAX_BYTES` is streamed from its file in blocks."""
    if vectors.float32_bytes > IN_MEMORY_MAX_BYTES:
        return lambda query: exact_top(vectors, query)[0]
    in_memory = vectors[:]

    def search(query: np.ndarray) -> np.ndarray:
        scores = in_memory @ query[0]
        top = np.argpartition(-scores, K)[:K]
        return top[np.argsort(-scores[top])]

    return search


def python_list_searcher(templates: list[np.ndarray]) -> Searcher:
    """What deepface-style code does: a Python loop over one stored array per face."""

    def search(query: np.ndarray) -> np.ndarray:
        scores = [float(np.dot(template, query[0])) for template in templates]
        return np.argsort(scores)[::-1][:K]

    return search


def own_memory_gib() -> float | None:
    """The memory this process holds of its own now (``RssAnon``; None off Linux), in GiB.

    Unlike the peak resident size, it leaves out the pages of memory-mapped files, which belong
    to the page cache: the codes and templates a search reads, counted once per map."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    found = re.search(r"^RssAnon:\s+(\d+) kB$", status, re.MULTILINE)
    return round(int(found.group(1)) / 2**20, 2) if found else None


def latency_ms(search: Searcher, queries: np.ndarray, *, warm_up: bool = True) -> tuple[float, float]:
    if warm_up:
        search(queries[:1])
    samples = []
    for query in queries:
        started = time.perf_counter()
        search(query.reshape(1, -1))
        samples.append((time.perf_counter() - started) * 1000)
    return round(float(np.percentile(samples, 50)), 3), round(float(np.percentile(samples, 95)), 3)


def run(settings: Settings, folder: Path, size: int, queries_limit: int | None = None) -> dict[str, Any]:
    """Build (or reuse) the gallery of ``size`` and measure Facetrace and its peers on it.

    ``queries_limit``: measure on that many of the queries (real probes and synthetic ones in
    their proportion, drawn at random): at 100M the exact truth for all of them takes 35 minutes."""
    cache = settings.data_dir / "bench"
    real = real_templates(settings, folder, cache)
    vectors = gallery_vectors(real, size, cache)
    codes = {label: number for number, label in enumerate(np.unique(real.gallery_labels))}
    labels = np.full(size, -1, dtype=np.int32)  # synthetic faces are nobody
    labels[: len(real.gallery)] = [codes[label] for label in real.gallery_labels]
    probe_labels = np.array([codes.get(label, -2) for label in real.probe_labels], dtype=np.int32)
    synthetic = TemplateModel.fit(real.gallery).sample(SYNTHETIC_QUERIES, seed=SEED - 1)
    probes = real.probes
    if queries_limit is not None and queries_limit < len(probes) + len(synthetic):
        draw = np.random.default_rng(SEED + 1)
        kept = round(queries_limit * len(probes) / (len(probes) + len(synthetic)))
        chosen = np.sort(draw.choice(len(probes), kept, replace=False))
        probes, probe_labels = probes[chosen], probe_labels[chosen]
        synthetic = synthetic[np.sort(draw.choice(len(synthetic), queries_limit - kept, replace=False))]
    queries = np.vstack([probes, synthetic]).astype(np.float32)
    truth = exact_top(vectors, queries)
    # Opened after the exact pass, which streams the whole gallery file through the page cache.
    index, build_s, open_s = build_index(settings, vectors, real.model_id, cache)
    exact_rank1 = float(np.mean(labels[truth[: len(probes), 0]] == probe_labels))

    def measure(
        name: str,
        search: Searcher,
        timed_queries: np.ndarray,
        found: np.ndarray | None = None,
        *,
        warm_up: bool = True,
    ) -> Measured:
        if found is None:
            found = np.array([search(q.reshape(1, -1))[:K] for q in queries])
        rank1 = float(np.mean(labels[found[: len(probes), 0]] == probe_labels))
        recall = sum(len(np.intersect1d(f, t)) for f, t in zip(found, truth, strict=True)) / truth.size
        return Measured(
            name,
            *latency_ms(search, timed_queries, warm_up=warm_up),
            round(recall, 4),
            round(rank1 / exact_rank1, 4),
        )

    timed = queries[np.random.default_rng(SEED).permutation(len(queries))[:LATENCY_QUERIES]]
    rows = [measure("facetrace", facetrace_searcher(index, vectors), timed)]
    searching_memory_gib = own_memory_gib()
    not_measured = {}
    if size * vectors.dim <= RAW_FAISS_MAX_CODE_BYTES:
        rows.append(measure("raw FAISS", raw_faiss_searcher(index), timed))
    else:
        not_measured["raw FAISS"] = (
            f"IndexRefine would copy all {size * vectors.dim / 2**30:.1f} GiB of 8-bit codes into memory"
        )
    sweep = []
    if isinstance(index, IvfPqIndex):  # what scanning more or less of the lists buys and costs
        for share in SCAN_SHARES:
            index.scan(share)
            found = measure(f"scan {share}", facetrace_searcher(index, vectors), timed)
            sweep.append({"scan_share": share, "nprobe": index.parameters["nprobe"], **asdict(found)})
        index.scan(settings.index_scan_share)
    # On one BLAS thread: beside FAISS's OpenMP threads, OpenBLAS's own pool made one product
    # four times slower on 2 cores (measured at 50k faces: 7.9 against 1.9 ms).
    with threadpool_limits(1, user_api="blas"):
        exact = numpy_searcher(vectors)
        if vectors.float32_bytes > IN_MEMORY_MAX_BYTES:  # each query reads the whole file: minutes at 100M
            rows.append(measure("numpy exact (streamed)", exact, timed[:1], found=truth, warm_up=False))
        else:
            rows.append(measure("numpy exact", exact, timed[:EXACT_LATENCY_QUERIES], found=truth))
        del exact
    scanned = min(size, LIST_SCAN_MAX)
    templates = list(vectors[:scanned])
    list_p50, list_p95 = latency_ms(python_list_searcher(templates), timed[:3])
    del templates
    scale = size / scanned
    return {
        "gallery_faces": size,
        "real_gallery_faces": len(real.gallery),
        "mated_probes": len(probes),
        "recall_queries": len(queries),
        "model_id": real.model_id,
        "templates_stored_as": str(vectors.stored.dtype),
        "index": {
            "kind": str(index.kind),
            **index.parameters,
            "build_s": round(build_s, 1),
            "open_s": round(open_s, 1),
            "bytes_per_face": round(index.size_on_disk() / size, 1),
        },
        "exact_mated_rank1": round(exact_rank1, 4),
        "rows": [asdict(row) for row in rows],
        "not_measured": not_measured,
        "scan_shares": sweep,
        "python_list": {
            "p50_ms": round(list_p50 * scale, 1),
            "p95_ms": round(list_p95 * scale, 1),
            "measured_on": scanned,
            "scaled_linearly": scale != 1,
        },
        # ru_maxrss is in KiB on Linux: the most this process had resident at once, the pages of
        # the memory-mapped gallery and codes included (once per map).
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "own_memory_searching_gib": searching_memory_gib,
    }


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """Latency and recall against gallery size, one line per searcher (log-scaled sizes).

    matplotlib is a benchmark-only dependency (the ``bench`` extra), imported here only."""
    try:
        import matplotlib
    except ImportError as err:
        raise FacetraceError(
            "the benchmark's plot needs matplotlib, which is not installed: pip install 'facetrace[bench]' "
            "(or leave out --report)"
        ) from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (latency, recall) = plt.subplots(1, 2, figsize=(10, 4))
    for name in dict.fromkeys(row["name"] for r in results for row in r["rows"]):
        measured = [(r["gallery_faces"], row) for r in results for row in r["rows"] if row["name"] == name]
        sizes = [size for size, _ in measured]
        rows = [row for _, row in measured]
        latency.plot(sizes, [row["p50_ms"] for row in rows], marker="o", label=name)
        recall.plot(sizes, [row["recall_at_10"] for row in rows], marker="o", label=f"{name}: recall@10")
        recall.plot(
            sizes,
            [row["mated_rank1_share"] for row in rows],
            marker="x",
            linestyle="--",
            label=f"{name}: mated rank-1 / exact",
        )
    sizes = [r["gallery_faces"] for r in results]
    latency.plot(sizes, [r["python_list"]["p50_ms"] for r in results], marker="o", label="Python list")
    latency.set(
        xscale="log", yscale="log", xlabel="gallery faces", ylabel="p50 ms, one query", title="Search latency"
    )
    recall.set(xscale="log", xlabel="gallery faces", ylabel="share", title="Recall@10 and mated rank-1")
    latency.legend(fontsize=8)
    recall.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
