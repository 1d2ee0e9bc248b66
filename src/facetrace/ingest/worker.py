"""What runs inside each worker process: the models, loaded once, applied to one image at a time."""

from __future__ import annotations

import cv2

from facetrace.config import Settings
from facetrace.errors import ImageError
from facetrace.ingest.pool import Failure, WorkerPool
from facetrace.vision.analyzer import FaceAnalyzer, ImageAnalysis
from facetrace.vision.factory import build_analyzer

_analyzer: FaceAnalyzer | None = None


def start_worker(settings: Settings, thumbnails: bool) -> None:
    """Pool initializer: one OpenCV thread per process (the pool is the parallelism), models loaded once."""
    global _analyzer
    cv2.setNumThreads(1)
    _analyzer = build_analyzer(settings, thumbnails=thumbnails)


def analyze_bytes(data: bytes) -> ImageAnalysis | Failure:
    """Analyse one image; bad input comes back as a :class:`Failure`, never as a dead worker."""
    assert _analyzer is not None, "start_worker was not called"
    try:
        return _analyzer.analyze(data)
    except ImageError as exc:
        return Failure(str(exc))
    except cv2.error as exc:
        return Failure(f"OpenCV could not process the image: {exc.msg if hasattr(exc, 'msg') else exc}")


def analysis_pool(settings: Settings, workers: int | None = None, *, thumbnails: bool = False) -> WorkerPool:
    """A pool of face-analysis workers (``workers`` defaults to the settings: one per core);
    ``thumbnails``: also cut each face's result-card picture (for images going into the gallery)."""
    return WorkerPool(
        analyze_bytes,
        workers=workers or settings.worker_count,
        initializer=start_worker,
        initargs=(settings, thumbnails),
    )
