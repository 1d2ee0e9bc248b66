"""``facetrace eval``: embed a labelled folder with the real pipeline and measure accuracy and speed.

Nothing here touches the catalog or the index: evaluation images are not ingested.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facetrace.core.config import Settings
from facetrace.evaluation import metrics
from facetrace.evaluation.dataset import read_pairs, scan_labelled_folder
from facetrace.ingest.pool import Failure
from facetrace.ingest.worker import analysis_pool
from facetrace.vision.analyzer import ImageAnalysis, Timings
from facetrace.vision.types import AnalyzedFace

IMPOSTOR_SAMPLE = 200_000
FAR = 1e-3


@dataclass(slots=True)
class EmbeddedImages:
    """One template per image (the subject's face), or a zero row where none was found."""

    paths: list[Path]
    embeddings: np.ndarray
    has_face: np.ndarray
    failures: dict[Path, str]
    seconds: float
    workers: int
    model_id: str = ""
    timings: Timings = field(default_factory=Timings)

    def throughput(self) -> dict[str, float]:
        busy = self.seconds * self.workers
        return {
            "images_per_s": round(len(self.paths) / self.seconds, 2) if self.seconds else 0.0,
            "seconds": round(self.seconds, 2),
            "workers": self.workers,
            "inference_share": round(self.timings.inference / busy, 3) if busy else 0.0,
        }


def subject_face(faces: list[AnalyzedFace], width: int, height: int) -> AnalyzedFace | None:
    """The face nearest the image centre: the subject in LFW-style photos."""
    if not faces:
        return None
    return min(
        faces,
        key=lambda f: (f.detection.center[0] - width / 2) ** 2 + (f.detection.center[1] - height / 2) ** 2,
    )


def embed_images(
    settings: Settings,
    paths: Sequence[Path],
    *,
    workers: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> EmbeddedImages:
    """Analyse ``paths`` in worker processes and keep each image's subject face."""
    rows: dict[Path, np.ndarray] = {}
    failures: dict[Path, str] = {}
    timings = Timings()
    model_id = ""
    started = time.perf_counter()
    pool = analysis_pool(settings, workers)
    with pool:
        jobs = ((path, path.read_bytes()) for path in paths)
        for done, (path, result) in enumerate(pool.map(jobs), start=1):
            if isinstance(result, Failure):
                failures[path] = result.message
            else:
                assert isinstance(result, ImageAnalysis)
                timings.add(result.timings)
                model_id = result.model_id
                face = subject_face(result.faces, result.width, result.height)
                if face is not None:
                    rows[path] = face.embedding
            if on_progress:
                on_progress(done)
    seconds = time.perf_counter() - started
    dim = len(next(iter(rows.values()))) if rows else 1
    embeddings = (
        np.vstack([rows.get(p, np.zeros(dim, np.float32)) for p in paths]) if paths else np.empty((0, dim))
    )
    return EmbeddedImages(
        paths=list(paths),
        embeddings=embeddings.astype(np.float32),
        has_face=np.array([p in rows for p in paths], dtype=bool),
        failures=failures,
        seconds=seconds,
        workers=pool.workers,
        model_id=model_id,
        timings=timings,
    )


def pair_scores(embedded: EmbeddedImages, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Cosine similarity per pair; a pair with an image where no face was found scores -1 (a miss)."""
    scores = np.einsum("ij,ij->i", embedded.embeddings[left], embedded.embeddings[right])
    return np.where(embedded.has_face[left] & embedded.has_face[right], scores, -1.0)


def evaluate_folder(
    settings: Settings,
    root: Path,
    *,
    workers: int | None = None,
    impostor_sample: int = IMPOSTOR_SAMPLE,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Leave-one-out 1:N identification (distractors in the gallery) and 1:1 verification."""
    images = scan_labelled_folder(root)
    if on_start:
        on_start(len(images))
    labels = [image.identity for image in images]
    embedded = embed_images(
        settings, [image.path for image in images], workers=workers, on_progress=on_progress
    )

    per_identity = Counter(label for label in labels if label is not None)
    mated = np.array([label is not None and per_identity[label] >= 2 for label in labels])
    found = embedded.has_face
    identification = metrics.leave_one_out_identification(
        embedded.embeddings[found], [label for label, f in zip(labels, found, strict=True) if f], mated[found]
    )
    all_probes = int(mated.sum())  # probes without a face count as misses
    scale = identification.probes / all_probes if all_probes else 0.0

    genuine = metrics.genuine_pairs(labels)
    impostor = metrics.impostor_pairs(labels, impostor_sample)
    genuine_scores = pair_scores(embedded, genuine[:, 0], genuine[:, 1])
    impostor_scores = pair_scores(embedded, impostor[:, 0], impostor[:, 1])
    # Accuracy on a balanced set (all genuine pairs, as many impostors), threshold by 10-fold CV.
    balanced_scores = np.concatenate([genuine_scores, impostor_scores[: len(genuine_scores)]])
    balanced_same = np.concatenate([np.ones(len(genuine_scores), bool), np.zeros(len(genuine_scores), bool)])
    folds = np.random.default_rng(0).permutation(len(balanced_scores)) % 10
    accuracy = metrics.k_fold_accuracy(balanced_scores, balanced_same, folds)
    tar, tar_threshold = metrics.tar_at_far(genuine_scores, impostor_scores, FAR)

    return {
        "dataset": str(root),
        "model": embedded.model_id,
        "images": len(images),
        "identities": len(per_identity),
        "distractors": sum(label is None for label in labels),
        "images_without_face": int((~found).sum()) - len(embedded.failures),
        "images_failed": len(embedded.failures),
        "failures": {str(p): m for p, m in embedded.failures.items()},
        "identification": {
            "protocol": "leave-one-out 1:N, distractors in the gallery",
            "probes": all_probes,
            "gallery_size": int(found.sum()),
            "rank1": round(identification.rank1 * scale, 4),
            "rank5": round(identification.rank5 * scale, 4),
        },
        "verification": {
            "genuine_pairs": len(genuine),
            "impostor_pairs": len(impostor),
            "accuracy": round(accuracy.mean, 4),
            "accuracy_std": round(accuracy.std, 4),
            "accuracy_protocol": "all genuine pairs + as many impostor pairs, 10-fold threshold",
            "threshold": round(accuracy.threshold, 4),
            "tar_at_far_1e-3": round(tar, 4),
            "threshold_at_far_1e-3": round(tar_threshold, 4),
        },
        "throughput": embedded.throughput(),
    }


def evaluate_pairs(
    settings: Settings,
    root: Path,
    pairs_file: Path,
    *,
    workers: int | None = None,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """The LFW View-2 protocol: accuracy over the file's folds, threshold chosen on the other folds."""
    protocol = read_pairs(pairs_file, root)
    paths = protocol.paths
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} images named in {pairs_file} are missing, e.g. {missing[0]}")
    if on_start:
        on_start(len(paths))
    embedded = embed_images(settings, paths, workers=workers, on_progress=on_progress)
    row = {path: i for i, path in enumerate(paths)}
    scores = pair_scores(
        embedded, np.array([row[p] for p in protocol.left]), np.array([row[p] for p in protocol.right])
    )
    accuracy = metrics.k_fold_accuracy(scores, protocol.same, protocol.fold)
    return {
        "dataset": str(root),
        "pairs_file": str(pairs_file),
        "model": embedded.model_id,
        "protocol": f"LFW View 2 style, {len(np.unique(protocol.fold))}-fold",
        "pairs": len(protocol.same),
        "images": len(paths),
        "images_without_face": int((~embedded.has_face).sum()) - len(embedded.failures),
        "images_failed": len(embedded.failures),
        "accuracy": round(accuracy.mean, 4),
        "accuracy_std": round(accuracy.std, 4),
        "threshold": round(accuracy.threshold, 4),
        "fold_accuracies": [round(a, 4) for a in accuracy.folds],
        "throughput": embedded.throughput(),
    }
