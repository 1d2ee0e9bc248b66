"""A face-quality score in [0, 1] from cues that are known to hurt recognition.

This is a transparent heuristic, not a learned quality model: it is the
geometric mean of four factors, each in [0, 1]:

* resolution — inter-ocular distance in the source image relative to the
  ~36 px the 112×112 template places between the eyes (smaller faces are upscaled);
* sharpness — variance of the Laplacian of the aligned crop (blur and heavy
  compression flatten it);
* frontality — how far the nose tip sits from the eyes' midpoint along the eye
  line, relative to the eye distance (a yaw proxy);
* the detector's own confidence.

A geometric mean lets any single bad factor pull the score down.
"""

from __future__ import annotations

import cv2
import numpy as np

from facetrace.vision.types import Detection

TEMPLATE_EYE_DISTANCE = 36.0  # pixels between the eyes in the 112×112 ArcFace template
SHARPNESS_FULL = 150.0  # Laplacian variance at which a crop counts as fully sharp
YAW_LIMIT = 0.5  # nose offset (in eye distances) at which frontality reaches 0


def face_quality(crop: np.ndarray, detection: Detection) -> float:
    right_eye, left_eye, nose = (detection.landmarks[i].astype(np.float64) for i in range(3))
    eye_vector = left_eye - right_eye
    eye_distance = float(np.linalg.norm(eye_vector))
    if eye_distance < 1e-6:
        return 0.0
    resolution = min(1.0, eye_distance / TEMPLATE_EYE_DISTANCE)

    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    sharpness = min(1.0, float(cv2.Laplacian(grey, cv2.CV_64F).var()) / SHARPNESS_FULL)

    offset = abs(float(np.dot(nose - (right_eye + left_eye) / 2, eye_vector / eye_distance)))
    frontality = max(0.0, 1.0 - offset / eye_distance / YAW_LIMIT)

    factors = np.array([resolution, sharpness, frontality, min(1.0, max(0.0, detection.score))])
    return float(np.prod(factors) ** (1 / len(factors)))
