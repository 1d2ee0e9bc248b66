"""decode → detect → align → embed → quality, for one image, with timings."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from facetrace.vision.decode import DECODE_MAX_SIDE, DEFAULT_MAX_DECODE_BYTES, decode_image
from facetrace.vision.detect import FaceDetector
from facetrace.vision.embed import FaceEmbedder
from facetrace.vision.perceptual_hash import perceptual_hash
from facetrace.vision.quality import face_quality
from facetrace.vision.thumbnail import face_thumbnail
from facetrace.vision.types import AnalyzedFace


@dataclass(slots=True)
class Timings:
    """Seconds spent per step; ``inference`` is the time inside the two networks."""

    decode: float = 0.0
    detect: float = 0.0
    embed: float = 0.0
    other: float = 0.0

    @property
    def inference(self) -> float:
        return self.detect + self.embed

    @property
    def total(self) -> float:
        return self.decode + self.detect + self.embed + self.other

    def add(self, other: Timings) -> None:
        self.decode += other.decode
        self.detect += other.detect
        self.embed += other.embed
        self.other += other.other


@dataclass(slots=True)
class ImageAnalysis:
    """Everything the pipeline learns from one image's bytes."""

    width: int
    height: int
    format: str
    model_id: str  # the embedder that made the templates
    faces: list[AnalyzedFace]
    #: Perceptual hash, linking resized and re-encoded copies; only of images going into the gallery.
    phash: str | None
    timings: Timings = field(default_factory=Timings)


class FaceAnalyzer:
    """Runs the vision steps on untrusted bytes; raises ``ImageError`` for unusable input.

    ``thumbnail_size``: also cut a JPEG of each face this many pixels square (0: none).
    ``perceptual_hashes``: also hash the image for near-duplicate linking (images going into the
    gallery; a probe's would be thrown away, and the first one imports SciPy). The limits are
    :func:`~facetrace.vision.decode.decode_image`'s.
    """

    def __init__(
        self,
        detector: FaceDetector,
        embedder: FaceEmbedder,
        *,
        max_pixels: int,
        max_bytes: int,
        max_decode_bytes: int = DEFAULT_MAX_DECODE_BYTES,
        max_side: int = DECODE_MAX_SIDE,
        thumbnail_size: int = 0,
        perceptual_hashes: bool = False,
    ) -> None:
        self.detector = detector
        self.embedder = embedder
        self._max_pixels = max_pixels
        self._max_bytes = max_bytes
        self._max_decode_bytes = max_decode_bytes
        self._max_side = max_side
        self._thumbnail_size = thumbnail_size
        self._perceptual_hashes = perceptual_hashes

    @property
    def model_id(self) -> str:
        """The embedding model: the one thing that decides which vectors may share an index."""
        return self.embedder.model_id

    def analyze(self, data: bytes) -> ImageAnalysis:
        timings = Timings()
        started = time.perf_counter()
        image = decode_image(
            data,
            max_pixels=self._max_pixels,
            max_bytes=self._max_bytes,
            max_decode_bytes=self._max_decode_bytes,
            max_side=self._max_side,
        )
        timings.decode = (mark := time.perf_counter()) - started

        detections = self.detector.detect(image.bgr)
        timings.detect = (now := time.perf_counter()) - mark
        mark = now

        faces: list[AnalyzedFace] = []
        for detection in detections:
            crop = self.embedder.align(image.bgr, detection)
            before_embed = time.perf_counter()
            embedding = self.embedder.embed(crop)
            after_embed = time.perf_counter()
            timings.embed += after_embed - before_embed
            thumbnail = (
                face_thumbnail(image.bgr, detection.box, self._thumbnail_size)
                if self._thumbnail_size
                else None
            )
            faces.append(AnalyzedFace(detection, embedding, face_quality(crop, detection), thumbnail))
        phash = perceptual_hash(image.bgr) if self._perceptual_hashes else None
        timings.other = time.perf_counter() - mark - timings.embed
        return ImageAnalysis(image.width, image.height, image.format, self.model_id, faces, phash, timings)
