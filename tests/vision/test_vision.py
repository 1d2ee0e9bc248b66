"""Detection, alignment, embedding and quality with the packaged YuNet + SFace models on real photos."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data as skimage_data

from facetrace.core.config import Settings
from facetrace.core.errors import ModelIntegrityError
from facetrace.vision import weights
from facetrace.vision.analyzer import FaceAnalyzer
from facetrace.vision.factory import build_analyzer
from facetrace.vision.thumbnail import face_thumbnail
from facetrace.vision.weights import SFACE_FILE, YUNET_FILE, model_at, packaged_model
from support.photos import encode

# Never opens a catalog (the face models only): the --catalog postgres pass skips it.
pytestmark = pytest.mark.no_catalog


def test_astronaut_has_one_face_where_it_is(analyzer: FaceAnalyzer, astronaut_jpeg: bytes) -> None:
    result = analyzer.analyze(astronaut_jpeg)
    assert (result.width, result.height, result.format) == (512, 512, "JPEG")
    assert len(result.faces) == 1
    face = result.faces[0]
    x, y, w, h = face.detection.box
    assert 150 < x < 210 and 40 < y < 90 and 70 < w < 110 and 90 < h < 140
    assert face.detection.score > 0.8
    landmarks = face.detection.landmarks
    assert landmarks.shape == (5, 2)
    assert ((landmarks[:, 0] > x) & (landmarks[:, 0] < x + w) & (landmarks[:, 1] > y)).all()
    assert landmarks[0, 0] < landmarks[1, 0]  # eyes in viewer order, left to right
    assert face.embedding.shape == (128,) and face.embedding.dtype == np.float32
    assert np.linalg.norm(face.embedding) == pytest.approx(1.0, abs=1e-5)
    assert result.model_id == analyzer.model_id == "sface-2021dec@0ba9fbfa01b5"


def test_same_person_is_close_and_another_is_far(analyzer: FaceAnalyzer, astronaut_rgb: np.ndarray) -> None:
    original = analyzer.analyze(encode(astronaut_rgb, "PNG")).faces[0].embedding
    mirrored = analyzer.analyze(encode(astronaut_rgb[:, ::-1].copy(), "PNG")).faces[0].embedding
    cameraman = analyzer.analyze(encode(skimage_data.camera(), "PNG")).faces
    assert len(cameraman) == 1
    assert float(original @ mirrored) > 0.8
    assert float(original @ cameraman[0].embedding) < 0.35


def test_large_images_are_detected_downscaled_with_landmarks_mapped_back(astronaut_rgb: np.ndarray) -> None:
    small_side = build_analyzer(Settings(detect_max_side=1024))
    reference = small_side.analyze(encode(astronaut_rgb, "PNG")).faces[0]
    big = cv2.resize(astronaut_rgb, (2048, 2048), interpolation=cv2.INTER_CUBIC)
    face = small_side.analyze(encode(big, "PNG")).faces[0]
    assert np.allclose(np.array(face.detection.box) / 4, reference.detection.box, rtol=0.05, atol=3)
    assert np.allclose(face.detection.landmarks / 4, reference.detection.landmarks, atol=4)
    # The crop is taken from the full-resolution image, so the template barely moves.
    assert float(face.embedding @ reference.embedding) > 0.9


def test_quality_ranks_blurred_and_tiny_faces_lower(
    analyzer: FaceAnalyzer, astronaut_rgb: np.ndarray
) -> None:
    sharp = analyzer.analyze(encode(astronaut_rgb, "PNG")).faces[0].quality
    blurred = analyzer.analyze(encode(cv2.GaussianBlur(astronaut_rgb, (0, 0), 4), "PNG")).faces[0].quality
    tiny_image = cv2.resize(astronaut_rgb, (128, 128), interpolation=cv2.INTER_AREA)
    tiny = analyzer.analyze(encode(tiny_image, "PNG")).faces[0].quality
    assert 0.8 < sharp <= 1.0
    assert blurred < sharp - 0.3
    assert tiny < sharp - 0.3


def test_gallery_faces_keep_a_square_crop_and_probes_none(astronaut_jpeg: bytes) -> None:
    settings = Settings(face_crop_size=64)
    (face,) = build_analyzer(settings, thumbnails=True).analyze(astronaut_jpeg).faces
    assert face.thumbnail is not None
    crop = cv2.imdecode(np.frombuffer(face.thumbnail, np.uint8), cv2.IMREAD_COLOR)
    assert crop.shape == (64, 64, 3)
    (probe,) = build_analyzer(settings).analyze(astronaut_jpeg).faces
    assert probe.thumbnail is None


def test_a_crop_past_the_image_edge_is_padded() -> None:
    white = np.full((100, 100, 3), 255, np.uint8)
    crop = cv2.imdecode(np.frombuffer(face_thumbnail(white, (0, 0, 40, 40), 50), np.uint8), cv2.IMREAD_COLOR)
    assert crop.shape == (50, 50, 3)
    assert crop[2, 2].mean() < 140  # the corner lies outside the photo: grey padding
    assert crop[25, 25].mean() > 240  # the face box itself is the photo


def test_no_face_in_a_cup_of_coffee(analyzer: FaceAnalyzer, coffee_png: bytes) -> None:
    assert analyzer.analyze(coffee_png).faces == []


def test_small_faces_below_the_minimum_are_skipped(astronaut_rgb: np.ndarray) -> None:
    picky = build_analyzer(Settings(min_face_size=200))
    assert picky.analyze(encode(astronaut_rgb, "PNG")).faces == []


def test_packaged_models_match_their_checksums() -> None:
    for name in (YUNET_FILE, SFACE_FILE):
        model = packaged_model(name)
        assert model.sha256 == weights.sha256_file(model.path)
    assert packaged_model(YUNET_FILE).model_id("yunet-2023mar") == "yunet-2023mar@8f2383e4dd3c"


def test_a_tampered_packaged_model_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tampered = tmp_path / "weights"
    shutil.copytree(weights.packaged_weights_dir(), tampered)
    target = tampered / YUNET_FILE
    target.chmod(0o644)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    monkeypatch.setattr(weights, "packaged_weights_dir", lambda: tampered)
    with pytest.raises(ModelIntegrityError, match="refusing to load"):
        packaged_model(YUNET_FILE)


def test_missing_or_mismatched_model_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelIntegrityError, match="not found"):
        model_at(tmp_path / "nothing.onnx")
    (tmp_path / "m.onnx").write_bytes(b"not really a model")
    with pytest.raises(ModelIntegrityError, match="expected 00"):
        model_at(tmp_path / "m.onnx", expected_sha256="00" * 32)
