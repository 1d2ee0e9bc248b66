"""SCRFD and ArcFace through onnxruntime, on small ONNX models built here with known outputs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from onnx import TensorProto, checker, helper, numpy_helper, save_model
from skimage import data as skimage_data

from facetrace.core.config import Settings
from facetrace.core.errors import FacetraceError, ModelIntegrityError
from facetrace.vision.detect import YuNetDetector
from facetrace.vision.embed import SFaceEmbedder
from facetrace.vision.factory import build_detector, build_embedder
from facetrace.vision.insightface import (
    ARCFACE_TEMPLATE,
    ArcFaceEmbedder,
    ScrfdDetector,
    similarity_transform,
)
from facetrace.vision.onnx_session import OnnxSession
from facetrace.vision.types import Detection
from facetrace.vision.weights import model_at

# Never opens a catalog (ONNX models only): the --catalog postgres pass skips it.
pytestmark = pytest.mark.no_catalog

Dim = int | str


def save_onnx(path: Path, nodes: list, inputs: list, outputs: list, initializers: list) -> Path:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # old enough for any onnxruntime the [onnx] extra allows
    checker.check_model(model)
    save_model(model, str(path))
    return path


def image_input(shape: list[Dim]) -> list:
    return [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, shape)]


# ---------------------------------------------------------------- ArcFace


def arcface_weights(pixels: int, dim: int) -> np.ndarray:
    return np.random.default_rng(7).standard_normal((pixels, dim), dtype=np.float32)


def build_arcface(path: Path, *, size: int = 112, dim: int = 512) -> Path:
    """input.1 (N×3×size×size) → Flatten → MatMul with fixed weights → N×dim, like InsightFace's exports."""
    nodes = [
        helper.make_node("Flatten", ["input.1"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "weights"], ["683"]),
    ]
    weights = numpy_helper.from_array(arcface_weights(3 * size * size, dim), "weights")
    output = helper.make_tensor_value_info("683", TensorProto.FLOAT, ["None", dim])
    return save_onnx(path, nodes, image_input(["None", 3, size, size]), [output], [weights])


@pytest.fixture(scope="module")
def arcface_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_arcface(tmp_path_factory.mktemp("arcface") / "w600k_test.onnx")


@pytest.fixture(scope="module")
def arcface(arcface_path: Path) -> ArcFaceEmbedder:
    return ArcFaceEmbedder(model_at(arcface_path))


def noise_crop(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (112, 112, 3), dtype=np.uint8)


def test_arcface_reads_its_size_and_names_itself(arcface: ArcFaceEmbedder, arcface_path: Path) -> None:
    assert arcface.dim == 512
    assert arcface.model_id == f"arcface-w600k_test@{model_at(arcface_path).sha256[:12]}"


def test_arcface_feeds_rgb_scaled_to_minus_one_one_and_returns_a_unit_vector(
    arcface: ArcFaceEmbedder,
) -> None:
    crop = noise_crop(1)
    vector = arcface.embed(crop)
    assert vector.shape == (512,) and vector.dtype == np.float32
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    rgb_chw = ((crop[..., ::-1].astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)
    expected = rgb_chw.reshape(-1) @ arcface_weights(3 * 112 * 112, 512)
    np.testing.assert_allclose(vector, expected / np.linalg.norm(expected), atol=1e-5)


def test_arcface_is_deterministic_and_tells_crops_apart(arcface: ArcFaceEmbedder) -> None:
    first, again, other = (arcface.embed(noise_crop(seed)) for seed in (1, 1, 2))
    assert np.array_equal(first, again)
    assert float(first @ other) < 0.5


def test_arcface_through_the_settings(arcface_path: Path) -> None:
    embedder = build_embedder(Settings(embedder="arcface", embedder_path=arcface_path))
    assert isinstance(embedder, ArcFaceEmbedder)
    assert embedder.dim == 512 and embedder.model_id.startswith("arcface-w600k_test@")
    assert np.linalg.norm(embedder.embed(noise_crop(3))) == pytest.approx(1.0, abs=1e-5)


def test_arcface_refuses_a_model_for_another_crop_size(tmp_path: Path) -> None:
    path = build_arcface(tmp_path / "big.onnx", size=128, dim=4)
    with pytest.raises(ModelIntegrityError, match=r"N×3×112×112"):
        ArcFaceEmbedder(model_at(path))


# ---------------------------------------------------------------- alignment


def test_similarity_transform_undoes_a_known_one_and_never_mirrors() -> None:
    angle = np.deg2rad(-35)
    linear = 1.7 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = ARCFACE_TEMPLATE @ linear.T + [120.0, -40.0]
    matrix = similarity_transform(landmarks, ARCFACE_TEMPLATE)
    np.testing.assert_allclose(landmarks @ matrix[:, :2].T + matrix[:, 2], ARCFACE_TEMPLATE, atol=1e-4)

    mirrored = landmarks * [-1.0, 1.0]
    assert np.linalg.det(similarity_transform(mirrored, ARCFACE_TEMPLATE)[:, :2]) > 0


def gaussian_spots(shape: tuple[int, int], centres: np.ndarray, sigma: float) -> np.ndarray:
    """A black BGR image with a bright Gaussian spot at each (x, y) centre."""
    ys, xs = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    spots = sum(np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2)) for x, y in centres)
    gray = np.clip(np.rint(255 * spots), 0, 255).astype(np.uint8)
    return cv2.merge([gray, gray, gray])


