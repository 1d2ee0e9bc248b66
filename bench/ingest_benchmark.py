"""Ingest throughput and accuracy against face_recognition (dlib), on the same photos, same workers.

Method, on the dev photos (../shared/data/faces/dev, 3,035 LFW images) or ``--folder``:
1. Facetrace analysis: the ingest worker pool (YuNet + SFace, one process per core)
   over every photo; images/s, images with a face, share of worker time spent in
   model inference.
2. face_recognition (the peer deepface and many tutorials build on): the same
   worker pool running ``face_locations`` (its default HOG detector) and
   ``face_encodings`` in each process; images/s and images with a face.
3. Facetrace end to end: ``ingest()`` into an empty temporary gallery (decode,
   analysis, catalog commit per image, FAISS index), the figure a user sees.
4. Accuracy of both on the same photos: leave-one-out 1:N rank-1 with the
   distractors in the gallery, from each image's subject face (nearest the centre).
   face_recognition's vectors are L2-normalised so both rank by cosine similarity.
5. Recall of faces of both detectors on ../shared/data/faces/misc: the annotated
   group photos (dlib's boxes, matched at IoU >= 0.3), the group and single-face
   photos with a known face count, and false detections on the 40 no-face photos.

Run: ``.venv/bin/python bench/ingest_benchmark.py`` (part of ``make bench``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from facetrace.core.config import Settings
from facetrace.evaluation.dataset import scan_labelled_folder
from facetrace.evaluation.detection import Box, DetectionScore, read_imglab_boxes
from facetrace.evaluation.metrics import leave_one_out_identification
from facetrace.evaluation.runner import embed_images
from facetrace.governance.collection_policy import GovernedCollection
from facetrace.ingest.pipeline import ingest
from facetrace.ingest.pool import Failure, WorkerPool
from facetrace.vision.embed import l2_normalise
from facetrace.vision.factory import build_analyzer

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT.parent / "shared" / "data" / "faces"
DEV = FACES / "dev"
RESULTS = ROOT / "bench" / "results"
console = Console(width=120)


@dataclass(frozen=True, slots=True)
class PeerFace:
    """What the peer worker sends back for one image: faces found and the subject's encoding."""

    faces: int
    encoding: np.ndarray | None


def peer_start() -> None:
    """Worker initializer: import face_recognition (loads dlib's models) once per process."""
    import face_recognition  # noqa: F401


def peer_analyze(data: bytes) -> PeerFace | Failure:
    """face_recognition's documented path: load, HOG face_locations, face_encodings."""
    import face_recognition

    try:
        image = face_recognition.load_image_file(io.BytesIO(data))
    except OSError as exc:
        return Failure(str(exc))
    boxes = face_recognition.face_locations(image)  # (top, right, bottom, left), HOG, upsample once
    if not boxes:
        return PeerFace(0, None)
    height, width = image.shape[:2]
    subject = min(
        boxes, key=lambda b: ((b[1] + b[3]) / 2 - width / 2) ** 2 + ((b[0] + b[2]) / 2 - height / 2) ** 2
    )
    (encoding,) = face_recognition.face_encodings(image, [subject])
    return PeerFace(len(boxes), encoding.astype(np.float32))


def run_peer(paths: list[Path], workers: int) -> dict:
    started = time.perf_counter()
    encodings: dict[Path, np.ndarray] = {}
    failures = faces = 0
    with WorkerPool(peer_analyze, workers=workers, initializer=peer_start) as pool:
        for path, result in pool.map((p, p.read_bytes()) for p in paths):
            if isinstance(result, Failure):
                failures += 1
            else:
                faces += result.faces
                if result.encoding is not None:
                    encodings[path] = result.encoding
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "faces": faces,
        "failures": failures,
        "has_face": np.array([p in encodings for p in paths]),
        "embeddings": np.vstack([l2_normalise(encodings.get(p, np.zeros(128))) for p in paths]),
    }


