"""What runs inside each worker process: the models, loaded once, applied to one image at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import cv2

from facetrace.core.config import Settings
from facetrace.core.errors import FacetraceError, ImageError
from facetrace.ingest.pool import Failure, WorkerPool
from facetrace.vision.analyzer import FaceAnalyzer, ImageAnalysis
from facetrace.vision.factory import build_analyzer

if TYPE_CHECKING:
    from facetrace.ingest.ray_pool import RayPool

ENGINES = ("local", "ray")

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


def analysis_pool(
    settings: Settings,
    workers: int | None = None,
    *,
    thumbnails: bool = False,
    engine: str = "local",
    ray_address: str | None = None,
) -> WorkerPool[Any] | RayPool[Any]:
    """A pool of face-analysis workers (``workers`` defaults to the settings: one per core);
    ``thumbnails``: also cut each face's result-card picture (for images going into the gallery).

    ``engine``: ``"local"``, processes on this machine, or ``"ray"``, Ray actors: a private
    local Ray instance when ``ray_address`` is None, else the cluster at that address."""
    if engine not in ENGINES:
        raise FacetraceError(f"unknown analysis engine {engine!r}: choose one of {', '.join(ENGINES)}")
    workers = workers or settings.worker_count
    if engine == "local":
        return WorkerPool(
            analyze_bytes, workers=workers, initializer=start_worker, initargs=(settings, thumbnails)
        )
    try:
        from facetrace.ingest.ray_pool import RayPool  # Ray is optional and slow to import
    except ModuleNotFoundError as exc:
        if exc.name != "ray":
            raise
        raise FacetraceError("the Ray engine needs Ray: install facetrace[ray]") from exc
    return RayPool(
        analyze_bytes,
        workers=workers,
        initializer=start_worker,
        initargs=(settings, thumbnails),
        address=ray_address,
    )
