"""Which compressed FAISS structure for large galleries: size, build time, latency, recall.

Opt-in measurement (not part of ``make bench``, not a test) behind the choice of the
index structure the FAISS index switches to beyond a configurable gallery size.

Method, for each gallery size N given with ``--sizes``:

1. Real SFace templates of the dev photos (../shared/data/faces/dev), largest face per
   photo: for every identity with >= 2 photos, the first half (rounded up) goes into the
   gallery and the rest are mated probes; the ``_distractors`` photos go into the gallery.
   The templates are cached in bench/results/index_choice/ (``facetrace.evaluation.scale``).
2. The gallery is padded to N with synthetic templates drawn from a Gaussian fitted to
   the real gallery templates (bench/synthetic.py).
3. Each candidate structure is built (train + add) and measured on the same vectors:
   exact numpy brute force (the bound), FAISS ``IndexFlatIP``, IVF with 8-bit scalar
   quantisation (nlist ~ 4 sqrt(N), coarse quantiser trained on a sample of the gallery)
   at several nprobe, with and without exact re-ranking of the top 100 candidates from
   the float32 vectors, IVF-PQ with the same re-ranking, HNSW over SQ8 codes (M=32)
   when N <= ``--hnsw-max`` and its projected build time fits ``--hnsw-budget-s``, and the
   product's compressed index (``IvfPqIndex``: 4-bit PQ fast scan refined by 8-bit codes, then
   the same exact re-ranking) at several shares of its lists scanned.
4. Reported per structure: build seconds, bytes per face of the serialised index
   (``faiss.serialize_index`` size / N; the float32 vectors kept for re-ranking, 512 B/face,
   are counted separately), p50/p95 latency of one query at a time with one thread and
   with FAISS's default threads, recall@10 against exact search over 200 random queries
   (half real probes, half fresh synthetic templates), and mated rank-1 of the real probes
   as a share of what exact search achieves.

Run: ``.venv/bin/python bench/index_choice.py [--sizes 100000 1000000]``
Results: bench/results/index_choice.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np
from rich.console import Console
from rich.table import Table

from facetrace.core.config import Settings
from facetrace.evaluation.scale import RealTemplates, exact_top, facetrace_searcher, real_templates
from facetrace.evaluation.synthetic import TemplateModel, similarity_profile
from facetrace.index.ivf_pq_index import IvfPqIndex, nlist_for
from facetrace.index.rerank import best_by_exact_score
from search_benchmark import DEV, RESULTS, timed

K = 10
SHORTLIST = 100
QUERIES = 200
LATENCY_QUERIES = 200
SEED = 20240601
NPROBES = (16, 32, 64, 128, 256, 512, 1024)
HNSW_EF = (64, 128, 256, 512, 1024)
SCAN_SHARES = (0.25, 0.5, 0.65, 0.8)
RERANK_BYTES = 128 * 4  # float32 vectors kept (on disk) for exact re-ranking
console = Console(width=200)

Searcher = Callable[[np.ndarray], np.ndarray]  # (nq, d) queries -> (nq, K) gallery row ids


@dataclass
class Row:
    structure: str
    params: str
    build_s: float | None
    bytes_per_face: float | None
    rerank_bytes_per_face: int
    p50_ms_1t: float | None
    p95_ms_1t: float | None
    p50_ms_mt: float
    p95_ms_mt: float
    recall_at_10: float
    recall_at_10_real: float  # queries that are real mated probes
    recall_at_10_synthetic: float  # queries with no mate in the gallery
    mated_rank1: float
    mated_rank1_share: float
    top1_differs_from_exact: int


# --- data ---------------------------------------------------------------------------------


# --- structures ---------------------------------------------------------------------------


def faiss_top(index: faiss.Index, k: int = K) -> Searcher:
    return lambda q: index.search(q, k)[1]


def reranked(index: faiss.Index, vectors: np.ndarray, shortlist: int = SHORTLIST) -> Searcher:
    """Top ``shortlist`` candidates from the compressed index, re-scored on float32 vectors."""

    def search(queries: np.ndarray) -> np.ndarray:
        _, candidates = index.search(queries, shortlist)
        out = np.full((len(queries), K), -1, dtype=np.int64)
        for i, (query, ids) in enumerate(zip(queries, candidates, strict=True)):
            ids = np.sort(ids[ids >= 0])  # sorted: sequential reads when vectors are on disk
            best = [row for row, _ in best_by_exact_score(ids, vectors[ids], query, K)]
            out[i, : len(best)] = best
        return out

    return search


def serialized_bytes(index: faiss.Index) -> int:
    return int(faiss.serialize_index(index).size)


def trained_ivf(factory: str, gallery: np.ndarray, nlist: int, seed: int) -> tuple[faiss.Index, float]:
    """Build an IVF index from a factory string; coarse quantiser trained on a gallery sample."""
    started = time.perf_counter()
    index = faiss.index_factory(gallery.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    sample_size = min(len(gallery), 64 * nlist)
    sample = gallery[np.sort(np.random.default_rng(seed).choice(len(gallery), sample_size, replace=False))]
    faiss.extract_index_ivf(index).cp.seed = seed
    index.train(sample)
    del sample
    index.add(gallery)
    return index, time.perf_counter() - started


def product_ivf_pq(gallery: np.ndarray) -> tuple[IvfPqIndex, float]:
    """Facetrace's compressed index over the gallery (face id = row + 1), saved to a temporary file."""
    started = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="index-choice-"))
    index = IvfPqIndex.empty(
        folder / "gallery.faiss", "bench", gallery.shape[1], count=len(gallery), scan_share=1
    )
    rows = np.random.default_rng(SEED).choice(
        len(gallery), min(len(gallery), index.training_size), replace=False
    )
    index.train(gallery[np.sort(rows)])
    index.add(np.arange(1, len(gallery) + 1), gallery, "bench")
    build_s = time.perf_counter() - started
    index.save()
    return index, build_s


