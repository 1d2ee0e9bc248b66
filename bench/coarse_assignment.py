"""What building the compressed index at 100M faces costs in its first step: assigning every
face to its nearest IVF list, with FAISS's exact (flat) coarse quantiser and with an HNSW graph
over the centroids (the usual way to speed it up).

Method: templates drawn like the scale benchmark's distractors (``TemplateModel`` fitted to the
real dev templates), ``nlist_for(N)`` (or ``--lists``) centroids taken from them (k-means would move them a
little, not change the cost), then ``--vectors`` templates assigned both ways. Prints vectors
per second, the share of assignments HNSW gets right, and the hours 100M faces would take.

Run: ``.venv/bin/python bench/coarse_assignment.py`` (part of ``make bench-large``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import faiss
import numpy as np
from rich.console import Console
from rich.table import Table

from facetrace.core.config import Settings
from facetrace.evaluation.scale import real_templates
from facetrace.evaluation.synthetic import TemplateModel
from facetrace.index.faiss_index import all_cores
from facetrace.index.ivf_pq_index import nlist_for

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "faces" / "dev"
RESULTS = ROOT / "bench" / "results"
HNSW_LINKS = 32
EF_SEARCH = (32, 64, 128)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gallery-size", type=int, default=100_000_000)
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--lists", type=int, help="IVF lists (default: what the index takes at that size)")
    args = parser.parse_args()
    settings = Settings()
    real = real_templates(settings, DEV, settings.data_dir / "bench")
    model = TemplateModel.fit(real.gallery)
    nlist = args.lists or nlist_for(args.gallery_size)
    centroids = model.sample(nlist, seed=1)
    vectors = model.sample(args.vectors, seed=2)
    rows = []
    with all_cores():
        flat = faiss.IndexFlatIP(centroids.shape[1])
        flat.add(centroids)
        started = time.perf_counter()
        truth = flat.search(vectors, 1)[1]
        flat_s = time.perf_counter() - started
        rows.append(
            {
                "quantiser": "flat (exact)",
                "build_s": 0.0,
                "vectors_per_s": args.vectors / flat_s,
                "right": 1.0,
            }
        )
        graph = faiss.IndexHNSWFlat(centroids.shape[1], HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
        started = time.perf_counter()
        graph.add(centroids)
        graph_s = time.perf_counter() - started
        for ef in EF_SEARCH:
            graph.hnsw.efSearch = ef
            started = time.perf_counter()
            found = graph.search(vectors, 1)[1]
            seconds = time.perf_counter() - started
            rows.append(
                {
                    "quantiser": f"HNSW{HNSW_LINKS}, efSearch {ef}",
                    "build_s": round(graph_s, 1),
                    "vectors_per_s": args.vectors / seconds,
                    "right": float(np.mean(found == truth)),
                }
            )
    for row in rows:
        row["hours_for_gallery"] = round(args.gallery_size / row["vectors_per_s"] / 3600, 2)
        row["vectors_per_s"] = round(row["vectors_per_s"])
    report = {"gallery_faces": args.gallery_size, "nlist": nlist, "vectors_timed": args.vectors, "rows": rows}
    table = Table(
        title=f"Assigning {args.gallery_size:,} faces to {nlist:,} IVF lists ({args.vectors:,} timed)"
    )
    for column in (
        "coarse quantiser",
        "vectors/s",
        "share assigned right",
        f"hours for {args.gallery_size:,}",
    ):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["quantiser"],
            f"{row['vectors_per_s']:,}",
            f"{row['right']:.3f}",
            f"{row['hours_for_gallery']:.2f}",
        )
    Console().print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"coarse_assignment_{nlist}.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