def spot_centre(gray: np.ndarray, near: np.ndarray, radius: int = 6) -> np.ndarray:
    """Intensity-weighted centroid of the window around ``near``."""
    x0, y0 = (round(float(v)) - radius for v in near)
    window = gray[y0 : y0 + 2 * radius + 1, x0 : x0 + 2 * radius + 1].astype(np.float64)
    ys, xs = np.mgrid[: window.shape[0], : window.shape[1]]
    return np.array([(xs * window).sum(), (ys * window).sum()]) / window.sum() + [x0, y0]


def test_aligned_crop_puts_the_landmarks_on_the_template(arcface: ArcFaceEmbedder) -> None:
    angle, scale = np.deg2rad(20), 2.5
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = (scale * ARCFACE_TEMPLATE @ rotation.T + [150.0, 90.0]).astype(np.float32)
    image = gaussian_spots((400, 400), landmarks, sigma=1.5 * scale)
    detection = Detection(box=(100.0, 80.0, 250.0, 300.0), landmarks=landmarks, score=1.0)

    crop = arcface.align(image, detection)

    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    found = np.array([spot_centre(crop[..., 0], point) for point in ARCFACE_TEMPLATE])
    np.testing.assert_allclose(found, ARCFACE_TEMPLATE, atol=0.1)  # measured: 0.004 px


def test_alignment_matches_opencv_align_crop_on_a_real_face(arcface: ArcFaceEmbedder) -> None:
    bgr = cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)
    detection = YuNetDetector().detect(bgr)[0]

    ours = arcface.align(bgr, detection).astype(np.float64)
    opencv = SFaceEmbedder().align(bgr, detection).astype(np.float64)

    assert ours.shape == opencv.shape == (112, 112, 3)
    # Measured: 0.0007 (26 of 37,632 values one level apart, from rounding in the warp).
    assert np.abs(ours - opencv).mean() < 0.05


# ---------------------------------------------------------------- SCRFD

STRIDES = (8, 16, 32)
# One face, placed on the letterboxed 640×640 canvas: the anchor at row 10, column 12 of stride 16.
FACE_STRIDE, FACE_ROW, FACE_COLUMN = 16, 10, 12
FACE_CENTRE = np.array([FACE_COLUMN * FACE_STRIDE, FACE_ROW * FACE_STRIDE], dtype=np.float32)  # (192, 160)
FACE_BOX = np.array([160.0, 112.0, 72.0, 104.0], dtype=np.float32)  # x, y, w, h on the canvas
FACE_LANDMARKS = np.array(
    [[176.0, 140.0], [212.0, 140.0], [194.0, 165.0], [180.0, 190.0], [208.0, 190.0]], dtype=np.float32
)


