"""Build the detector, embedder and analyzer the settings ask for."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from facetrace.core.config import Settings
from facetrace.core.errors import FacetraceError
from facetrace.vision.analyzer import FaceAnalyzer
from facetrace.vision.decode import DECODE_MAX_SIDE
from facetrace.vision.detect import FaceDetector, YuNetDetector
from facetrace.vision.embed import FaceEmbedder, SFaceEmbedder
from facetrace.vision.weights import model_at


def build_detector(settings: Settings) -> FaceDetector:
    if settings.detector == "yunet":
        model = model_at(settings.detector_path) if settings.detector_path else None
        detector_class: Callable[..., FaceDetector] = YuNetDetector
    elif settings.detector == "scrfd":
        from facetrace.vision.insightface import ScrfdDetector

        model = model_at(_required(settings.detector_path, "detector"))
        detector_class = ScrfdDetector
    else:
        raise FacetraceError(f"unknown detector {settings.detector!r}: use 'yunet' or 'scrfd'")
    return detector_class(
        model,
        score_threshold=settings.detect_score_threshold,
        nms_threshold=settings.detect_nms_threshold,
        max_side=settings.detect_max_side,
        min_face_size=settings.min_face_size,
    )


def build_embedder(settings: Settings) -> FaceEmbedder:
    if settings.embedder == "sface":
        return SFaceEmbedder(model_at(settings.embedder_path) if settings.embedder_path else None)
    if settings.embedder == "arcface":
        from facetrace.vision.insightface import ArcFaceEmbedder

        return ArcFaceEmbedder(model_at(_required(settings.embedder_path, "embedder")))
    raise FacetraceError(f"unknown embedder {settings.embedder!r}: use 'sface' or 'arcface'")


def build_analyzer(settings: Settings, *, thumbnails: bool = False) -> FaceAnalyzer:
    """The analyzer of the settings; ``thumbnails`` for images going into the gallery (a face's
    result-card picture, ``face_crop_size`` pixels square, and the image's perceptual hash), never
    for probes."""
    return FaceAnalyzer(
        build_detector(settings),
        build_embedder(settings),
        max_pixels=settings.max_image_pixels,
        max_bytes=settings.max_image_bytes,
        max_decode_bytes=settings.max_decode_bytes,
        # Never less than the detector looks at: a larger FACETRACE_DETECT_MAX_SIDE keeps its detail.
        max_side=max(DECODE_MAX_SIDE, settings.detect_max_side),
        thumbnail_size=settings.face_crop_size if thumbnails else 0,
        perceptual_hashes=thumbnails,
    )


def _required(path: Path | None, what: str) -> Path:
    if path is None:
        raise FacetraceError(f"FACETRACE_{what.upper()}_PATH must name the ONNX file for this {what}")
    return path
