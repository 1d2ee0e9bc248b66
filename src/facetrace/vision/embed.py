"""Face embedders: a detected face in, a unit-length template out.

Embedding happens in two steps so the pipeline can look at the aligned crop
(quality) without knowing how a model aligns: :meth:`FaceEmbedder.align` maps the
5 landmarks onto the 112×112 ArcFace template, :meth:`FaceEmbedder.embed` runs
the network on that crop.
"""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from facetrace.vision.types import Detection
from facetrace.vision.weights import SFACE_FILE, ModelFile, packaged_model


class FaceEmbedder(Protocol):
    """Turns an aligned face crop into a template; ``model_id`` is stored with every face."""

    model_id: str
    dim: int

    def align(self, bgr: np.ndarray, detection: Detection) -> np.ndarray: ...

    def embed(self, crop: np.ndarray) -> np.ndarray: ...


def l2_normalise(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def detection_row(detection: Detection) -> np.ndarray:
    """The 15-float row OpenCV's face APIs use: box, 5 landmarks, score."""
    return np.array(
        [*detection.box, *detection.landmarks.reshape(-1), detection.score], dtype=np.float32
    ).reshape(1, 15)


class SFaceEmbedder:
    """SFace (2021dec, 128-d) through ``cv2.FaceRecognizerSF``, aligned with its own ``alignCrop``."""

    dim = 128

    def __init__(self, model: ModelFile | None = None) -> None:
        model = model or packaged_model(SFACE_FILE)
        self.model_id = model.model_id("sface-2021dec")
        self._net = cv2.FaceRecognizerSF.create(str(model.path), "")

    def align(self, bgr: np.ndarray, detection: Detection) -> np.ndarray:
        return self._net.alignCrop(bgr, detection_row(detection))

    def embed(self, crop: np.ndarray) -> np.ndarray:
        return l2_normalise(self._net.feature(crop))