def peer_boxes(data: bytes) -> list[Box]:
    """face_recognition's face boxes, as (x, y, width, height)."""
    import face_recognition

    image = face_recognition.load_image_file(io.BytesIO(data))
    locations = face_recognition.face_locations(image)  # (top, right, bottom, left)
    return [(left, top, right - left, bottom - top) for top, right, bottom, left in locations]


def detection_recall(detectors: dict[str, Callable[[bytes], list[Box]]]) -> dict[str, dict]:
    """Recall and false detections of each detector on the misc photos with known faces."""
    misc = FACES / "misc"
    dlib_faces = misc / "group" / "dlib_faces"
    annotated = read_imglab_boxes([dlib_faces / "training.xml", dlib_faces / "testing.xml"])
    manifest = list(csv.DictReader((misc / "manifest.csv").open()))
    counted = {
        FACES / row["path"]: int(row["expected_faces"])
        for row in manifest
        if row["category"] in ("group", "single_face") and row["expected_faces"]
    }
    no_face = [FACES / row["path"] for row in manifest if row["category"] == "no_face"]
    report = {}
    for name, detect in detectors.items():
        boxes = DetectionScore()
        for path, truth in annotated.items():
            boxes.add(detect(path.read_bytes()), truth)
        found = {path: len(detect(path.read_bytes())) for path in counted}
        report[name] = {
            "annotated_faces": boxes.truth,
            "annotated_recall": round(boxes.recall, 4),
            "annotated_false_detections": boxes.false_detections,
            "counted_photos": len(counted),
            "counted_faces": sum(counted.values()),
            "counted_faces_found": sum(min(found[p], n) for p, n in counted.items()),
            "no_face_photos": len(no_face),
            "no_face_false_detections": sum(len(detect(p.read_bytes())) for p in no_face),
        }
    return report


