"""Calibrated scores: impostor counts on a grid, expected false matches, weak results hidden."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facetrace.core.config import Settings
from facetrace.evaluation.calibration import calibrate_folder, impostor_curve
from facetrace.gallery import calibration
from facetrace.gallery.calibration import CalibrationResult, ImpostorCurve
from facetrace.gallery.gallery import Gallery
from facetrace.gallery.results import SearchResponse
from facetrace.gallery.search import search_photo
from facetrace.vision.analyzer import FaceAnalyzer
from support.ingesting import ingest


def test_impostor_curve_counts_every_impostor_pair_once() -> None:
    angles = np.radians([0, 10, 90, 180])  # a, a' (same person), b, c
    embeddings = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    curve = impostor_curve(embeddings, ["a", "a", "b", None])
    # Impostor pairs: a-b, a-c, a'-b, a'-c, b-c → scores cos 90°, cos 180°, cos 80°, cos 170°, cos 90°.
    assert curve.pairs == 5
    assert curve.far(-1.0) == 1.0
    assert curve.far(0.0) == pytest.approx(3 / 5)  # 0, 0 and cos 80° = 0.17
    assert curve.far(0.1) == pytest.approx(1 / 5)
    assert curve.far(0.9) == pytest.approx(1 / 5)  # never below one pair: the resolution of the set
    assert curve.expected_false_matches(0.1, gallery_size=1000) == pytest.approx(200)


def test_far_is_read_conservatively_between_grid_points() -> None:
    curve = ImpostorCurve(pairs=100, counts_at_least=[100] * 200 + [10, 5] + [0] * 199)
    # Grid point 200 is score 0.0, 201 is 0.005: a score between them reads the lower point's count.
    assert curve.far(0.0) == 0.1 and curve.far(0.004) == 0.1 and curve.far(0.005) == 0.05
    assert curve.score_at_far(0.05) == 0.005 and curve.score_at_far(0.01) == 0.01


def test_search_reports_expected_false_matches_and_hides_weak_results(
    settings: Settings, tmp_path: Path, astronaut_jpeg: bytes, analyzer: FaceAnalyzer
) -> None:
    (tmp_path / "astronaut.jpg").write_bytes(astronaut_jpeg)
    ingest(settings, [str(tmp_path / "astronaut.jpg")], source_name="nasa")
    probe = astronaut_jpeg
    uncalibrated = search_photo(settings, analyzer, probe, k=5)
    assert not uncalibrated.calibrated and uncalibrated.hits[0].expected_false_matches is None

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(200, 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    curve = impostor_curve(vectors, [f"person-{i}" for i in range(200)])
    gallery = Gallery.open(settings, analyzer.model_id, analyzer.embedder.dim)
    with gallery.sessions.begin() as session:
        calibration.store(session, CalibrationResult(analyzer.model_id, "random", 200, 200, curve))

    outcome = search_photo(settings, analyzer, probe, k=5)
    hit = outcome.hits[0]
    assert outcome.calibrated and hit.score > 0.99
    assert hit.expected_false_matches == pytest.approx(1 / curve.pairs)  # above every impostor: the floor
    assert SearchResponse.of(outcome).results[0].expected_false_matches == pytest.approx(
        1 / curve.pairs, rel=1e-2
    )

    strict = settings.model_copy(update={"max_expected_false_matches": 0.0})
    hidden = search_photo(strict, analyzer, probe, k=5)
    assert hidden.hits == [] and hidden.hidden == 1


@pytest.mark.slow
def test_calibrating_a_labelled_folder(shared_faces: Path, settings: Settings) -> None:
    result = calibrate_folder(settings, shared_faces / "misc" / "labeled_extra" / "deepface", workers=2)
    assert result.images_with_face >= 50 and result.curve.pairs >= 1000
    # Different people rarely reach SFace's published threshold (0.363).
    assert result.curve.far(0.363) < 0.05