def scrfd_tensors(*, size: int = 640) -> list[np.ndarray]:
    """What a SCRFD_kps model outputs (scores, then boxes, then keypoints), in stride units.

    The face sits on anchor 0 of its location at score 0.9; anchor 1 there sees the
    same face at 0.85 (for NMS to drop), and a weak 0.3 elsewhere stays under the threshold.
    """
    rows = [(size // s) ** 2 * 2 for s in STRIDES]
    scores = [np.zeros((n, 1), np.float32) for n in rows]
    boxes = [np.zeros((n, 4), np.float32) for n in rows]
    keypoints = [np.zeros((n, 10), np.float32) for n in rows]
    level = STRIDES.index(FACE_STRIDE)
    anchor = (FACE_ROW * (size // FACE_STRIDE) + FACE_COLUMN) * 2
    x, y, w, h = FACE_BOX
    left, top = FACE_CENTRE - [x, y]
    distances = np.array([left, top, w - left, h - top]) / FACE_STRIDE
    for index, score in ((anchor, 0.9), (anchor + 1, 0.85)):
        scores[level][index] = score
        boxes[level][index] = distances
        keypoints[level][index] = ((FACE_LANDMARKS - FACE_CENTRE) / FACE_STRIDE).reshape(-1)
    scores[2][100] = 0.3
    boxes[2][100] = [1.0, 1.0, 1.0, 1.0]
    return scores + boxes + keypoints


def build_scrfd(
    path: Path, tensors: list[np.ndarray], *, input_shape: list[Dim], batched: bool = False
) -> Path:
    """A model whose outputs are ``tensors``, plus 0 × the image's mean so the image is really read."""
    nodes = [
        helper.make_node("ReduceMean", ["input.1"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
    ]
    initializers = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    outputs = []
    for i, tensor in enumerate(tensors):
        value = tensor[None] if batched else tensor
        initializers.append(numpy_helper.from_array(value, f"const{i}"))
        nodes.append(helper.make_node("Add", [f"const{i}", "nothing"], [f"out{i}"]))
        outputs.append(helper.make_tensor_value_info(f"out{i}", TensorProto.FLOAT, list(value.shape)))
    return save_onnx(path, nodes, image_input(input_shape), outputs, initializers)


LAYOUTS = {
    "fixed-640": {"input_shape": [1, 3, 640, 640], "batched": False},
    "dynamic-batched": {"input_shape": ["batch", 3, "height", "width"], "batched": True},
}


@pytest.fixture(params=list(LAYOUTS))
def scrfd_path(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return build_scrfd(tmp_path / "scrfd_test_kps.onnx", scrfd_tensors(), **LAYOUTS[request.param])


@pytest.mark.parametrize(
    ("height", "width", "max_side", "canvas_per_pixel"),
    [
        (480, 960, 1600, 640 / 960),  # wide: fills the canvas width, black below
        (960, 480, 1600, 640 / 960),  # tall: fills the canvas height, black to the right
        (1500, 3000, 1600, 640 / 3000),  # larger than max_side: shrunk to 1600×800 first
    ],
)
def test_scrfd_decodes_the_face_into_image_pixels(
    scrfd_path: Path, height: int, width: int, max_side: int, canvas_per_pixel: float
) -> None:
    detector = ScrfdDetector(model_at(scrfd_path), max_side=max_side)

    faces = detector.detect(np.zeros((height, width, 3), np.uint8))

    assert len(faces) == 1
    face = faces[0]
    assert face.score == pytest.approx(0.9)
    np.testing.assert_allclose(face.box, FACE_BOX / canvas_per_pixel, rtol=1e-5)
    assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float32
    np.testing.assert_allclose(face.landmarks, FACE_LANDMARKS / canvas_per_pixel, rtol=1e-5)
    assert detector.model_id.startswith("scrfd-scrfd_test_kps@")


def test_scrfd_skips_faces_below_the_minimum_size(scrfd_path: Path) -> None:
    picky = ScrfdDetector(model_at(scrfd_path), min_face_size=120)
    assert picky.detect(np.zeros((640, 640, 3), np.uint8)) == []


def test_scrfd_without_keypoints_is_refused(tmp_path: Path) -> None:
    path = build_scrfd(tmp_path / "scrfd_test.onnx", scrfd_tensors()[:6], input_shape=[1, 3, 640, 640])
    with pytest.raises(ModelIntegrityError, match="without keypoint outputs"):
        ScrfdDetector(model_at(path))


def test_scrfd_outputs_out_of_order_are_refused(tmp_path: Path) -> None:
    scores, boxes, keypoints = (scrfd_tensors()[i : i + 3] for i in (0, 3, 6))
    path = build_scrfd(tmp_path / "shuffled.onnx", boxes + scores + keypoints, input_shape=[1, 3, 640, 640])
    with pytest.raises(ModelIntegrityError, match="InsightFace's order"):
        ScrfdDetector(model_at(path))


def test_scrfd_outputs_that_do_not_fit_the_input_size_are_refused(tmp_path: Path) -> None:
    path = build_scrfd(tmp_path / "small.onnx", scrfd_tensors(), input_shape=[1, 3, 320, 320])
    detector = ScrfdDetector(model_at(path))
    with pytest.raises(ModelIntegrityError, match="for a 320×320 input"):
        detector.detect(np.zeros((100, 100, 3), np.uint8))


def test_scrfd_through_the_settings(scrfd_path: Path) -> None:
    settings = Settings(detector="scrfd", detector_path=scrfd_path, detect_score_threshold=0.5)
    detector = build_detector(settings)
    assert isinstance(detector, ScrfdDetector)
    assert len(detector.detect(np.zeros((640, 640, 3), np.uint8))) == 1


@pytest.mark.parametrize(
    ("overrides", "build", "variable"),
    [
        ({"detector": "scrfd"}, build_detector, "FACETRACE_DETECTOR_PATH"),
        ({"embedder": "arcface"}, build_embedder, "FACETRACE_EMBEDDER_PATH"),
    ],
)
def test_onnx_models_need_a_path(
    overrides: dict[str, str], build: Callable[[Settings], object], variable: str
) -> None:
    with pytest.raises(FacetraceError, match=variable):
        build(Settings(**overrides))


# ---------------------------------------------------------------- the session


def test_a_file_that_is_not_onnx_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "scrfd.onnx"
    path.write_bytes(b"<html>404 not found</html>")
    with pytest.raises(ModelIntegrityError, match="not a loadable ONNX model"):
        OnnxSession(model_at(path))


def test_missing_onnxruntime_says_which_extra_to_install(
    arcface_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(ModelIntegrityError, match=r"facetrace\[onnx\]"):
        OnnxSession(model_at(arcface_path))
