"""Face detectors: image in, boxes + 5 landmarks + score out.

:class:`FaceDetector` is the whole interface; :class:`YuNetDetector` runs the
packaged YuNet through OpenCV. Another detector (e.g. SCRFD, see
:mod:`facetrace.vision.insightface`) only has to produce the same
:class:`Detection` records.
"""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from facetrace.vision.types import Detection
from facetrace.vision.weights import YUNET_FILE, ModelFile, packaged_model


class FaceDetector(Protocol):
    """Finds faces; coordinates are in the pixels of the image passed in."""

    model_id: str

    def detect(self, bgr: np.ndarray) -> list[Detection]: ...


def downscale_for_detection(bgr: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Shrink ``bgr`` so its longer side is at most ``max_side``; returns the image and the scale used."""
    height, width = bgr.shape[:2]
    longest = max(height, width)
    if longest <= max_side:
        return bgr, 1.0
    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(bgr, size, interpolation=cv2.INTER_AREA), scale


def keep_faces(detections: list[Detection], min_face_size: int) -> list[Detection]:
    """Drop faces too small to embed reliably; the rest, best score first."""
    kept = [d for d in detections if min(d.box[2], d.box[3]) >= min_face_size]
    return sorted(kept, key=lambda d: d.score, reverse=True)


class YuNetDetector:
    """YuNet (2023mar) through ``cv2.FaceDetectorYN``; large images are detected downscaled."""

    def __init__(
        self,
        model: ModelFile | None = None,
        *,
        score_threshold: float = 0.8,
        nms_threshold: float = 0.3,
        max_side: int = 1600,
        min_face_size: int = 16,
    ) -> None:
        model = model or packaged_model(YUNET_FILE)
        self.model_id = model.model_id("yunet-2023mar")
        self._max_side = max_side
        self._min_face_size = min_face_size
        self._net = cv2.FaceDetectorYN.create(
            str(model.path), "", (320, 320), score_threshold, nms_threshold, 5000
        )

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        small, scale = downscale_for_detection(bgr, self._max_side)
        self._net.setInputSize((small.shape[1], small.shape[0]))
        _, rows = self._net.detect(small)
        if rows is None:
            return []
        detections = [
            Detection(
                box=tuple(float(v) / scale for v in row[:4]),  # type: ignore[arg-type]
                landmarks=(row[4:14].reshape(5, 2) / scale).astype(np.float32),
                score=float(row[14]),
            )
            for row in rows
        ]
        return keep_faces(detections, self._min_face_size)
