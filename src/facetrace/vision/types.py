"""Plain data passed between the vision steps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Detection:
    """One face found in an image, in the image's own pixel coordinates.

    ``landmarks`` is a 5×2 array in the standard order: right eye, left eye
    (from the viewer's left to right), nose tip, right and left mouth corner.
    """

    box: tuple[float, float, float, float]  # x, y, width, height
    landmarks: np.ndarray  # shape (5, 2), float32
    score: float

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]

    @property
    def center(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return x + w / 2, y + h / 2


@dataclass(frozen=True, slots=True)
class AnalyzedFace:
    """A detected face with its template (L2-normalised embedding) and quality in [0, 1]."""

    detection: Detection
    embedding: np.ndarray  # shape (dim,), float32, unit norm
    quality: float
    thumbnail: bytes | None = None  # JPEG for result cards; made for the gallery, never for probes
