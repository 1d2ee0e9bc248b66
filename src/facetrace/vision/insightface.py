"""InsightFace-style ONNX models plugged in by path: SCRFD (detector) and ArcFace (embedder).

Pre- and post-processing follow InsightFace's reference code
(``python-package/insightface/model_zoo/scrfd.py``, ``arcface_onnx.py`` and
``utils/face_align.py``) so that its published models behave here as they do
there; :class:`~facetrace.vision.onnx_session.OnnxSession` runs them.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facetrace.core.errors import ModelIntegrityError
from facetrace.vision.detect import downscale_for_detection, keep_faces
from facetrace.vision.embed import l2_normalise
from facetrace.vision.onnx_session import OnnxSession, Shape
from facetrace.vision.types import Detection
from facetrace.vision.weights import ModelFile

CROP_SIZE = 112
# Where ArcFace models expect the 5 landmarks in the 112×112 crop (InsightFace's ``arcface_dst``).
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)

SCRFD_STRIDES = (8, 16, 32)
SCRFD_ANCHORS = 2  # anchors per feature-map location
SCRFD_DEFAULT_SIZE = (640, 640)  # width, height; for models exported with a dynamic input size
_SCRFD_ROW_WIDTHS = (1,) * 3 + (4,) * 3 + (10,) * 3  # scores, box distances, keypoint offsets


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2×3 least-squares similarity (rotation, uniform scale, shift) taking ``src`` onto ``dst``.

    Umeyama (1991), as ``skimage.transform.SimilarityTransform`` estimates it for
    InsightFace, but never a reflection: a mirrored face stays mirrored rather
    than being flipped into a different-looking one.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_centred, dst_centred = src - src_mean, dst - dst_mean
    u, singular, vt = np.linalg.svd(dst_centred.T @ src_centred / len(src))
    signs = np.array([1.0, 1.0 if np.linalg.det(u) * np.linalg.det(vt) >= 0 else -1.0])
    rotation = u @ np.diag(signs) @ vt
    scale = float(singular @ signs) / float(src_centred.var(axis=0).sum())
    shift = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, shift[:, None]])


class ArcFaceEmbedder:
    """An InsightFace ArcFace recogniser: 1×3×112×112 RGB in, (pixel − 127.5) / 127.5, one vector out."""

    def __init__(self, model: ModelFile) -> None:
        self.model_id = model.model_id(f"arcface-{model.path.stem}")
        self._session = OnnxSession(model)
        self.dim = _arcface_dim(self._session, model.path)

    def align(self, bgr: np.ndarray, detection: Detection) -> np.ndarray:
        matrix = similarity_transform(detection.landmarks, ARCFACE_TEMPLATE)
        return cv2.warpAffine(bgr, matrix, (CROP_SIZE, CROP_SIZE), borderValue=0.0)

    def embed(self, crop: np.ndarray) -> np.ndarray:
        blob = cv2.dnn.blobFromImage(
            crop, 1.0 / 127.5, (CROP_SIZE, CROP_SIZE), (127.5, 127.5, 127.5), swapRB=True
        )
        return l2_normalise(self._session.run(blob)[0])


def _arcface_dim(session: OnnxSession, path: Path) -> int:
    """The embedding size, after checking the model takes the crops :meth:`ArcFaceEmbedder.align` makes."""
    shape = session.inputs[0].shape
    wanted = (3, CROP_SIZE, CROP_SIZE)
    if len(shape) != 4 or any(_fixed(a) not in (None, w) for a, w in zip(shape[1:], wanted, strict=True)):
        raise ModelIntegrityError(
            f"{path} takes input of shape {shape}; an ArcFace model takes N×3×{CROP_SIZE}×{CROP_SIZE}"
        )
    dim = _fixed(session.outputs[0].shape[-1])
    if dim is None:
        raise ModelIntegrityError(f"{path} does not declare the size of its embedding (output shape)")
    return dim


class ScrfdDetector:
    """An InsightFace SCRFD detector with keypoints (the ``*_kps`` models: 9 outputs).

    The image is first shrunk to ``max_side`` (area interpolation, which aliases
    less than the letterbox's bilinear resize of a very large photo would), then
    letterboxed into the model's input size, as InsightFace does.
    """

    def __init__(
        self,
        model: ModelFile,
        *,
        score_threshold: float = 0.5,
        nms_threshold: float = 0.4,
        max_side: int = 1600,
        min_face_size: int = 16,
    ) -> None:
        self.model_id = model.model_id(f"scrfd-{model.path.stem}")
        self._session = OnnxSession(model)
        _check_scrfd_outputs(self._session, model.path)
        self._input_size = _scrfd_input_size(self._session.inputs[0].shape)
        self._batched = len(self._session.outputs[0].shape) == 3
        width, height = self._input_size
        self._centres = [anchor_centres(height // s, width // s, s) for s in SCRFD_STRIDES]
        self._score_threshold = score_threshold
        self._nms_threshold = nms_threshold
        self._max_side = max_side
        self._min_face_size = min_face_size

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        small, shrink = downscale_for_detection(bgr, self._max_side)
        canvas, fit = letterbox(small, self._input_size)
        blob = cv2.dnn.blobFromImage(
            canvas, 1.0 / 128.0, self._input_size, (127.5, 127.5, 127.5), swapRB=True
        )
        boxes, landmarks, scores = self._decode(self._session.run(blob))
        keep = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), self._score_threshold, self._nms_threshold)
        scale = shrink * fit  # canvas pixels per original pixel
        detections = [
            Detection(
                box=tuple(float(v) / scale for v in boxes[i]),  # type: ignore[arg-type]
                landmarks=(landmarks[i] / scale).astype(np.float32),
                score=float(scores[i]),
            )
            for i in np.asarray(keep, dtype=int).reshape(-1)
        ]
        return keep_faces(detections, self._min_face_size)

    def _decode(self, outputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (x, y, w, h), 5×2 landmarks and scores above the threshold, in canvas pixels."""
        if self._batched:
            outputs = [output[0] for output in outputs]
        count = len(SCRFD_STRIDES)
        boxes, landmarks, scores = [], [], []
        for level, (stride, centres) in enumerate(zip(SCRFD_STRIDES, self._centres, strict=True)):
            level_scores = outputs[level].reshape(-1)
            if len(level_scores) != len(centres):
                raise ModelIntegrityError(
                    f"SCRFD output {level} has {len(level_scores)} scores for stride {stride}; "
                    f"expected {len(centres)} for a {self._input_size[0]}×{self._input_size[1]} input"
                )
            hits = level_scores >= self._score_threshold
            boxes.append(distance_to_box(centres[hits], outputs[level + count][hits] * stride))
            landmarks.append(distance_to_keypoints(centres[hits], outputs[level + 2 * count][hits] * stride))
            scores.append(level_scores[hits])
        return np.concatenate(boxes), np.concatenate(landmarks), np.concatenate(scores)


def anchor_centres(rows: int, columns: int, stride: int) -> np.ndarray:
    """(x, y) of every anchor of one feature map, row by row, each location once per anchor."""
    ys, xs = np.mgrid[:rows, :columns]
    centres = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float32) * stride
    return np.repeat(centres, SCRFD_ANCHORS, axis=0)


