"""Search latency and accuracy on a 100,000-face gallery, from the CLI and in-process.

Method:
1. Ingest the dev photos (../shared/data/faces/dev) with the real pipeline, keeping
   one photo of every identity out as a probe.
2. Pad the gallery to ``--gallery-size`` faces with synthetic templates drawn from the
   mean and covariance of the real ones (bench/synthetic.py), stored in the catalog
   like any face (source "synthetic-distractors") and indexed.
3. Time ``facetrace search PHOTO --json --case-ref ...`` as a user runs it (a new process
   each time: start-up, model load, index load, search, catalog join, audit entry), and the same search
   in-process with the gallery already open, next to raw FAISS and numpy on the same
   vectors. Check that the held-out photos still find their person first.
4. Time searches narrowed to a source or a jurisdiction (``SearchScope``) against the whole-gallery
   search: the real photos' source (about 3% of the faces), the distractors' jurisdiction (97%),
   and a source of only ``SMALL_SOURCE_FACES`` faces, which the index's nearest candidates miss
   (the exact pre-filter). Each narrowed result is checked against exact search over the scope.

Run: ``.venv/bin/python bench/search_benchmark.py`` (part of ``make bench``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import faiss
import numpy as np
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, insert, select, update

from facetrace.catalog import repository
from facetrace.catalog.scope import SearchScope
from facetrace.core.config import Settings
from facetrace.evaluation.synthetic import TemplateModel, similarity_profile
from facetrace.gallery.gallery import Gallery
from facetrace.gallery.search import search_photo
from facetrace.governance.collection_policy import GovernedCollection
from facetrace.index.rerank import best_by_exact_score
from facetrace.ingest.pipeline import ingest
from facetrace.store.base import utcnow
from facetrace.store.catalog_models import Face, Image, Sighting
from facetrace.vision.factory import build_analyzer

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "faces" / "dev"
RESULTS = ROOT / "bench" / "results"
console = Console()


def split_dev(dev: Path) -> tuple[list[Path], list[Path]]:
    """(gallery photos, held-out probes): the last photo of each identity is a probe."""
    gallery, probes = [], []
    for person in sorted(p for p in dev.iterdir() if p.is_dir()):
        photos = sorted(person.glob("*.jpg"))
        if person.name == "_distractors":
            gallery += photos
        else:
            gallery += photos[:-1]
            probes.append(photos[-1])
    return gallery, probes


def identity_of(location: str) -> str:
    path = Path(location)
    return path.stem if path.parent.name == "_distractors" else path.parent.name


def pad_with_synthetic(settings: Settings, model_id: str, target: int) -> tuple[int, dict[str, dict]]:
    """Add synthetic faces until the catalog holds ``target``; returns (added, similarity profiles)."""
    gallery = Gallery.open(settings, model_id, 128)
    with gallery.sessions() as session:
        rows = session.execute(
            select(Face.embedding, Sighting.location).join(Sighting, Sighting.image_id == Face.image_id)
        ).all()
        real = np.vstack([np.frombuffer(r[0], dtype=np.float32) for r in rows])
        labels = np.array([identity_of(r[1]) for r in rows])
        next_image = int(session.scalar(select(func.max(Image.id))) or 0) + 1
        next_face = int(session.scalar(select(func.max(Face.id))) or 0) + 1
        count = int(session.scalar(select(func.count(Face.id))) or 0)
        synthetic = TemplateModel.fit(real).sample(max(0, target - count))
        source = repository.get_or_create_source(
            session, "synthetic-distractors", kind="synthetic", jurisdiction="US"
        )
        now = utcnow()
        for start in range(0, len(synthetic), 20_000):
            block = range(start, min(start + 20_000, len(synthetic)))
            session.execute(
                insert(Image),
                [
                    {
                        "id": next_image + i,
                        "sha256": hashlib.sha256(f"synthetic-{i}".encode()).hexdigest(),
                        "size_bytes": 0,
                        "width": 112,
                        "height": 112,
                        "format": "synthetic",
                        "face_count": 1,
                        "first_seen": now,
                        "last_seen": now,
                    }
                    for i in block
                ],
            )
            session.execute(
                insert(Sighting),
                [
                    {
                        "image_id": next_image + i,
                        "source_id": source.id,
                        "location": f"synthetic://distractor/{i}",
                        "first_seen": now,
                        "last_seen": now,
                    }
                    for i in block
                ],
            )
            session.execute(
                insert(Face),
                [
                    {
                        "id": next_face + i,
                        "image_id": next_image + i,
                        "box_x": 0.0,
                        "box_y": 0.0,
                        "box_w": 112.0,
                        "box_h": 112.0,
                        "landmarks": [0.0] * 10,
                        "det_score": 1.0,
                        "quality": 1.0,
                        "model_id": model_id,
                        "embedding": synthetic[i].tobytes(),
                        "created_at": now,
                    }
                    for i in block
                ],
            )
        session.commit()
    profiles = {
        "real impostors": similarity_profile(real, real, labels=labels),
        "synthetic vs synthetic": similarity_profile(synthetic, synthetic),
        "synthetic vs real": similarity_profile(synthetic, real),
    }
    return len(synthetic), profiles


def cli_search_seconds(data_dir: Path, probe: Path, runs: int) -> tuple[list[float], dict]:
    command = [str(ROOT / ".venv" / "bin" / "facetrace"), "--data-dir", str(data_dir)]
    command += ["search", str(probe), "--json", "--case-ref", "BENCH-1", "--offence", "homicide"]
    command += ["--purpose", "search latency benchmark"]
    times, result = [], {}
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - started)
        result = json.loads(done.stdout)
    return times, result


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gallery-size", type=int, default=100_000)
    parser.add_argument("--cli-runs", type=int, default=7)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--keep", type=Path, help="Build the gallery in this (new) folder and keep it.")
    args = parser.parse_args()
    if not DEV.is_dir():
        sys.exit(f"needs the dev faces at {DEV}")

    with tempfile.TemporaryDirectory(prefix="facetrace-bench-") as scratch:
        tmp = args.keep or Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        settings = Settings(data_dir=tmp / "var")
        gallery_photos, probes = split_dev(DEV)
        listing = tmp / "gallery.txt"
        listing.write_text("\n".join(map(str, gallery_photos)))
        started = time.perf_counter()
        stats = ingest(
            settings,
            [str(listing)],
            policy=GovernedCollection(settings),
            source_name="lfw-dev",
            jurisdiction="FR",
            workers=args.workers,
        )
        ingest_s = time.perf_counter() - started

        analyzer = build_analyzer(settings)
        model_id = analyzer.model_id
        probe_vectors = {}
        for probe in probes:
            faces = analyzer.analyze(probe.read_bytes()).faces
            probe_vectors[probe] = max(faces, key=lambda f: f.detection.area).embedding
        small = Gallery.open(settings, model_id, 128)
        real_rank1 = mated_rank1(small, probe_vectors)

        started = time.perf_counter()
        added, profiles = pad_with_synthetic(settings, model_id, args.gallery_size)
        gallery = Gallery.open(settings, model_id, 128)
        gallery.index.save()
        pad_s = time.perf_counter() - started
        size = len(gallery.index)
        big_rank1 = mated_rank1(gallery, probe_vectors)

        cli_times, cli_result = cli_search_seconds(settings.data_dir, probes[0], args.cli_runs)
        in_process = [
            timed(lambda p=p: search_photo(settings, analyzer, p.read_bytes(), k=10, gallery=gallery))
            for p in probes[:100]
        ]
        query = np.vstack(list(probe_vectors.values()))[:100]
        index_only = [timed(lambda q=q: gallery.index.search(q, 10)) for q in query]
        vectors = np.vstack([v for _, v in _all_vectors(gallery)])
        raw = faiss.IndexFlatIP(128)
        raw.add(vectors)
        raw_faiss = [timed(lambda q=q: raw.search(q.reshape(1, -1), 10)) for q in query]
        numpy_exact = [timed(lambda q=q: np.argpartition(-(vectors @ q), 10)[:10]) for q in query]
        scoped = scoped_searches(gallery, query)

    first_identity = identity_of(cli_result["results"][0]["sightings"][0]["location"])
    report = {
        "gallery_faces": size,
        "real_faces": size - added,
        "synthetic_faces": added,
        "ingest_seconds": round(ingest_s, 1),
        "ingest_images": stats.new_images,
        "padding_seconds": round(pad_s, 1),
        "similarity_profiles": profiles,
        "cli_search_ms": {
            "median": median_ms(cli_times),
            "min": round(min(cli_times) * 1000, 2),
            "runs": len(cli_times),
        },
        "cli_first_result_is_probe_identity": first_identity == probes[0].parent.name,
        "in_process_search_ms_median": median_ms(in_process),
        "index_search_ms_median": median_ms(index_only),
        "raw_faiss_ms_median": median_ms(raw_faiss),
        "numpy_exact_ms_median": median_ms(numpy_exact),
        "scoped_searches": scoped,
        "mated_rank1_real_gallery": real_rank1,
        "mated_rank1_padded_gallery": big_rank1,
        "probes": len(probes),
    }
    show(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "search.json").write_text(json.dumps(report, indent=2))
    console.print(
        f"wrote {RESULTS / 'search.json'}; command: {' '.join([Path(sys.executable).name, *sys.argv])}"
    )


#: Faces moved to a source of their own, so few that a search narrowed to it needs the pre-filter.
SMALL_SOURCE_FACES = 20
SCOPES = {
    "whole gallery": SearchScope(),
    "source lfw-dev (real photos)": SearchScope.of(["lfw-dev"]),
    "jurisdiction US (the distractors)": SearchScope.of(jurisdictions=["US"]),
    f"source small-archive ({SMALL_SOURCE_FACES} faces)": SearchScope.of(["small-archive"]),
}


def scoped_searches(gallery: Gallery, queries: np.ndarray, k: int = 10) -> dict[str, dict]:
    """Median in-process ``Gallery.search`` per scope, its ratio to the whole-gallery search, and
    the share of queries whose results equal exact search over the scope's faces."""
    with gallery.sessions.begin() as session:
        small = repository.get_or_create_source(session, "small-archive", kind="local", jurisdiction="BE")
        distractors = select(Face.image_id).join(Sighting, Sighting.image_id == Face.image_id)
        distractors = distractors.where(Sighting.location.like("synthetic://%")).order_by(Face.id)
        images = list(session.scalars(distractors))[::5_000][:SMALL_SOURCE_FACES]
        session.execute(update(Sighting).where(Sighting.image_id.in_(images)).values(source_id=small.id))
    results = {}
    for name, scope in SCOPES.items():
        with gallery.sessions() as session:
            ids = (
                repository.faces_seen_in(session, gallery.model_id, scope.source_ids(session))
                if scope.narrowed
                else None
            )
            held = list(repository.iter_embeddings(session, gallery.model_id, ids))
        in_scope = np.concatenate([i for i, _ in held])
        vectors = np.vstack([v for _, v in held])
        agree = 0
        for q in queries:
            exact = [face_id for face_id, _ in best_by_exact_score(in_scope, vectors, q, k)]
            agree += [hit.face.id for hit in gallery.search(q, k, scope)] == exact
        times = [timed(lambda q=q, scope=scope: gallery.search(q, k, scope)) for q in queries]
        results[name] = {
            "faces_in_scope": len(in_scope),
            "median_ms": median_ms(times),
            "exact_share": agree / len(queries),
        }
    whole = results["whole gallery"]["median_ms"]
    for row in results.values():
        row["vs_whole_gallery"] = round(row["median_ms"] / whole, 2)
    return results


