"""How far apart perceptual hashes are for copies of one photo, and for different photos.

Backs ``FACETRACE_NEAR_DUPLICATE_MAX_DISTANCE``: every pair of dev photos (different photos,
bar a few that are the same photo filed twice) against resized and re-encoded copies of a
sample of them; how close a copy's face template stays to the original's (linking looks for
copies among the faces scoring at least ``near_duplicates.CANDIDATE_SCORE``); and what hashing
costs next to the rest of an image's analysis.

Run: ``.venv/bin/python bench/near_duplicate_threshold.py`` (needs ../shared/data/faces/dev).
"""

from __future__ import annotations

import io
import json
import random
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from facetrace.core.config import Settings
from facetrace.vision.analyzer import FaceAnalyzer
from facetrace.vision.decode import decode_image
from facetrace.vision.factory import build_analyzer
from facetrace.vision.perceptual_hash import hash_distance, perceptual_hash

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "faces" / "dev"
RESULTS = ROOT / "bench" / "results"
#: (scale, JPEG quality) of the copies made of each sampled photo.
COPIES = ((0.4, 60), (0.5, 70), (0.75, 50), (1.0, 30), (1.5, 90), (2.0, 80))
CLOSE = 6  # pairs of different files this close are listed, to be looked at


def hash_of(pil: Image.Image) -> str:
    return perceptual_hash(cv2.cvtColor(np.asarray(pil.convert("RGB")), cv2.COLOR_RGB2BGR))


def copy_of(pil: Image.Image, scale: float, quality: int) -> Image.Image:
    size = (round(pil.width * scale), round(pil.height * scale))
    buffer = io.BytesIO()
    pil.convert("RGB").resize(size, Image.Resampling.LANCZOS).save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def largest_face(analyzer: FaceAnalyzer, pil: Image.Image) -> np.ndarray | None:
    buffer = io.BytesIO()
    pil.convert("RGB").save(buffer, "PNG")
    faces = analyzer.analyze(buffer.getvalue()).faces
    return max(faces, key=lambda f: f.detection.area).embedding if faces else None


def pair_distances(hashes: list[str]) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """Histogram of distances over all pairs, and the pairs at most ``CLOSE`` bits apart."""
    values = np.array([int(h, 16) for h in hashes], dtype=np.uint64)
    histogram = np.zeros(65, dtype=np.int64)
    close = []
    for i in range(len(values) - 1):
        bits = np.unpackbits((values[i] ^ values[i + 1 :]).view(np.uint8)).reshape(-1, 64).sum(axis=1)
        histogram += np.bincount(bits, minlength=65)
        close += [(i, i + 1 + int(j), int(bits[j])) for j in np.nonzero(bits <= CLOSE)[0]]
    return histogram, close


def main() -> None:
    paths = sorted(DEV.glob("*/*.jpg"))
    if not paths:
        raise SystemExit(f"no photos under {DEV}")
    hashes = [hash_of(Image.open(path)) for path in paths]
    histogram, close = pair_distances(hashes)

    random.seed(0)
    copies = []
    for path in random.sample(paths, 300):
        original = Image.open(path)
        copies += [hash_distance(hash_of(original), hash_of(copy_of(original, *c))) for c in COPIES]

    analyzer = build_analyzer(Settings())
    face_scores = []
    for path in random.sample(paths, 100):
        original = Image.open(path)
        template = largest_face(analyzer, original)
        for scale, quality in COPIES:
            copy = largest_face(analyzer, copy_of(original, scale, quality))
            if template is not None and copy is not None:
                face_scores.append(float(template @ copy))
    sample = [path.read_bytes() for path in paths[:300]]
    started = time.perf_counter()
    for data in sample:
        analyzer.analyze(data)
    analysis_ms = (time.perf_counter() - started) / len(sample) * 1000
    decoded = [decode_image(data, max_pixels=10**8, max_bytes=10**8).bgr for data in sample]
    started = time.perf_counter()
    for bgr in decoded:
        perceptual_hash(bgr)
    hash_ms = (time.perf_counter() - started) / len(decoded) * 1000

    report = {
        "photos": len(paths),
        "pairs": int(histogram.sum()),
        "pairs_by_distance_up_to_12": {d: int(histogram[d]) for d in range(13) if histogram[d]},
        "close_pairs": [(paths[i].name, paths[j].name, d) for i, j, d in close],
        "copies": len(copies),
        "copies_max_distance": max(copies),
        "copies_by_distance": {d: copies.count(d) for d in sorted(set(copies))},
        "copy_face_scores": len(face_scores),
        "copy_face_score_min": round(min(face_scores), 3),
        "copy_face_score_p01": round(float(np.percentile(face_scores, 1)), 3),
        "analysis_ms_per_image": round(analysis_ms, 2),
        "hash_ms_per_image": round(hash_ms, 3),
        "hash_share_of_analysis": round(hash_ms / analysis_ms, 4),
    }
    print(json.dumps(report, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "near_duplicate_threshold.json").write_text(json.dumps(report, indent=2))
    print("command: python bench/near_duplicate_threshold.py")


if __name__ == "__main__":
    main()