def distance_to_box(centres: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """(x, y, w, h) from the distances left, up, right and down of each centre."""
    top_left = centres - distances[:, :2]
    return np.hstack([top_left, distances[:, :2] + distances[:, 2:4]])


def distance_to_keypoints(centres: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """5×2 keypoints per centre from their (dx, dy) offsets."""
    keypoints: np.ndarray = centres[:, None, :] + offsets.reshape(-1, 5, 2)
    return keypoints


def letterbox(bgr: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """``bgr`` resized to fit ``size`` (width, height) keeping its aspect ratio, top-left on black.

    Returns the canvas and the scale from image to canvas pixels.
    """
    height, width = bgr.shape[:2]
    canvas_width, canvas_height = size
    ratio = height / width
    if ratio > canvas_height / canvas_width:
        new_height = canvas_height
        new_width = max(1, int(new_height / ratio))
    else:
        new_width = canvas_width
        new_height = max(1, int(new_width * ratio))
    canvas = np.zeros((canvas_height, canvas_width, 3), dtype=bgr.dtype)
    canvas[:new_height, :new_width] = cv2.resize(bgr, (new_width, new_height))
    return canvas, new_height / height


def _check_scrfd_outputs(session: OnnxSession, path: Path) -> None:
    shapes = [output.shape for output in session.outputs]
    if len(shapes) in (6, 10):
        raise ModelIntegrityError(
            f"{path} is a SCRFD model without keypoint outputs; Facetrace needs the 5 landmarks "
            "to align faces: use a keypoint ('_kps') variant"
        )
    if len(shapes) != len(_SCRFD_ROW_WIDTHS):
        raise ModelIntegrityError(
            f"{path} has {len(shapes)} outputs; a SCRFD model with keypoints has 9 "
            f"(scores, boxes, keypoints for strides {SCRFD_STRIDES})"
        )
    widths = [_fixed(shape[-1]) for shape in shapes]
    if any(w not in (None, want) for w, want in zip(widths, _SCRFD_ROW_WIDTHS, strict=True)):
        raise ModelIntegrityError(
            f"{path} has outputs of shapes {shapes}; expected InsightFace's order: "
            "3 score outputs (N×1), then 3 box (N×4), then 3 keypoint (N×10)"
        )


def _scrfd_input_size(shape: Shape) -> tuple[int, int]:
    """(width, height) the model was exported for, or the default for a dynamic input."""
    if len(shape) != 4:
        raise ModelIntegrityError(f"a SCRFD model takes an N×3×H×W image; this one takes {shape}")
    height, width = (_fixed(v) for v in shape[2:])
    return (width, height) if width and height else SCRFD_DEFAULT_SIZE


def _fixed(dim: int | str | None) -> int | None:
    """A tensor dimension if fixed; ``None`` if dynamic (named, unknown, or exported as -1/0)."""
    return dim if isinstance(dim, int) and dim > 0 else None