def hnsw_sq8(gallery: np.ndarray, budget_s: float, m: int = 32) -> tuple[faiss.Index | None, float, str]:
    """HNSW over SQ8 codes, added in chunks; gives up when the projected build time exceeds the budget."""
    started = time.perf_counter()
    index = faiss.IndexHNSWSQ(gallery.shape[1], faiss.ScalarQuantizer.QT_8bit, m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 40
    index.train(gallery[:: max(1, len(gallery) // 100_000)])
    chunk = max(10_000, len(gallery) // 20)
    for start in range(0, len(gallery), chunk):
        index.add(gallery[start : start + chunk])
        elapsed = time.perf_counter() - started
        projected = elapsed * len(gallery) / index.ntotal
        if projected > budget_s and index.ntotal < len(gallery):
            note = (
                f"HNSW-SQ8 M={m} skipped: {index.ntotal:,} faces took {elapsed:.0f} s, "
                f"projected {projected:.0f} s > budget {budget_s:.0f} s"
            )
            return None, projected, note
    return index, time.perf_counter() - started, ""


# --- measurement --------------------------------------------------------------------------


def latencies_ms(search: Searcher, queries: np.ndarray, threads: int) -> tuple[float, float]:
    faiss.omp_set_num_threads(threads)
    search(queries[:1])  # warm-up
    samples = [timed(lambda q=q: search(q.reshape(1, -1))) * 1000 for q in queries]
    return round(float(np.percentile(samples, 50)), 3), round(float(np.percentile(samples, 95)), 3)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(np.intersect1d(f[f >= 0], t)) for f, t in zip(found, truth, strict=True))
    return round(hits / truth.size, 4)


@dataclass
class Bench:
    gallery: np.ndarray
    labels: np.ndarray  # identity per gallery row; synthetic rows are ""
    queries: np.ndarray  # recall queries: real mated probes first, then fresh synthetic ones
    real_queries: int
    truth: np.ndarray  # exact top-K of the recall queries
    probes: np.ndarray
    probe_labels: np.ndarray
    exact_probe_top1: np.ndarray
    exact_rank1: float
    default_threads: int

    def measure(
        self,
        structure: str,
        params: str,
        search: Searcher,
        build_s: float | None,
        index_bytes: int | None,
        rerank: bool,
        single_thread: bool = True,
    ) -> Row:
        faiss.omp_set_num_threads(self.default_threads)
        found = search(self.queries)
        probe_top1 = search(self.probes)[:, 0]
        rank1 = float(np.mean(self.labels[probe_top1] == self.probe_labels))
        one = latencies_ms(search, self.queries[:LATENCY_QUERIES], 1) if single_thread else (None, None)
        many = latencies_ms(search, self.queries[:LATENCY_QUERIES], self.default_threads)
        faiss.omp_set_num_threads(self.default_threads)
        row = Row(
            structure=structure,
            params=params,
            build_s=None if build_s is None else round(build_s, 1),
            bytes_per_face=None if index_bytes is None else round(index_bytes / len(self.gallery), 1),
            rerank_bytes_per_face=RERANK_BYTES if rerank else 0,
            p50_ms_1t=one[0],
            p95_ms_1t=one[1],
            p50_ms_mt=many[0],
            p95_ms_mt=many[1],
            recall_at_10=recall_at_k(found, self.truth),
            recall_at_10_real=recall_at_k(found[: self.real_queries], self.truth[: self.real_queries]),
            recall_at_10_synthetic=recall_at_k(found[self.real_queries :], self.truth[self.real_queries :]),
            mated_rank1=round(rank1, 4),
            mated_rank1_share=round(rank1 / self.exact_rank1, 4) if self.exact_rank1 else 0.0,
            top1_differs_from_exact=int(np.sum(probe_top1 != self.exact_probe_top1)),
        )
        console.print(
            f"  {structure:<14} {params:<28} recall@10 {row.recall_at_10:.4f}  "
            f"rank-1 share {row.mated_rank1_share:.4f}  p50 {row.p50_ms_1t} / {row.p50_ms_mt} ms"
        )
        return row


def run_size(dev: RealTemplates, n: int, hnsw_max: int, hnsw_budget_s: float) -> dict:
    console.rule(f"N = {n:,}")
    real = len(dev.gallery)
    if n < real:
        raise SystemExit(f"--sizes must be at least the {real} real gallery templates")
    started = time.perf_counter()
    model = TemplateModel.fit(dev.gallery)
    gallery = np.empty((n, dev.gallery.shape[1]), dtype=np.float32)
    gallery[:real] = dev.gallery
    gallery[real:] = model.sample(n - real, seed=SEED)
    labels = np.concatenate([dev.gallery_labels, np.full(n - real, "", dtype=dev.gallery_labels.dtype)])
    rng = np.random.default_rng(SEED + 1)
    real_queries = dev.probes[rng.choice(len(dev.probes), QUERIES // 2, replace=False)]
    synthetic_queries = model.sample(QUERIES - QUERIES // 2, seed=SEED + 2)
    queries = np.ascontiguousarray(np.vstack([real_queries, synthetic_queries]))
    truth_started = time.perf_counter()
    truth = exact_top(gallery, queries)
    exact_probe_top1 = exact_top(gallery, dev.probes, k=1)[:, 0]
    console.print(
        f"gallery built in {truth_started - started:.1f} s; exact answers in "
        f"{time.perf_counter() - truth_started:.1f} s"
    )
    exact_rank1 = float(np.mean(labels[exact_probe_top1] == dev.probe_labels))
    bench = Bench(
        gallery=gallery,
        labels=labels,
        queries=queries,
        real_queries=len(real_queries),
        truth=truth,
        probes=dev.probes,
        probe_labels=dev.probe_labels,
        exact_probe_top1=exact_probe_top1,
        exact_rank1=exact_rank1,
        default_threads=faiss.omp_get_max_threads(),
    )
    rows: list[Row] = []
    notes: list[str] = []

    # numpy's BLAS threads cannot be set from here (no threadpoolctl): default threads only.
    rows.append(
        bench.measure(
            "numpy exact", "matvec+argpartition", lambda q: exact_top(gallery, q), 0.0, None, False, False
        )
    )

    flat = faiss.IndexFlatIP(gallery.shape[1])
    build_started = time.perf_counter()
    flat.add(gallery)
    build_s = time.perf_counter() - build_started
    rows.append(
        bench.measure("FAISS flat", "IndexFlatIP", faiss_top(flat), build_s, serialized_bytes(flat), False)
    )
    del flat
    gc.collect()

    nlist = nlist_for(n)
    sq, build_s = trained_ivf(f"IVF{nlist},SQ8", gallery, nlist, SEED)
    size = serialized_bytes(sq)
    ivf = faiss.extract_index_ivf(sq)
    for nprobe in NPROBES:
        ivf.nprobe = nprobe
        params = f"nlist={nlist} nprobe={nprobe}"
        rows.append(bench.measure("IVF-SQ8", params, faiss_top(sq), build_s, size, False))
        rows.append(bench.measure("IVF-SQ8+rerank", params, reranked(sq, gallery), build_s, size, True))
    del sq, ivf
    gc.collect()

    for m in (32, 16):
        pq, build_s = trained_ivf(f"IVF{nlist},PQ{m}x8", gallery, nlist, SEED)
        size = serialized_bytes(pq)
        ivf = faiss.extract_index_ivf(pq)
        for nprobe in NPROBES:
            ivf.nprobe = nprobe
            params = f"PQ{m}x8 nlist={nlist} nprobe={nprobe}"
            rows.append(bench.measure("IVF-PQ+rerank", params, reranked(pq, gallery), build_s, size, True))
        del pq, ivf
        gc.collect()

    product, build_s = product_ivf_pq(gallery)
    size = product.size_on_disk()
    one_at_a_time = facetrace_searcher(product, gallery)
    for share in SCAN_SHARES:
        product.scan(share)
        params = f"nlist={product.parameters['nlist']} scanned={share}"
        search = lambda q: np.array([one_at_a_time(x.reshape(1, -1)) for x in q])  # noqa: E731
        rows.append(bench.measure("IVF-PQfs+SQ8+rerank", params, search, build_s, size, True))
    del product
    gc.collect()

    if n > hnsw_max:
        notes.append(f"HNSW-SQ8 M=32 skipped above {hnsw_max:,} faces (build time)")
        console.print(notes[-1])
    else:
        hnsw, build_s, note = hnsw_sq8(gallery, hnsw_budget_s)
        if hnsw is None:
            notes.append(note)
            console.print(note)
        else:
            size = serialized_bytes(hnsw)
            for ef in HNSW_EF:
                hnsw.hnsw.efSearch = ef
                params = f"M=32 efSearch={ef}"
                rows.append(bench.measure("HNSW-SQ8", params, faiss_top(hnsw), build_s, size, False))
                rows.append(
                    bench.measure("HNSW-SQ8+rerank", params, reranked(hnsw, gallery), build_s, size, True)
                )
            del hnsw
            gc.collect()

    profile = {
        "real impostors": similarity_profile(dev.gallery, dev.gallery, labels=dev.gallery_labels),
        "synthetic vs real": similarity_profile(gallery[real:], dev.gallery),
    }
    result = {
        "gallery_faces": n,
        "real_gallery_faces": real,
        "synthetic_faces": n - real,
        "mated_probes": len(dev.probes),
        "recall_queries": QUERIES,
        "exact_mated_rank1": round(exact_rank1, 4),
        "nlist": nlist,
        "default_threads": bench.default_threads,
        "similarity_profiles": profile,
        "notes": notes,
        "rows": [asdict(r) for r in rows],
    }
    show(result)
    return result


def show(result: dict) -> None:
    table = Table(
        title=f"{result['gallery_faces']:,} faces ({result['real_gallery_faces']:,} real); "
        f"exact mated rank-1 {result['exact_mated_rank1']:.4f} over {result['mated_probes']} probes"
    )
    columns = ("structure", "params", "build s", "B/face", "+rerank B", "p50/p95 ms 1t", "p50/p95 ms mt")
    for column in (*columns, "recall@10", "real", "synth", "rank-1 share", "top-1 ≠ exact"):
        table.add_column(column, justify="left" if column in columns[:2] else "right")

    def fmt(value: float | None, spec: str = ".1f") -> str:
        return "-" if value is None else format(value, spec)

    for r in result["rows"]:
        table.add_row(
            r["structure"],
            r["params"],
            fmt(r["build_s"]),
            fmt(r["bytes_per_face"]),
            str(r["rerank_bytes_per_face"] or "-"),
            f"{fmt(r['p50_ms_1t'], '.2f')} / {fmt(r['p95_ms_1t'], '.2f')}",
            f"{r['p50_ms_mt']:.2f} / {r['p95_ms_mt']:.2f}",
            f"{r['recall_at_10']:.4f}",
            f"{r['recall_at_10_real']:.3f}",
            f"{r['recall_at_10_synthetic']:.3f}",
            f"{r['mated_rank1_share']:.4f}",
            str(r["top1_differs_from_exact"]),
        )
    console.print(table)
    for note in result["notes"]:
        console.print(f"note: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--hnsw-max", type=int, default=1_000_000, help="No HNSW above this many faces.")
    parser.add_argument(
        "--hnsw-budget-s",
        type=float,
        default=1200.0,
        help="Give up on HNSW when its build would take longer.",
    )
    args = parser.parse_args()
    if not DEV.is_dir():
        sys.exit(f"needs the dev faces at {DEV}")
    faiss.omp_set_num_threads(faiss.omp_get_max_threads())
    dev = real_templates(Settings(), DEV, RESULTS / "index_choice")
    console.print(
        f"dev templates ({dev.model_id}): {len(dev.gallery)} gallery, {len(dev.probes)} mated probes"
    )
    report: dict = {"model_id": dev.model_id, "seed": SEED, "faiss": faiss.__version__, "sizes": []}
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "index_choice.json"
    for n in args.sizes:
        report["sizes"].append(run_size(dev, n, args.hnsw_max, args.hnsw_budget_s))
        out.write_text(json.dumps(report, indent=2))  # after each size, so a long run keeps what it has
    console.print(f"wrote {out}; command: {' '.join([Path(sys.executable).name, *sys.argv])}")


if __name__ == "__main__":
    main()
