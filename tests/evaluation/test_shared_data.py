"""Accuracy and robustness on the real labelled photos in ../shared/data/faces (skipped when absent).

The bounds are the issue's acceptance targets, not numbers tuned to these files.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from facetrace.core.config import Settings
from facetrace.evaluation.dataset import make_pairs
from facetrace.evaluation.detection import DetectionScore, read_imglab_boxes
from facetrace.evaluation.runner import evaluate_folder, evaluate_pairs
from facetrace.gallery.gallery import Gallery
from facetrace.gallery.search import search_photo
from facetrace.ingest.inputs import IMAGE_SUFFIXES
from facetrace.ingest.pool import Failure
from facetrace.ingest.worker import analysis_pool
from facetrace.vision.analyzer import FaceAnalyzer
from support.ingesting import ingest

# no_catalog: analysis and evaluation only; only the search test ingests into a catalog.
pytestmark = pytest.mark.shared_data


def face_counts(settings: Settings, paths: list[Path]) -> dict[Path, int | str]:
    """Faces found per file (or the failure message), through the real worker pool."""
    with analysis_pool(settings, workers=2) as pool:
        return {
            path: result.message if isinstance(result, Failure) else len(result.faces)
            for path, result in pool.map((p, p.read_bytes()) for p in paths)
        }


@pytest.mark.no_catalog
@pytest.mark.slow
def test_misc_robustness_and_face_counts(shared_faces: Path, settings: Settings) -> None:
    misc = shared_faces / "misc"
    paths = sorted(p for p in misc.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    counts = face_counts(settings, paths)
    assert len(counts) == len(paths)  # every file answered: no worker died, nothing skipped silently
    assert all(isinstance(n, int) for n in counts.values()), {
        p: n for p, n in counts.items() if isinstance(n, str)
    }

    manifest = list(csv.DictReader((misc / "manifest.csv").open()))
    no_face = [shared_faces / row["path"] for row in manifest if row["category"] == "no_face"]
    assert len(no_face) == 40
    assert {p.name: counts[p] for p in no_face if counts[p]} == {}
    for row in manifest:
        if row["category"] in ("single_face", "group") and row["expected_faces"]:
            found = counts[shared_faces / row["path"]]
            assert abs(found - int(row["expected_faces"])) <= 1, (row["path"], found)

    dlib_faces = misc / "group" / "dlib_faces"
    truth = read_imglab_boxes([dlib_faces / "training.xml", dlib_faces / "testing.xml"])
    assert len(truth) == 9
    for path, boxes in truth.items():
        assert abs(counts[path] - len(boxes)) <= 1, path.name


@pytest.mark.no_catalog
def test_detections_match_annotated_boxes(shared_faces: Path, analyzer: FaceAnalyzer) -> None:
    """Not just the right number of faces: the boxes cover the annotated faces (IoU >= 0.3, one to one)."""
    dlib_faces = shared_faces / "misc" / "group" / "dlib_faces"
    score = DetectionScore()
    for path, boxes in read_imglab_boxes([dlib_faces / "training.xml", dlib_faces / "testing.xml"]).items():
        score.add([face.detection.box for face in analyzer.analyze(path.read_bytes()).faces], boxes)
    assert score.truth == 43
    assert score.recall >= 0.95
    assert score.false_detections <= 2


@pytest.mark.no_catalog
@pytest.mark.slow
def test_dev_identification_and_verification(shared_faces: Path, settings: Settings) -> None:
    report = evaluate_folder(settings, shared_faces / "dev", workers=2)
    assert report["images"] == 3035 and report["images_failed"] == 0
    assert report["images_without_face"] == 0
    assert report["identification"]["rank1"] >= 0.98
    assert report["identification"]["rank5"] >= report["identification"]["rank1"]
    assert report["verification"]["accuracy"] >= 0.99
    assert report["verification"]["tar_at_far_1e-3"] >= 0.95
    assert 0 < report["throughput"]["inference_share"] <= 1


@pytest.mark.no_catalog
@pytest.mark.slow
def test_dev_originals_unaligned(shared_faces: Path, settings: Settings) -> None:
    report = evaluate_folder(settings, shared_faces / "dev_original150", workers=2)
    assert report["images_without_face"] == 0
    assert report["identification"]["rank1"] >= 0.97
    assert report["verification"]["accuracy"] >= 0.98


@pytest.mark.no_catalog
@pytest.mark.slow
def test_lfw_pairs_protocol_on_dev(shared_faces: Path, settings: Settings, tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(make_pairs(shared_faces / "dev"))
    report = evaluate_pairs(settings, shared_faces / "dev", pairs, workers=2)
    assert report["pairs"] == 10 * 2 * int(pairs.read_text().split()[1])
    assert len(report["fold_accuracies"]) == 10
    assert report["accuracy"] >= 0.99


@pytest.mark.slow
def test_search_finds_the_held_out_person(
    shared_faces: Path, settings: Settings, analyzer: FaceAnalyzer
) -> None:
    """Index part of dev (with distractors), then search with photos that were left out."""
    people = sorted(p for p in (shared_faces / "dev").iterdir() if p.is_dir() and not p.name.startswith("_"))
    people = [p for p in people if len(list(p.glob("*.jpg"))) >= 3][:40]
    held_out = [sorted(p.glob("*.jpg"))[-1] for p in people]
    gallery_files = [f for p in people for f in sorted(p.glob("*.jpg"))[:-1]]
    gallery_files += sorted((shared_faces / "dev" / "_distractors").glob("*.jpg"))[:300]
    listing = settings.data_dir.parent / "gallery.txt"
    listing.write_text("\n".join(str(f) for f in gallery_files))
    stats = ingest(settings, [str(listing)], source_name="lfw-dev", workers=2)
    assert stats.new_images == len(gallery_files) and not stats.failures

    gallery = Gallery.open(settings, analyzer.model_id, analyzer.embedder.dim)
    correct = 0
    for probe in held_out:
        outcome = search_photo(settings, analyzer, probe.read_bytes(), k=5, gallery=gallery)
        first = Path(outcome.hits[0].face.image.sightings[0].location)
        correct += first.parent.name == probe.parent.name
    assert correct >= 0.95 * len(held_out), (
        f"{correct}/{len(held_out)} held-out photos found their person first"
    )
