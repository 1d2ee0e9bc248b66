"""What keeping a crop of every gallery face costs: bytes per crop and time to cut one.

Opt-in measurement behind ``FACETRACE_FACE_CROP_SIZE``'s description in the README: the
first ``--limit`` dev photos (sorted by path) are analysed; for each face found, the crop
is cut again from the decoded image and timed, next to the whole analysis of its photo.

Run: ``.venv/bin/python bench/face_crop_cost.py [--size 112] [--limit 300]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from facetrace.core.config import Settings
from facetrace.vision.decode import decode_image
from facetrace.vision.factory import build_analyzer
from facetrace.vision.thumbnail import face_thumbnail

DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces" / "dev"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--limit", type=int, default=300)
    args = parser.parse_args()
    if not DEV.is_dir():
        sys.exit(f"needs the dev photos at {DEV}")
    settings = Settings(face_crop_size=args.size)
    analyzer = build_analyzer(settings, thumbnails=True)
    sizes: list[int] = []
    crop_ms: list[float] = []
    analysis_ms: list[float] = []
    for photo in sorted(DEV.rglob("*.jpg"))[: args.limit]:
        data = photo.read_bytes()
        started = time.perf_counter()
        faces = analyzer.analyze(data).faces
        analysis_ms.append((time.perf_counter() - started) * 1000)
        image = decode_image(data, max_pixels=settings.max_image_pixels, max_bytes=settings.max_image_bytes)
        for face in faces:
            started = time.perf_counter()
            crop = face_thumbnail(image.bgr, face.detection.box, args.size)
            crop_ms.append((time.perf_counter() - started) * 1000)
            sizes.append(len(crop))
    print(
        f"{args.limit} photos, {len(sizes)} faces, {args.size} px crops: "
        f"{statistics.mean(sizes) / 1000:.2f} KB mean ({max(sizes) / 1000:.2f} KB max), "
        f"{statistics.median(crop_ms):.2f} ms median to cut, "
        f"{statistics.median(analysis_ms):.1f} ms median analysis per photo"
    )


if __name__ == "__main__":
    main()