def rank1(embeddings: np.ndarray, has_face: np.ndarray, labels: list[str | None]) -> dict:
    """LOO rank-1/rank-5 over the images where a face was found, and how many had none."""
    keep = np.flatnonzero(has_face)
    kept_labels = [labels[i] for i in keep]
    mated = np.array([label is not None for label in kept_labels])
    result = leave_one_out_identification(embeddings[keep], kept_labels, mated)
    return {"rank1": round(result.rank1, 4), "rank5": round(result.rank5, 4), "probes": result.probes}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--folder", type=Path, default=DEV, help="Labelled folder (default: the dev set).")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--limit", type=int, help="Use only the first N images (quick runs).")
    parser.add_argument("--skip-peer", action="store_true", help="Do not run face_recognition.")
    args = parser.parse_args()
    if not args.folder.is_dir():
        sys.exit(f"needs a labelled folder at {args.folder}")

    images = scan_labelled_folder(args.folder)[: args.limit]
    paths = [image.path for image in images]
    labels = [image.identity for image in images]
    console.print(f"{len(paths):,} images from {args.folder}, {args.workers} worker processes")
    with tempfile.TemporaryDirectory(prefix="facetrace-bench-") as scratch:
        report = measure(Settings(data_dir=Path(scratch) / "var"), paths, labels, args)
    show(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingest.json").write_text(json.dumps(report, indent=2))
    console.print(
        f"wrote {RESULTS / 'ingest.json'}; command: {' '.join([Path(sys.executable).name, *sys.argv])}"
    )


def measure(
    settings: Settings, paths: list[Path], labels: list[str | None], args: argparse.Namespace
) -> dict:
    """Run the three measurements on ``paths``; ``settings`` points at an empty scratch gallery."""
    ours = embed_images(settings, paths, workers=args.workers)
    ours_report = {
        **ours.throughput(),
        "images_with_face": int(ours.has_face.sum()),
        **rank1(ours.embeddings, ours.has_face, labels),
    }

    started = time.perf_counter()
    stats = ingest(
        settings,
        [str(p) for p in paths],
        policy=GovernedCollection(settings),
        source_name="bench",
        workers=args.workers,
    )
    ingest_s = time.perf_counter() - started
    end_to_end = {
        "seconds": round(ingest_s, 2),
        "images_per_s": round(len(paths) / ingest_s, 2),
        "faces": stats.faces,
        "failures": len(stats.failures),
    }

    analyzer = build_analyzer(settings)
    detectors = {"facetrace": lambda data: [face.detection.box for face in analyzer.analyze(data).faces]}
    peer_report = None
    if not args.skip_peer:
        detectors["face_recognition"] = peer_boxes
        peer = run_peer(paths, args.workers)
        peer_report = {
            "seconds": round(peer["seconds"], 2),
            "images_per_s": round(len(paths) / peer["seconds"], 2),
            "faces": peer["faces"],
            "images_with_face": int(peer["has_face"].sum()),
            **rank1(peer["embeddings"], peer["has_face"], labels),
        }

    return {
        "images": len(paths),
        "folder": args.folder.name,
        "workers": args.workers,
        "facetrace_analysis": ours_report,
        "facetrace_ingest_end_to_end": end_to_end,
        "face_recognition": peer_report,
        "detection": detection_recall(detectors) if (FACES / "misc").is_dir() else None,
    }


def show(report: dict) -> None:
    ours, e2e = report["facetrace_analysis"], report["facetrace_ingest_end_to_end"]
    peer = report["face_recognition"]
    table = Table(title=f"Ingest of {report['images']:,} photos, {report['workers']} worker processes")
    table.add_column("")
    for column in ("images/s", "images with a face", "LOO rank-1", "rank-5"):
        table.add_column(column, justify="right")
    found = f"{ours['images_with_face']:,} / {report['images']:,}"
    table.add_row(
        "Facetrace analysis (YuNet + SFace)",
        f"{ours['images_per_s']:.1f}",
        found,
        f"{ours['rank1']:.3f}",
        f"{ours['rank5']:.3f}",
    )
    faces = f"{e2e['faces']:,} faces"
    table.add_row("Facetrace ingest, end to end", f"{e2e['images_per_s']:.1f}", faces, "", "")
    if peer:
        table.add_row(
            "face_recognition (dlib HOG + ResNet)",
            f"{peer['images_per_s']:.1f}",
            f"{peer['images_with_face']:,} / {report['images']:,}",
            f"{peer['rank1']:.3f}",
            f"{peer['rank5']:.3f}",
        )
    console.print(table)
    console.print(f"inference share of worker time (Facetrace): {ours['inference_share']:.2f}")
    if report["detection"]:
        show_detection(report["detection"])
    if peer:
        console.print(
            f"speed: Facetrace analysis {ours['images_per_s'] / peer['images_per_s']:.1f}x, "
            f"end to end {e2e['images_per_s'] / peer['images_per_s']:.1f}x face_recognition; "
            f"photos with no face found: Facetrace {report['images'] - ours['images_with_face']}, "
            f"face_recognition {report['images'] - peer['images_with_face']}"
        )


def show_detection(detection: dict[str, dict]) -> None:
    first = next(iter(detection.values()))
    table = Table(title="Recall of faces on ../shared/data/faces/misc")
    table.add_column("")
    table.add_column(f"recall, {first['annotated_faces']} boxed faces", justify="right")
    table.add_column("extra boxes", justify="right")
    table.add_column(f"found, {first['counted_photos']} counted photos", justify="right")
    table.add_column(f"faces on {first['no_face_photos']} no-face photos", justify="right")
    for name, row in detection.items():
        table.add_row(
            name,
            f"{row['annotated_recall']:.3f}",
            str(row["annotated_false_detections"]),
            f"{row['counted_faces_found']} / {row['counted_faces']}",
            str(row["no_face_false_detections"]),
        )
    console.print(table)


if __name__ == "__main__":
    main()
