"""Accuracy measures on inputs whose answers are known by construction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facetrace.evaluation import metrics
from facetrace.evaluation.dataset import make_pairs, read_pairs, scan_labelled_folder
from facetrace.evaluation.detection import DetectionScore, iou, read_imglab_boxes

# Never opens a catalog (accuracy measures on known inputs): the --catalog postgres pass skips it.
pytestmark = pytest.mark.no_catalog


def test_identification_ranks() -> None:
    # Four unit vectors on a circle: a, a' (mate, 10° away), b (40° away), distractor (20° from a).
    angles = np.radians([0, 10, 40, -20])
    embeddings = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    labels = ["a", "a", "b", None]
    result = metrics.leave_one_out_identification(embeddings, labels, np.array([True, True, False, False]))
    assert result.probes == 2 and result.rank1 == 1.0
    # Move the distractor between a and its mate's view: a' at 10°, distractor at 5° → a' ranks it first.
    embeddings[3] = [np.cos(np.radians(5)), np.sin(np.radians(5))]
    result = metrics.leave_one_out_identification(embeddings, labels, np.array([True, True, False, False]))
    assert result.rank1 == 0.0 and result.rank5 == 1.0


def test_genuine_and_impostor_pairs() -> None:
    labels = ["a", "a", "a", "b", "b", None, None]
    genuine = metrics.genuine_pairs(labels)
    assert sorted(map(tuple, genuine.tolist())) == [(0, 1), (0, 2), (1, 2), (3, 4)]
    impostor = metrics.impostor_pairs(labels, 10, seed=3)
    assert len(impostor) == 10 and len(set(map(tuple, impostor.tolist()))) == 10
    for i, j in impostor:
        assert i < j and (labels[i] is None or labels[i] != labels[j])
    assert np.array_equal(impostor, metrics.impostor_pairs(labels, 10, seed=3))  # fixed sample


def test_best_threshold_and_folds() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8])
    same = np.array([False, False, False, True, True, True])
    threshold = metrics.best_threshold(scores, same)
    assert 0.3 < threshold < 0.6
    folded = metrics.k_fold_accuracy(scores, same, np.array([0, 1, 2, 0, 1, 2]))
    assert folded.mean == 1.0 and folded.std == 0.0
    # One genuine pair below every impostor costs exactly one error in its fold.
    scores = np.append(scores, 0.05)
    same = np.append(same, True)
    folded = metrics.k_fold_accuracy(scores, same, np.array([0, 1, 2, 0, 1, 2, 0]))
    assert folded.folds == [pytest.approx(2 / 3), 1.0, 1.0]


def test_ties_never_split_equal_scores() -> None:
    scores = np.array([0.5, 0.5, 0.5, 0.9])
    same = np.array([True, False, False, True])
    threshold = metrics.best_threshold(scores, same)
    assert threshold < 0.5 or threshold > 0.5


def test_tar_at_far() -> None:
    impostor = np.linspace(0, 1, 10_001)
    genuine = np.array([0.9995, 0.9999, 0.5])
    tar, threshold = metrics.tar_at_far(genuine, impostor, 1e-3)
    assert threshold == pytest.approx(0.999)
    assert tar == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="cannot resolve"):
        metrics.tar_at_far(genuine, impostor[:100], 1e-3)


def lfw_like_folder(root: Path, people: int = 24, images: int = 3) -> Path:
    for p in range(people):
        name = f"Person_{p:02d}"
        (root / name).mkdir(parents=True)
        for i in range(1, images + 1):
            (root / name / f"{name}_{i:04d}.jpg").write_bytes(b"")
    (root / "_distractors").mkdir()
    (root / "_distractors" / "Someone_Else_0001.jpg").write_bytes(b"")
    return root


def test_make_and_read_pairs_in_lfw_format(tmp_path: Path) -> None:
    root = lfw_like_folder(tmp_path / "lfw")
    text = make_pairs(root, folds=4, per_fold=5, seed=1)
    lines = text.splitlines()
    assert lines[0] == "4\t5" and len(lines) == 1 + 4 * 10
    assert all(len(line.split("\t")) == 3 for line in lines[1:6])
    assert all(len(line.split("\t")) == 4 for line in lines[6:11])
    pairs_file = tmp_path / "pairs.txt"
    pairs_file.write_text(text)
    protocol = read_pairs(pairs_file, root)
    assert protocol.same.tolist() == ([True] * 5 + [False] * 5) * 4
    assert protocol.fold.tolist() == [f for f in range(4) for _ in range(10)]
    assert all(p.exists() for p in protocol.paths)
    # Identities never cross folds, as in LFW.
    names_per_fold = [
        {p.parent.name for p, f in zip(protocol.left, protocol.fold, strict=True) if f == k} for k in range(4)
    ]
    assert all(not (a & b) for i, a in enumerate(names_per_fold) for b in names_per_fold[i + 1 :])
    assert make_pairs(root, folds=4, per_fold=5, seed=1) == text  # deterministic


def test_scan_labelled_folder(tmp_path: Path) -> None:
    images = scan_labelled_folder(lfw_like_folder(tmp_path / "lfw", people=2, images=2))
    assert [i.identity for i in images] == ["Person_00", "Person_00", "Person_01", "Person_01", None]


def test_detection_matching_is_one_to_one(tmp_path: Path) -> None:
    (tmp_path / "truth.xml").write_text(
        "<dataset><images><image file='a.jpg'>"
        "<box top='10' left='10' width='20' height='20'/>"
        "<box top='10' left='100' width='20' height='20'/>"
        "<box top='50' left='50' width='9' height='9' ignore='1'/>"
        "</image></images></dataset>"
    )
    truth = read_imglab_boxes([tmp_path / "truth.xml"])
    assert truth == {tmp_path / "a.jpg": [(10.0, 10.0, 20.0, 20.0), (100.0, 10.0, 20.0, 20.0)]}
    boxes = truth[tmp_path / "a.jpg"]
    assert iou(boxes[0], boxes[0]) == 1.0 and iou(boxes[0], boxes[1]) == 0.0
    # Two detections on the first face (one loose, taller box) and one on nothing: one match.
    score = DetectionScore()
    score.add([(8, 5, 24, 28), (10, 10, 20, 20), (200, 200, 20, 20)], boxes)
    assert (score.truth, score.found, score.matched) == (2, 3, 1)
    assert score.recall == 0.5 and score.false_detections == 2