def _all_vectors(gallery: Gallery) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    with gallery.sessions() as session:
        yield from repository.iter_embeddings(session, gallery.model_id)


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def mated_rank1(gallery: Gallery, probe_vectors: dict[Path, np.ndarray]) -> float:
    """Share of held-out probes whose best match is a photo of the same person."""
    hits = 0
    for probe, vector in probe_vectors.items():
        best = gallery.search(vector, 1)[0]
        hits += identity_of(best.face.image.sightings[0].location) == probe.parent.name
    return round(hits / len(probe_vectors), 4)


def show(report: dict) -> None:
    table = Table(title=f"Search on {report['gallery_faces']:,} faces ({report['real_faces']:,} real)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    cli = report["cli_search_ms"]
    rows = [
        ("facetrace search PHOTO --json, new process (median)", f"{cli['median']:.0f} ms"),
        ("  fastest of the runs", f"{cli['min']:.0f} ms"),
        (
            "in-process search: probe analysis + index + catalog join",
            f"{report['in_process_search_ms_median']:.1f} ms",
        ),
        ("  index search alone (FaissIndex)", f"{report['index_search_ms_median']:.2f} ms"),
        ("  raw FAISS IndexFlatIP, same vectors", f"{report['raw_faiss_ms_median']:.2f} ms"),
        ("  numpy exact (matrix-vector + argpartition)", f"{report['numpy_exact_ms_median']:.2f} ms"),
        (
            "index overhead vs raw FAISS",
            f"{report['index_search_ms_median'] / report['raw_faiss_ms_median']:.2f}x",
        ),
        ("mated rank-1, real gallery only", f"{report['mated_rank1_real_gallery']:.3f}"),
        ("mated rank-1, padded gallery", f"{report['mated_rank1_padded_gallery']:.3f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    scoped = Table(title="Searches narrowed to a scope (Gallery.search, in-process, k=10)")
    for column in ("scope", "faces in scope", "median ms", "vs whole gallery", "= exact over the scope"):
        scoped.add_column(column)
    for name, row in report["scoped_searches"].items():
        scoped.add_row(
            name,
            f"{row['faces_in_scope']:,}",
            f"{row['median_ms']:.1f}",
            f"{row['vs_whole_gallery']:.2f}x",
            f"{row['exact_share']:.0%}",
        )
    console.print(scoped)
    profiles = Table(title="Cosine similarity profiles (synthetic padding vs real impostors)")
    for column in ("pairs", "mean", "std", "p99", "p99.9"):
        profiles.add_column(column)
    for name, profile in report["similarity_profiles"].items():
        profiles.add_row(name, *(f"{v:.3f}" for v in profile.values()))
    console.print(profiles)


if __name__ == "__main__":
    main()
